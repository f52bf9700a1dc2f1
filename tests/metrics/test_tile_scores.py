"""The tile-score table: each built-in score orders constructed patches as its name says."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from restore import registry
from restore.errors import ConfigError
from restore.metrics.tile_scores import (
    gradient_energy,
    mask_fraction,
    noise_level,
    register_tile_score,
    score_batch,
    tile_score_names,
)


def test_table_is_the_registry_kind():
    assert set(tile_score_names()) >= {"moire", "noise", "texture", "mask"}
    assert registry.names("tile_score") == sorted(tile_score_names())
    with pytest.raises(ConfigError, match="did you mean 'noise'"):
        registry.target("tile_score", "nois")


def test_noise_level_estimates_the_std_of_white_noise():
    rng = np.random.default_rng(0)
    for sigma in (5.0, 15.0, 30.0):
        image = np.clip(np.rint(128 + rng.normal(0, sigma, (256, 256, 3))), 0, 255).astype(np.uint8)
        assert noise_level(image) == pytest.approx(sigma, rel=0.08)
    # planes and linear ramps give exactly 0 (the mask cancels them)
    ramp = np.clip(np.add.outer(np.arange(60), np.arange(60)), 0, 255).astype(np.uint8)
    assert noise_level(ramp) == 0.0


def test_gradient_energy_by_hand():
    # vertical stripes alternating 0 / 10 per column: gx^2 = 100 everywhere, gy = 0
    image = np.tile(np.array([0, 10], np.uint8), (8, 4))
    assert gradient_energy(image) == pytest.approx(100.0)
    assert gradient_energy(np.full((8, 8, 3), 77, np.uint8)) == 0.0


def test_mask_fraction():
    mask = np.zeros((10, 10), bool)
    mask[:3] = True
    assert mask_fraction(np.zeros((10, 10, 3), np.uint8), mask) == pytest.approx(0.3)
    assert mask_fraction(np.zeros((10, 10, 3), np.uint8), None) == 0.0


def test_score_batch_orders_flat_below_striped_for_content_scores():
    flat = torch.full((3, 64, 64), 0.5)
    x = torch.arange(64)
    stripes = torch.zeros(3, 64, 64)
    stripes[0] = ((x // 2) % 2 == 0).float()[None, :] * 0.8 + 0.1
    stripes[1] = 0.9 - stripes[0]
    batch = torch.stack([flat, stripes])
    for name in ("moire", "texture"):  # (noise ignores edges that are straight along an axis)
        flat_score, striped_score = score_batch(name, batch)
        assert flat_score < striped_score, name


def test_score_batch_quantises_to_8_bits_first():
    # +0.001 (a quarter level) rounds away: the scores of the two batches are identical
    rng = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 32, 32, generator=rng).mul(255).round().div(255)
    assert np.array_equal(score_batch("moire", images), score_batch("moire", (images + 0.001).clamp(0, 1)))


def test_mask_score_needs_a_mask():
    images = torch.zeros(2, 3, 8, 8)
    masks = torch.zeros(2, 1, 8, 8)
    masks[1, :, :4] = 1
    assert score_batch("mask", images, masks).tolist() == [0.0, 0.5]
    with pytest.raises(ConfigError, match="mask"):
        score_batch("mask", images)


def test_user_score(monkeypatch):
    from restore.metrics import tile_scores

    monkeypatch.setattr(tile_scores, "_TABLE", dict(tile_scores._TABLE))
    register_tile_score("mean_level", "numpy:mean")
    assert score_batch("mean_level", torch.full((1, 3, 4, 4), 1.0)).tolist() == [255.0]
    with pytest.raises(ValueError):
        register_tile_score("moire", "numpy:mean")
    assert math.isfinite(score_batch("mean_level", torch.zeros(1, 1, 4, 4))[0])
