"""metrics.md §6 reference values for the baboon pairs P1 (uint8 noise) and P4 (float noise)."""

from __future__ import annotations

import pytest
import torch

from restore.metrics import Evaluator, psnr, ssim
from restore.metrics.color import rgb_to_y

TOL_PSNR, TOL_SSIM = 1e-4, 1e-5

# BasicSR calculate_psnr/ssim on [0,255] data (P4 as float64 x255, unrounded), crop 0 | crop 4:
# (PSNR RGB, PSNR Y, SSIM RGB, SSIM Y) per crop.
BASICSR = {
    "P1": {0: (20.472476, 25.184851, 0.592358, 0.710361), 4: (20.466167, 25.179816, 0.593972, 0.711371)},
    "P4": {0: (28.195187, 33.002201, 0.864344, 0.922236), 4: (28.189422, 32.997729, 0.864769, 0.922476)},
}


def summary(protocol: str, pred: torch.Tensor, gt: torch.Tensor) -> dict[str, float]:
    ev = Evaluator(protocol)
    ev.update(pred, gt)
    return ev.summary()


def require_golden(*pairs) -> None:
    for pair in pairs:
        if not pair.golden:
            pytest.skip(f"{pair.name} array differs from the spec's (md5); its values do not apply")


@pytest.mark.parametrize("crop", [0, 4])
@pytest.mark.parametrize("name", ["P1", "P4"])
def test_basicsr_table(name, crop, pair_p1, pair_p4):
    pair = {"P1": pair_p1, "P4": pair_p4}[name]
    require_golden(pair)
    out = pair.out_t.double() * (255.0 if name == "P4" else 1.0)  # P4: float x255, unrounded
    gt = pair.gt_t.double()
    y_out, y_gt = rgb_to_y(out, data_range=255), rgb_to_y(gt, data_range=255)
    got = (
        psnr(out, gt, data_range=255, crop_border=crop).item(),
        psnr(y_out, y_gt, data_range=255, crop_border=crop).item(),
        ssim(out, gt, data_range=255, crop_border=crop).item(),
        ssim(y_out, y_gt, data_range=255, crop_border=crop).item(),
    )
    want = BASICSR[name][crop]
    assert got[:2] == pytest.approx(want[:2], abs=TOL_PSNR)
    assert got[2:] == pytest.approx(want[2:], abs=TOL_SSIM)


def test_p1_other_conventions(pair_p1):
    require_golden(pair_p1)
    out, gt = pair_p1.out_t, pair_p1.gt_t
    derain = summary("derain_matlab", out, gt)  # Y rounded to uint8 (MATLAB on uint8)
    assert derain["psnr"] == pytest.approx(25.182256, abs=TOL_PSNR)
    assert derain["ssim"] == pytest.approx(0.710331, abs=TOL_SSIM)
    assert summary("fhdmi", out, gt)["ssim"] == pytest.approx(0.613765, abs=TOL_SSIM)  # skimage defaults
    tip = summary("tip2018", out, gt)  # uint8 RGB PSNR + MATLAB 3-D SSIM, L = 255
    assert tip["psnr"] == pytest.approx(20.472476, abs=TOL_PSNR)
    assert tip["ssim"] == pytest.approx(0.787104, abs=TOL_SSIM)


def test_p4_rounded_to_uint8(pair_p4):
    """Float network output in [0,1]: the uint8 protocols round it first (metrics.md §6)."""
    require_golden(pair_p4)
    out, gt = pair_p4.out_t, pair_p4.gt_t
    rgb, y = summary("basicsr", out, gt), summary("basicsr_y", out, gt)
    assert (rgb["psnr"], y["psnr"]) == pytest.approx((28.191420, 32.998462), abs=TOL_PSNR)
    assert (rgb["ssim"], y["ssim"]) == pytest.approx((0.864252, 0.922172), abs=TOL_SSIM)
    derain = summary("derain_matlab", out, gt)
    assert derain["psnr"] == pytest.approx(32.976617, abs=TOL_PSNR)
    assert derain["ssim"] == pytest.approx(0.921906, abs=TOL_SSIM)
    assert summary("fhdmi", out, gt)["ssim"] == pytest.approx(0.874473, abs=TOL_SSIM)
    assert summary("tip2018", out, gt)["ssim"] == pytest.approx(0.948956, abs=TOL_SSIM)


def test_p4_as_matlab_scores_single_precision(pair_p4):
    """SIDD's MATLAB script: unquantised float, PSNR peak 1, 3-D SSIM with L = 1."""
    require_golden(pair_p4)
    s = summary("sidd_matlab", pair_p4.out_t, pair_p4.gt_t)
    assert s["psnr"] == pytest.approx(28.195187, abs=TOL_PSNR)
    assert s["ssim"] == pytest.approx(0.948998, abs=TOL_SSIM)
