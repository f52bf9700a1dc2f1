"""Keyword overrides of ``restore.load``: they reach the engine, and tiling keeps the result.

The tiling check uses a network whose receptive field (2 pixels) is inside a quarter of the
overlap, for which the engine's tiling equals the whole-image output to float rounding; the
same tolerance as the engine's own tiling tests (1e-4 on [0, 1]). A forward hook proves that
tiles, not the whole image, went through the network.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from api_nets import SmallConv, generated_image

import restore
from restore import registry
from restore.data.image_io import read_image

TILE_TOLERANCE = 1e-4  # tests/engine/test_inference.py: tiled == whole for a conv model


@pytest.fixture(scope="module")
def small_conv(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("small_conv")
    torch.manual_seed(5)
    weights = folder / "conv.pth"
    torch.save(SmallConv().state_dict(), weights)
    options = folder / "conv.yml"
    options.write_text("name: conv\ndevice: cpu\nnetwork: {type: api_small_conv}\n")
    with registry.registered("arch", "api_small_conv", "api_nets:SmallConv"):
        yield options, weights


def forwards(model: restore.Model, image) -> tuple[object, int]:
    """The model's output and how many times the network ran."""
    calls = []
    handle = model.network.register_forward_hook(lambda *_: calls.append(1))
    try:
        return model(image), len(calls)
    finally:
        handle.remove()


def check_tiled_equals_whole(options: Path, weights: Path, image: np.ndarray) -> None:
    whole = restore.load(options, weights=weights)
    tiled = restore.load(options, weights=weights, tile=32, tile_overlap=16)
    assert (tiled.options.infer.tile, tiled.options.infer.tile_overlap) == (32, 16)
    assert whole.options.infer.tile is None
    out_whole, n_whole = forwards(whole, image)
    out_tiled, n_tiled = forwards(tiled, image)
    assert n_whole == 1 and n_tiled > 1 and n_tiled == tiled.forwards(*image.shape[:2])
    assert out_tiled.shape == out_whole.shape == image.shape and out_tiled.dtype == np.float32
    np.testing.assert_allclose(out_tiled, out_whole, atol=TILE_TOLERANCE, rtol=0)
    assert np.abs(out_whole - image).max() > 0.01  # the network changed the image


def test_tiling_keeps_the_result_on_a_generated_image(small_conv):
    check_tiled_equals_whole(*small_conv, generated_image(97, 131).astype(np.float32) / 255)


def test_tiling_keeps_the_result_on_a_kodak_photo(small_conv, shared_data):
    photo = read_image(shared_data / "kodak24/kodim23.png")[100:197, 200:331]
    check_tiled_equals_whole(*small_conv, photo.astype(np.float32) / 255)


def test_loaded_options_are_taken_and_left_unchanged(small_conv):
    options_path, weights = small_conv
    options = restore.load_options(options_path)
    model = restore.load(options, weights=weights, device="cpu", tile=64, self_ensemble=True)
    assert (model.options.infer.tile, model.options.infer.self_ensemble, str(model.device)) == (64, True, "cpu")
    assert options.infer.tile is None and options.infer.self_ensemble is False  # the caller's object is untouched
    again = restore.load(options, weights=weights)
    assert again.options.infer.tile is None
