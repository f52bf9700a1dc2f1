"""The protocol table: lookup, quantisation rules, pairing, and one calibrated value per protocol."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from restore.errors import ConfigError
from restore.metrics import PROTOCOLS, Evaluator, get_protocol, psnr
from restore.metrics.protocols import quantize

from .reference import psnr_np, ssim_gauss_np, ssim_matlab_np, ssim_uniform_np, to_tensor, y_np, y_round_np

REQUIRED = {
    "basicsr", "basicsr_y", "sidd_matlab", "derain_matlab", "tip2018", "tip2018_wdnet",
    "aim19", "fhdmi", "uhdm", "shadow_a", "shadow_b", "n2n", "ipt",
}
TOL_PSNR, TOL_SSIM = 1e-4, 1e-5


def score(protocol: str, pred, gt, mask=None, **kw) -> dict[str, float]:
    ev = Evaluator(protocol, **kw)
    ev.update(pred, gt, mask)
    return ev.summary()


# ------------------------------------------------------------------ the table
def test_table_has_every_protocol_and_is_frozen():
    assert REQUIRED <= set(PROTOCOLS)
    for name, p in PROTOCOLS.items():
        assert p.name == name and p.label and p.description and "\n" not in p.description
    with pytest.raises(dataclasses.FrozenInstanceError):
        PROTOCOLS["basicsr"].psnr_peak = 1.0


def test_unknown_protocol_did_you_mean():
    with pytest.raises(ConfigError) as err:
        get_protocol("basicsr_yy")
    msg = str(err.value)
    assert "'basicsr_yy'" in msg and "did you mean 'basicsr_y'" in msg
    with pytest.raises(ConfigError, match="'nonsense'"):
        Evaluator("nonsense")


def test_quantisation_rules_on_exact_halves():
    """x = (2k+1)/510 in float32 gives x*255 = k + 0.5 exactly: the three rules differ on even k."""
    k = torch.arange(0, 254, 2)
    x = ((2 * k + 1) / 510).to(torch.float32)
    assert torch.equal(x * 255, k.float() + 0.5)
    assert torch.equal(quantize(x, "round"), k.double())  # half to even (numpy / tensor2img)
    assert torch.equal(quantize(x, "round_half_up"), k.double() + 1)  # N2N: uint8(clip(x*255+.5))
    assert torch.equal(quantize(x, "trunc"), k.double())  # WDNet: np.uint8(x*255)
    x2 = torch.tensor([0.9 / 255, 1.6 / 255, -0.3, 1.7])
    assert quantize(x2, "trunc").tolist() == [0.0, 1.0, 0.0, 255.0]  # clamped first
    assert quantize(x2, None, scale=1.0).tolist() == pytest.approx([0.9 / 255, 1.6 / 255, 0.0, 1.0])


def test_uint8_is_never_requantised_and_float_targets_are_rounded():
    k = torch.arange(256, dtype=torch.uint8)
    for rule in ("round", "round_half_up", "trunc", None):
        assert torch.equal(quantize(k, rule), k.double())
    half = (torch.arange(256) / 255).half()  # float16 k/255: truncation would give k-1 for many k
    assert (torch.floor(half.float() * 255) != torch.arange(256)).sum() > 0
    assert torch.equal(quantize(half, "trunc", is_target=True), torch.arange(256).double())
    assert torch.equal(quantize(k, "round", scale=1.0), k.double() / 255)


def test_pairing_rules():
    assert {p.pairing for p in PROTOCOLS.values()} <= {"same_name", "sorted"}
    # the MATLAB scripts pair by sorted listing position
    for name in ("derain_matlab", "tip2018", "tip2018_wdnet", "shadow_a"):
        assert PROTOCOLS[name].pairing == "sorted"
    assert PROTOCOLS["basicsr"].pairing == "same_name"


# ------------------------------------------------------------------ one value per protocol
def _gold(pair, gold, independent):
    return gold if pair.golden else independent


def test_basicsr(pair_p2, pair_p3):
    for pair, g in ((pair_p2, (32.119048, 0.910825)), (pair_p3, (27.955554, 0.879195))):
        s = score("basicsr", pair.out_t, pair.gt_t)
        assert s["psnr"] == pytest.approx(_gold(pair, g[0], psnr_np(pair.out, pair.gt)), abs=TOL_PSNR)
        assert s["ssim"] == pytest.approx(_gold(pair, g[1], ssim_gauss_np(pair.out, pair.gt)), abs=TOL_SSIM)
    s4 = score("basicsr", pair_p3.out_t, pair_p3.gt_t, crop_border=4)
    assert (s4["psnr"], s4["ssim"]) == pytest.approx((27.941257, 0.880623), abs=TOL_SSIM)


def test_basicsr_y(pair_p2, pair_p3):
    for pair, g in ((pair_p2, (35.257645, 0.940153)), (pair_p3, (29.391791, 0.893659))):
        s = score("basicsr_y", pair.out_t, pair.gt_t)
        ind = (psnr_np(y_np(pair.out), y_np(pair.gt)), ssim_gauss_np(y_np(pair.out), y_np(pair.gt)))
        assert (s["psnr"], s["ssim"]) == pytest.approx(_gold(pair, g, ind), abs=TOL_SSIM)


def test_derain_matlab_rounded_y(pair_p2, pair_p3):
    for pair, g in ((pair_p2, (35.219115, 0.938985)), (pair_p3, (29.380738, 0.892126))):
        s = score("derain_matlab", pair.out_t, pair.gt_t)
        yo, yg = y_round_np(pair.out), y_round_np(pair.gt)
        assert (s["psnr"], s["ssim"]) == pytest.approx(_gold(pair, g, (psnr_np(yo, yg), ssim_gauss_np(yo, yg))), abs=TOL_SSIM)
    # rounding Y matters: differs from the unrounded BasicSR-Y value (P2: 35.2191 vs 35.2576)
    s = score("derain_matlab", pair_p3.out_t, pair_p3.gt_t)
    assert s["psnr"] != pytest.approx(score("basicsr_y", pair_p3.out_t, pair_p3.gt_t)["psnr"], abs=1e-3)


def test_tip2018_matlab3d_uint8(pair_p2, pair_p3):
    for pair, g in ((pair_p2, (32.119048, 0.961072)), (pair_p3, (27.955554, 0.947515))):
        s = score("tip2018", pair.out_t, pair.gt_t)
        assert s["psnr"] == pytest.approx(_gold(pair, g[0], psnr_np(pair.out, pair.gt)), abs=TOL_PSNR)
        if pair.golden:
            assert s["ssim"] == pytest.approx(g[1], abs=TOL_SSIM)


def test_tip2018_wdnet_truncates_and_uses_skimage_y(pair_p3):
    gt = pair_p3.gt[:96, :128]
    out = pair_p3.out[:96, :128]
    pred = (to_tensor(out).float() + 0.7) / 255  # truncation -> out, rounding -> out + 1
    s = score("tip2018_wdnet", pred, to_tensor(gt))
    assert s["psnr"] == pytest.approx(psnr_np(y_np(out), y_np(gt)), abs=1e-9)
    assert s["ssim"] == pytest.approx(ssim_uniform_np(y_np(out), y_np(gt)), abs=1e-9)


def test_aim19_old_skimage_range_two(pair_p2):
    s = score("aim19", pair_p2.out_t, pair_p2.gt_t)
    if pair_p2.golden:
        assert s["ssim"] == pytest.approx(0.9550, abs=5e-5)
        assert s["psnr"] == pytest.approx(32.119048, abs=TOL_PSNR)
    assert s["ssim"] == pytest.approx(ssim_uniform_np(pair_p2.out / 255, pair_p2.gt / 255, data_range=2.0), abs=1e-9)


def test_fhdmi_skimage_defaults(pair_p2, pair_p3):
    for pair, g in ((pair_p2, 0.912444), (pair_p3, 0.883541)):
        s = score("fhdmi", pair.out_t, pair.gt_t)
        assert s["ssim"] == pytest.approx(_gold(pair, g, ssim_uniform_np(pair.out, pair.gt)), abs=TOL_SSIM)
        assert s["psnr"] == pytest.approx(psnr_np(pair.out, pair.gt), abs=1e-9)


def test_uhdm_and_sidd_score_unquantised_floats(pair_p3):
    gt = pair_p3.gt[:80, :96]
    rng = np.random.default_rng(11)
    pred = np.clip(gt / 255 + rng.normal(0, 0.3 / 255, gt.shape), 0, 1)  # sub-quantum differences
    pt, gtt = to_tensor(pred), to_tensor(gt)
    for name in ("uhdm", "sidd_matlab"):
        s = score(name, pt, gtt, metrics=["psnr", "ssim"])
        assert s["psnr"] == pytest.approx(psnr_np(pred, gt / 255, peak=1.0), abs=1e-9)
        assert s["psnr"] > 55  # rounding would have made pred == gt (psnr = inf)
    assert score("uhdm", pt, gtt, metrics=["ssim"])["ssim"] == pytest.approx(ssim_gauss_np(pred, gt / 255, 1.0), abs=1e-10)
    assert score("sidd_matlab", pt, gtt)["ssim"] == pytest.approx(ssim_matlab_np(pred, gt / 255, 1.0), abs=1e-10)
    assert PROTOCOLS["uhdm"].metrics == ("psnr", "ssim", "lpips") and PROTOCOLS["uhdm"].lpips_net == "alex"


def test_sidd_matlab_value_on_p3(pair_p3):
    """MATLAB on single [0,1] data with L = 1 equals the uint8/L=255 3-D value (P3: 0.947515)."""
    s = score("sidd_matlab", pair_p3.out_t.float() / 255, pair_p3.gt_t)
    assert s["ssim"] == pytest.approx(0.947515, abs=TOL_SSIM)
    assert s["psnr"] == pytest.approx(27.955554, abs=TOL_PSNR)


def test_n2n_rounds_half_up(pair_p3):
    gt = to_tensor(pair_p3.gt[:64, :64])
    k = to_tensor(pair_p3.out[:64, :64]).long().clamp(max=254)
    pred = ((2 * k + 1) / 510).float()  # exact halves: N2N rounds up, BasicSR to even
    s = score("n2n", pred, gt)
    up = (k + 1).to(torch.uint8)
    assert s["psnr"] == pytest.approx(psnr(up.double(), gt.double(), data_range=255).item(), abs=1e-12)
    b = score("basicsr", pred, gt)
    assert b["psnr"] != pytest.approx(s["psnr"], abs=1e-3)


def test_ipt_edsr_y_equals_bt601_y(pair_p2, pair_p3):
    for pair, g in ((pair_p2, 35.257645), (pair_p3, 29.391791)):
        s = score("ipt", pair.out_t, pair.gt_t)
        assert set(s) == {"n_images", "psnr"}
        ref = g if pair.golden else psnr_np(y_np(pair.out), y_np(pair.gt))
        assert s["psnr"] == pytest.approx(ref, abs=2e-4)  # weights equal to ~4e-6 relative


def test_shadow_a_worked_example(shadow_example):
    result, gt, mask = shadow_example
    s = score("shadow_a", to_tensor(result), to_tensor(gt), to_tensor(mask))
    assert [s["lab_mae_pp"], s["lab_mae_s_pp"], s["lab_mae_ns_pp"]] == pytest.approx([2.3173, 9.3832, 1.3673], abs=6e-5)
    # one image: pooled == per-image
    assert s["lab_mae_s_pi"] == pytest.approx(s["lab_mae_s_pp"], abs=1e-12)
    assert math.isfinite(s["psnr_s"]) and s["psnr_s"] > s["psnr"]  # region masking inflates PSNR
    assert 0 < s["ssim"] < 1 and 0 < s["ssim_ns"] < 1


def test_shadow_b_worked_example(shadow_example):
    result, gt, mask = shadow_example
    s = score("shadow_b", to_tensor(result), to_tensor(gt), to_tensor(mask))
    assert [s["lab_mae_pp"], s["lab_mae_s_pp"], s["lab_mae_ns_pp"]] == pytest.approx([2.3463, 9.6977, 1.3909], abs=6e-5)
    assert "psnr" not in s and "ssim" not in s


def test_gopro_is_skimage_on_clamped_floats_with_the_old_implied_ssim_range():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(7)
    gt = rng.random((40, 48, 3))
    pred = np.clip(gt + rng.normal(0, 0.05, gt.shape), 0, 1)
    ev = Evaluator("gopro")
    ev.update(torch.from_numpy(pred).permute(2, 0, 1)[None], torch.from_numpy(gt).permute(2, 0, 1)[None], names=["a"])
    s = ev.summary()
    assert s["psnr"] == pytest.approx(peak_signal_noise_ratio(gt, pred, data_range=1), abs=1e-6)
    assert s["ssim"] == pytest.approx(structural_similarity(gt, pred, channel_axis=-1, data_range=2), abs=1e-6)
