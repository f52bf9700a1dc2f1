"""DDA's moiré prior (specs/dda.md §2) against hand computations and a direct DFT."""

from __future__ import annotations

import math

import numpy as np
import pytest

from restore.metrics.moire_prior import (
    colourfulness,
    frequency,
    gaussian_high_pass,
    grey,
    high_pass_magnitude,
    moire_score,
)


def test_colourfulness_of_a_constant_colour_is_0_3_times_the_mean_offset():
    # R, G, B = 200, 100, 50 everywhere (any size: the resize keeps a constant image constant):
    # rg = 100, yb = 0.5 * 300 - 50 = 100, both stds 0 -> M = 0.3 * sqrt(100^2 + 100^2).
    image = np.empty((40, 70, 3), np.uint8)
    image[...] = (200, 100, 50)
    assert colourfulness(image) == pytest.approx(0.3 * math.sqrt(2) * 100, abs=1e-9)


def test_colourfulness_of_two_halves_by_hand():
    # A 256x256 image (no resize): left half (255, 0, 0), right half (0, 0, 255).
    # Left: rg = 255, yb = 127.5. Right: rg = 0, yb = -255.
    # mean(rg) = 127.5, std(rg) = 127.5; mean(yb) = -63.75, std(yb) = 191.25.
    image = np.zeros((256, 256, 3), np.uint8)
    image[:, :128, 0] = 255
    image[:, 128:, 2] = 255
    expected = math.sqrt(127.5**2 + 191.25**2) + 0.3 * math.sqrt(127.5**2 + 63.75**2)
    assert colourfulness(image) == pytest.approx(expected, abs=1e-9)


def test_colourfulness_reads_true_red_not_plane_order_swapped():
    # (255, 0, 0) and its BGR-swapped twin (0, 0, 255) differ: red has yb = +127.5, blue -255.
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    blue = red[..., ::-1].copy()
    assert colourfulness(red) == pytest.approx(0.3 * math.hypot(255, 127.5))
    assert colourfulness(blue) == pytest.approx(0.3 * 255)


def test_grey_image_has_no_colour():
    assert colourfulness(np.full((32, 32), 90, np.uint8)) == 0.0
    assert moire_score(np.full((32, 32, 1), 90, np.uint8)) == 0.0


def _direct_high_pass(g: np.ndarray, d0: float) -> np.ndarray:
    """The spec's chain written out with DFT matrices (no np.fft), then |.|, round, clip, uint8."""
    h, w = g.shape
    fh = np.exp(-2j * np.pi * np.outer(np.arange(h), np.arange(h)) / h)
    fw = np.exp(-2j * np.pi * np.outer(np.arange(w), np.arange(w)) / w)
    spectrum = fh @ g.astype(np.float64) @ fw.T
    # centre-shift by rolling by half the size; the filter's centre is the DC bin there
    centred = np.roll(spectrum, (h // 2, w // 2), axis=(0, 1))
    filt = np.zeros((h, w))
    for u in range(h):
        for v in range(w):
            d2 = (u - h // 2) ** 2 + (v - w // 2) ** 2
            filt[u, v] = 1 - math.exp(-d2 / (2 * d0 * d0))
    back = np.roll(centred * filt, (-(h // 2), -(w // 2)), axis=(0, 1))
    image = np.conj(fh) @ back @ np.conj(fw).T / (h * w)
    return np.clip(np.rint(np.abs(image)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape", [(32, 32), (24, 40), (17, 23)])
def test_high_pass_equals_a_direct_dft_implementation(shape):
    rng = np.random.default_rng(3)
    g = rng.integers(0, 256, shape).astype(np.uint8)
    g[: shape[0] // 2] = 250  # a bright block: large magnitudes, so the 255 clip is exercised too
    ours = high_pass_magnitude(g)
    theirs = _direct_high_pass(g, 5.0)
    assert ours.dtype == np.uint8
    # rounding may differ by one level where |x| sits at .5 within float error
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1
    assert (ours == theirs).mean() > 0.999
    assert ours.max() == 255 or theirs.max() < 255


def test_high_pass_filter_is_zero_at_dc_and_tends_to_one():
    h = gaussian_high_pass(64, 64)
    assert h[32, 32] == 0.0
    assert h[32, 32 + 5] == pytest.approx(1 - math.exp(-0.5))
    assert h[0, 0] == pytest.approx(1.0, abs=1e-12)


def test_grey_uses_opencv_luma_weights():
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 200, 100, 50
    assert grey(image)[0, 0] == round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)


def test_frequency_and_score_order_flat_smooth_striped():
    flat = np.full((64, 64, 3), 128, np.uint8)
    x = np.arange(64)
    smooth = np.repeat(np.repeat((64 + x)[None, :, None], 64, 0), 3, 2).astype(np.uint8)
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[..., 0] = np.where((x // 2) % 2 == 0, 230, 30)[None, :]  # red stripes of period 4 on green
    stripes[..., 1] = np.where((x // 2) % 2 == 0, 30, 200)[None, :]
    assert frequency(flat) == 0.0
    assert frequency(flat) < frequency(smooth) < frequency(stripes)
    assert moire_score(flat) == 0.0 < moire_score(stripes)
    # colour without high frequencies scores low too: a constant red patch has frequency 0
    red = np.zeros((64, 64, 3), np.uint8)
    red[..., 0] = 255
    assert moire_score(red) == 0.0


def test_rejects_float_images():
    with pytest.raises(ValueError, match="8-bit"):
        moire_score(np.zeros((8, 8, 3), np.float32))
