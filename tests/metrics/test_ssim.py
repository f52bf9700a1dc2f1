"""SSIM variants: §6 reference values (P2, P3) and skimage / scipy cross-checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restore.metrics import ssim
from restore.metrics.color import rgb_to_y
from restore.metrics.ssim import channel_matrix, gaussian_kernel1d, ssim_map

from .reference import ssim_gauss_np, ssim_matlab_np, ssim_uniform_np, to_tensor, y_np, y_round_np

TOL = 1e-5  # spec tolerance; goldens have 6 decimals
# metrics.md §6: BasicSR SSIM crop 0 | 4 (RGB and Y), rounded-Y (MATLAB deraining), skimage defaults,
# MATLAB-style 3-D SSIM (uint8, L=255)
GOLD = {
    "P2": {"rgb": (0.910825, 0.912495), "y": (0.940153, 0.941210), "y_round": 0.938985, "uniform": 0.912444, "m3d": 0.961072},
    "P3": {"rgb": (0.879195, 0.880623), "y": (0.893659, 0.894877), "y_round": 0.892126, "uniform": 0.883541, "m3d": 0.947515},
}


def _pair(which, pair_p2, pair_p3):
    return pair_p2 if which == "P2" else pair_p3


@pytest.mark.parametrize("which", ["P2", "P3"])
def test_gaussian_rgb_and_y_reference(which, pair_p2, pair_p3):
    pair = _pair(which, pair_p2, pair_p3)
    x, y = pair.out_t.double(), pair.gt_t.double()
    rgb0 = ssim(x, y, data_range=255).item()
    rgb4 = ssim(x, y, data_range=255, crop_border=4).item()
    y0 = ssim(rgb_to_y(x, data_range=255), rgb_to_y(y, data_range=255), data_range=255).item()
    xc, yc = x[..., 4:-4, 4:-4], y[..., 4:-4, 4:-4]
    y4 = ssim(rgb_to_y(xc, data_range=255), rgb_to_y(yc, data_range=255), data_range=255).item()
    if pair.golden:
        g = GOLD[which]
        assert (rgb0, rgb4) == pytest.approx(g["rgb"], abs=TOL)
        assert (y0, y4) == pytest.approx(g["y"], abs=TOL)
    # independent: skimage with the Gaussian arguments
    assert rgb0 == pytest.approx(ssim_gauss_np(pair.out, pair.gt), abs=1e-9)
    assert y0 == pytest.approx(ssim_gauss_np(y_np(pair.out), y_np(pair.gt)), abs=1e-7)


@pytest.mark.parametrize("which", ["P2", "P3"])
def test_rounded_y_uniform_and_matlab3d_reference(which, pair_p2, pair_p3):
    pair = _pair(which, pair_p2, pair_p3)
    x, y = pair.out_t.double(), pair.gt_t.double()
    yr = ssim(rgb_to_y(x, data_range=255, round_uint8=True), rgb_to_y(y, data_range=255, round_uint8=True), data_range=255).item()
    uni = ssim(x, y, data_range=255, variant="skimage_uniform").item()
    m3d = ssim(x, y, data_range=255, variant="matlab3d").item()
    if pair.golden:
        g = GOLD[which]
        assert yr == pytest.approx(g["y_round"], abs=TOL)
        assert uni == pytest.approx(g["uniform"], abs=TOL)
        assert m3d == pytest.approx(g["m3d"], abs=TOL)
    assert yr == pytest.approx(ssim_gauss_np(y_round_np(pair.out), y_round_np(pair.gt)), abs=1e-9)
    assert uni == pytest.approx(ssim_uniform_np(pair.out, pair.gt), abs=1e-9)


def test_old_skimage_data_range_two(pair_p2):
    """metrics.md §3: P2 float [0,1], skimage defaults: 0.9550 with L=2 vs 0.9124 with L=1."""
    x, y = pair_p2.out_t.double() / 255, pair_p2.gt_t.double() / 255
    l2 = ssim(x, y, data_range=2.0, variant="skimage_uniform").item()
    l1 = ssim(x, y, data_range=1.0, variant="skimage_uniform").item()
    if pair_p2.golden:
        assert l2 == pytest.approx(0.9550, abs=5e-5)
        assert l1 == pytest.approx(0.9124, abs=5e-5)
    assert l2 == pytest.approx(ssim_uniform_np(pair_p2.out / 255, pair_p2.gt / 255, data_range=2.0), abs=1e-9)


def test_variants_match_skimage_on_noisy_pair(baboon_pair):
    x, y = baboon_pair.out_t.double(), baboon_pair.gt_t.double()
    assert ssim(x, y, data_range=255).item() == pytest.approx(ssim_gauss_np(baboon_pair.out, baboon_pair.gt), abs=1e-10)
    assert ssim(x, y, data_range=255, variant="skimage_uniform").item() == pytest.approx(
        ssim_uniform_np(baboon_pair.out, baboon_pair.gt), abs=1e-10
    )


@pytest.mark.parametrize("channels", [1, 3])
def test_matlab3d_equals_scipy_volume_filter(channels):
    """MATLAB ssim(): 11x11(x11) Gaussian with replicate padding, full map -- scipy on the volume."""
    rng = np.random.default_rng(7)
    gt = rng.random((37, 45, channels))
    out = np.clip(gt + rng.normal(0, 0.1, gt.shape), 0, 1)
    ours = ssim(to_tensor(out), to_tensor(gt), data_range=1.0, variant="matlab3d").item()
    ref = ssim_matlab_np(out[..., 0] if channels == 1 else out, gt[..., 0] if channels == 1 else gt, 1.0)
    assert ours == pytest.approx(ref, abs=1e-12)


def test_matlab3d_channel_window():
    """11 taps folded onto 3 channels by replicate padding; rows sum to 1; middle row symmetric."""
    g = gaussian_kernel1d(11, 1.5)
    m = channel_matrix(3, g)
    assert torch.allclose(m.sum(1), torch.ones(3, dtype=torch.float64))
    assert m[0, 0].item() == pytest.approx(g[:6].sum().item())  # taps -5..0 clamp onto channel 0
    assert m[1, 0].item() == pytest.approx(m[1, 2].item()) and m[1, 0].item() == pytest.approx(g[:5].sum().item())
    assert channel_matrix(1, g).item() == pytest.approx(1.0)


def test_kernel_equals_opencv():
    import cv2

    ref = cv2.getGaussianKernel(11, 1.5).ravel()
    np.testing.assert_allclose(gaussian_kernel1d(11, 1.5).numpy(), ref, atol=1e-15)


@pytest.mark.parametrize("variant", ["gaussian", "matlab3d", "skimage_uniform"])
def test_identity_batching_and_bands(variant):
    torch.manual_seed(0)
    x = torch.rand(2, 3, 150, 70, dtype=torch.float64)
    y = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    assert torch.allclose(ssim(x, x, variant=variant), torch.ones(2, dtype=torch.float64))
    both = ssim(x, y, variant=variant)
    assert both.shape == (2,) and both.dtype == torch.float64
    assert both[1].item() == pytest.approx(ssim(x[1:], y[1:], variant=variant).item(), abs=1e-14)
    whole = ssim_map(x, y, variant=variant, band_rows=10_000)
    banded = ssim_map(x, y, variant=variant, band_rows=16)
    assert torch.allclose(whole, banded, atol=1e-13)
    expected = (150, 70) if variant == "matlab3d" else ((140, 60) if variant == "gaussian" else (144, 64))
    assert whole.shape[-2:] == expected


def test_float32_and_uint8_inputs_computed_in_float64():
    x = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    y = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    a = ssim(x, y, data_range=255)
    b = ssim(x.double(), y.double(), data_range=255)
    c = ssim(x.float() / 255, y.float() / 255, data_range=1)
    assert a.dtype == torch.float64
    assert a.item() == pytest.approx(b.item(), abs=1e-14)
    assert a.item() == pytest.approx(c.item(), abs=1e-6)


def test_bad_arguments():
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="variant"):
        ssim(x, x, variant="box")
    with pytest.raises(ValueError):
        ssim(x[..., :8, :8], x[..., :8, :8])  # smaller than the window
    with pytest.raises(ValueError):
        ssim(x, x, data_range=0)
