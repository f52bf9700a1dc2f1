"""Shadow-removal metrics (metrics.md §4.4): the worked example, region logic, PP vs PI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from restore.metrics.shadow import (
    lab_error,
    lab_mae,
    mask_to_uint8,
    prepare_family_a,
    prepare_family_b,
    region_psnr_ssim,
)
from restore.utils.matlab_resize import imresize

from .reference import ssim_matlab_np, to_tensor


def _mae(sums, region):
    return (sums[f"sum_{region}"] / sums[f"n_{region}"]).item()


def test_worked_example_native(shadow_example):
    """Native size, D50-Bradford LAB: ALL / S / NS = 2.3463 / 9.6977 / 1.3909."""
    result, gt, mask = shadow_example
    sums = lab_mae(to_tensor(result).double() / 255, to_tensor(gt).double() / 255, to_tensor(mask))
    assert sums["n_s"].item() == 45225
    assert sums["n_all"].item() == 512 * 768
    got = [_mae(sums, r) for r in ("all", "s", "ns")]
    assert got == pytest.approx([2.3463, 9.6977, 1.3909], abs=6e-5)


def test_worked_example_skimage_d65_regions(shadow_example):
    """Same regions with skimage's D65 rgb2lab give the spec's 2.3589 / 9.6640 / 1.4095: checks
    the |dL|+|da|+|db| sum and the region bookkeeping independently of our LAB conversion."""
    from skimage.color import rgb2lab

    result, gt, mask = shadow_example
    d = np.abs(rgb2lab(result) - rgb2lab(gt)).sum(-1)
    s = mask != 0
    assert [d.mean(), d[s].mean(), d[~s].mean()] == pytest.approx([2.3589, 9.6640, 1.4095], abs=6e-5)


def test_worked_example_family_a(shadow_example):
    """After the 256x256 MATLAB resize: 2.3173 / 9.3832 / 1.3673 and 7767 shadow pixels."""
    result, gt, mask = shadow_example
    p, t, s = prepare_family_a(to_tensor(result).double() / 255, to_tensor(gt).double() / 255, to_tensor(mask))
    assert p.shape == (1, 3, 256, 256) and s.shape == (1, 1, 256, 256) and s.dtype == torch.bool
    assert int(s.sum()) == 7767
    assert p.min() < 0 or p.max() > 1  # bicubic overshoot is kept (MATLAB doubles are not clipped)
    sums = lab_mae(p, t, s)
    got = [_mae(sums, r) for r in ("all", "s", "ns")]
    assert got == pytest.approx([2.3173, 9.3832, 1.3673], abs=6e-5)


def test_region_psnr_ssim_zero_the_other_region():
    torch.manual_seed(0)
    gt = torch.rand(1, 3, 40, 40, dtype=torch.float64)
    shadow = torch.zeros(1, 1, 40, 40, dtype=torch.bool)
    shadow[..., 10:20, 5:30] = True
    pred = torch.where(shadow, gt * 0.8, gt)  # errors only inside the shadow
    r = region_psnr_ssim(pred, gt, shadow)
    assert math.isinf(r["psnr_ns"].item())  # non-shadow region identical
    assert r["ssim_ns"].item() == pytest.approx(1.0, abs=1e-12)
    # MSE still averaged over all pixels: S-masked PSNR equals the full-image PSNR here
    assert r["psnr_s"].item() == pytest.approx(r["psnr"].item(), abs=1e-10)
    # masked SSIM = MATLAB 3-D SSIM (L = 1) of the zeroed images, checked with scipy
    m = shadow[0].permute(1, 2, 0).numpy()
    ref = ssim_matlab_np((pred[0].permute(1, 2, 0).numpy() * m), (gt[0].permute(1, 2, 0).numpy() * m), 1.0)
    assert r["ssim_s"].item() == pytest.approx(ref, abs=1e-12)
    assert set(region_psnr_ssim(pred, gt, None)) == {"psnr", "ssim"}


def test_lab_mae_sums_and_counts():
    torch.manual_seed(1)
    gt = torch.rand(2, 3, 8, 10, dtype=torch.float64)
    pred = (gt + 0.05).clamp(0, 1)
    mask = torch.zeros(2, 1, 8, 10)
    mask[0, :, :2] = 1.0  # 20 shadow pixels in image 0, none in image 1
    s = lab_mae(pred, gt, mask)
    err = lab_error(pred, gt)
    assert s["n_s"].tolist() == [20.0, 0.0] and s["n_ns"].tolist() == [60.0, 80.0]
    assert s["sum_s"][0].item() == pytest.approx(err[0, :2].sum().item())
    assert torch.allclose(s["sum_s"] + s["sum_ns"], s["sum_all"])
    none = lab_mae(pred, gt, None)
    assert none["n_s"].tolist() == [0.0, 0.0] and torch.equal(none["sum_ns"], none["sum_all"])


def test_mask_to_uint8():
    f = torch.tensor([0.0, 0.5, 1.0, 1 / 255]).view(1, 1, 1, 4)
    assert mask_to_uint8(f).flatten().tolist() == [0, 128, 255, 1]
    rgb = torch.zeros(1, 3, 1, 2, dtype=torch.uint8)
    rgb[0, 2, 0, 1] = 4  # pure blue 4 -> rgb2gray 0.456 -> 0 (MATLAB uint8 rounding)
    rgb[0, 0, 0, 0] = 255
    assert mask_to_uint8(rgb).flatten().tolist() == [76, 0]
    assert mask_to_uint8(torch.ones(1, 2, 2, dtype=torch.bool)).shape == (1, 1, 2, 2)


def test_family_b_resizes_gt_and_mask_to_the_result():
    torch.manual_seed(2)
    pred = torch.rand(1, 3, 20, 30, dtype=torch.float64)
    gt = torch.rand(1, 3, 40, 60, dtype=torch.float64)
    mask = torch.zeros(1, 1, 40, 60, dtype=torch.uint8)
    mask[..., 1::2, 1::2] = 255  # nearest 2x shrink keeps 1-based pixels 2, 4, ... -> all shadow
    p, t, s = prepare_family_b(pred, gt, mask)
    assert t.shape == (1, 3, 20, 30) and s.shape == (1, 1, 20, 30)
    assert bool(s.all())
    same, same_t, _ = prepare_family_b(pred, pred, None)
    assert torch.equal(same_t, pred)  # no resize when sizes agree


def test_worked_example_mask_resize(shadow_example):
    """§4.4: the circular mask resized (uint8) to 256x256 has 7767 pixels != 0 and 7558 >= 128.

    Both passes rounded to uint8 and the width (strongest shrink, 768 -> 256) first; rows first
    would give 7771, no rounding between passes 7754.
    """
    _, _, mask = shadow_example
    m = imresize(torch.from_numpy(mask)[None, None], (256, 256))
    assert int((m != 0).sum()) == 7767
    assert int((m >= 128).sum()) == 7558
