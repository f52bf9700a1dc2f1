"""Colour conversions: BT.601 luma (MATLAB rgb2ycbcr) and MATLAB-style sRGB -> CIELAB (D50)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restore.metrics.color import (
    D50_WHITE,
    D65_WHITE,
    rgb_to_gray_matlab,
    rgb_to_y,
    rgb_to_y_edsr,
    round_half_away,
    srgb_to_lab,
)

from .reference import to_tensor, y_np, y_round_np


def rgb(*v: float) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.float64).view(1, 3, 1, 1)


def test_y_range_and_constants():
    assert rgb_to_y(rgb(0, 0, 0)).item() == pytest.approx(16 / 255, abs=1e-15)
    assert rgb_to_y(rgb(1, 1, 1)).item() == pytest.approx(235 / 255, abs=1e-12)
    assert rgb_to_y(rgb(1, 0, 0)).item() == pytest.approx((16 + 65.481) / 255, abs=1e-15)
    assert rgb_to_y(rgb(0, 0, 255), data_range=255).item() == pytest.approx(16 + 24.966, abs=1e-12)
    assert rgb_to_y(rgb(0, 0, 1)).shape == (1, 1, 1, 1)


def test_y_matches_skimage_and_matlab_rounding():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (2, 40, 30, 3), dtype=np.uint8)
    x = torch.from_numpy(img).permute(0, 3, 1, 2).double()
    y = rgb_to_y(x, data_range=255)[:, 0].numpy()
    ref = np.stack([y_np(im) for im in img])
    np.testing.assert_allclose(y, ref, atol=1e-9)
    yr = rgb_to_y(x, data_range=255, round_uint8=True)[:, 0].numpy()
    np.testing.assert_array_equal(yr, np.stack([y_round_np(im) for im in img]))
    # the same rounding on the [0, 1] scale
    yr1 = rgb_to_y(x / 255, round_uint8=True)[:, 0].numpy() * 255
    np.testing.assert_allclose(yr1, yr, atol=1e-9)


def test_round_half_away_is_matlab_rounding():
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, -2.5, 2.49])
    assert round_half_away(x).tolist() == [1.0, 2.0, 3.0, -1.0, -3.0, 2.0]
    assert torch.round(x).tolist() != round_half_away(x).tolist()  # torch rounds half to even


def test_edsr_weights_equal_bt601_on_differences():
    rng = np.random.default_rng(4)
    d = torch.from_numpy(rng.normal(0, 20, (1, 3, 16, 16)))
    a = rgb_to_y_edsr(d)
    b = rgb_to_y(d, data_range=255) - 16.0  # BT.601 without the offset
    # metrics.md §2: equivalent to <= 1e-5 relative (per weight: <= 4e-6)
    assert (a - b).abs().max() <= 1e-5 * d.abs().sum(dim=1).max()


def test_rgb2gray_matlab_weights():
    assert rgb_to_gray_matlab(rgb(1, 1, 1)).item() == pytest.approx(1.0, abs=1e-12)
    g = rgb_to_gray_matlab(rgb(0, 0, 1) * 255, round_uint8=True).item()
    assert g == 29.0  # 0.1140 * 255 = 29.07


def test_lab_recipe_check_value():
    """metrics.md §4.4: white (0.9642, 1, 0.8251) gives [31.3294, -4.0734, -18.1750] for (.2,.3,.4)."""
    lab = srgb_to_lab(rgb(0.2, 0.3, 0.4), white=(0.9642, 1.0, 0.8251)).flatten().tolist()
    assert lab == pytest.approx([31.3294, -4.0734, -18.1750], abs=6e-5)
    # MATLAB's documented rgb2lab(...,'WhitePoint','d50') value agrees to 2e-4
    assert lab == pytest.approx([31.3294, -4.0732, -18.1750], abs=2.5e-4)


def test_lab_default_white_is_icc_d50():
    assert D50_WHITE == (0.9642, 1.0, 0.8249)
    white = srgb_to_lab(rgb(1, 1, 1)).flatten().tolist()  # Bradford maps D65 white onto the D50 white
    assert white == pytest.approx([100.0, 0.0, 0.0], abs=1e-4)  # sRGB matrix rows sum to D65 to 1e-7
    black = srgb_to_lab(rgb(0, 0, 0)).flatten().tolist()
    assert black == pytest.approx([0.0, 0.0, 0.0], abs=1e-12)


def test_lab_with_d65_white_equals_skimage():
    """With the D65 white the Bradford step is the identity: skimage.color.rgb2lab (D65, 2 deg).

    skimage's sRGB->XYZ matrix has 6 digits instead of 7, hence the 1e-2 tolerance.
    """
    from skimage.color import rgb2lab

    rng = np.random.default_rng(5)
    img = rng.random((20, 24, 3))
    ours = srgb_to_lab(to_tensor(img), white=D65_WHITE)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours, rgb2lab(img), atol=1e-2)
    d65 = srgb_to_lab(rgb(0.2, 0.3, 0.4), white=D65_WHITE).flatten().tolist()
    assert d65 == pytest.approx([31.58, -1.87, -17.85], abs=1e-2)  # skimage value quoted in metrics.md §4.4


def test_lab_out_of_range_values_pass_through():
    """Bicubic overshoot (<0, >1) must not produce NaN (MATLAB doubles are not clipped)."""
    lab = srgb_to_lab(rgb(-0.02, 0.5, 1.03))
    assert torch.isfinite(lab).all()


def test_colour_functions_batch_and_reject_bad_shapes():
    x = torch.rand(3, 3, 5, 6)
    assert rgb_to_y(x).shape == (3, 1, 5, 6)
    assert srgb_to_lab(x).shape == (3, 3, 5, 6)
    assert torch.allclose(srgb_to_lab(x)[1:2], srgb_to_lab(x[1:2]))
    with pytest.raises(ValueError):
        rgb_to_y(torch.rand(1, 1, 4, 4))
