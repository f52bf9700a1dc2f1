"""Evaluator mechanics: rows, sums/load_sums pooling, PP vs PI, uint8 vs float, errors, table."""

from __future__ import annotations

import math

import pytest
import torch

from restore.errors import ConfigError, DataError
from restore.metrics import Evaluator, psnr, ssim


def images(n: int, seed: int, size=(48, 40)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    gt = torch.randint(0, 256, (n, 3, *size), generator=g, dtype=torch.uint8)
    noise = torch.randint(-20, 21, gt.shape, generator=g)
    out = (gt.long() + noise).clamp(0, 255).to(torch.uint8)
    return out, gt


def test_rows_match_the_metric_functions():
    out, gt = images(3, 0)
    ev = Evaluator("basicsr")
    rows = ev.update(out, gt, names=["a", "b", "c"])
    assert [r["name"] for r in rows] == ["a", "b", "c"] and ev.rows == rows
    p = psnr(out.double(), gt.double(), data_range=255)
    s = ssim(out.double(), gt.double(), data_range=255)
    for i, r in enumerate(rows):
        assert r["psnr"] == pytest.approx(p[i].item(), abs=1e-12)
        assert r["ssim"] == pytest.approx(s[i].item(), abs=1e-12)
    summ = ev.summary()
    assert summ["n_images"] == 3
    assert summ["psnr"] == pytest.approx(p.mean().item(), abs=1e-12)  # mean of per-image dB
    ev.update(out[:1], gt[:1])
    assert ev.rows[-1]["name"] == "3"  # default names are running indices


@pytest.mark.parametrize(
    "protocol", ["basicsr", "basicsr_y", "derain_matlab", "tip2018", "aim19", "fhdmi", "n2n", "ipt", "uhdm", "sidd_matlab"]
)
def test_uint8_and_float_inputs_agree(protocol):
    """Images read from disk (uint8) and the same images as float k/255 score identically."""
    out, gt = images(2, 1)
    metrics = ["psnr", "ssim"] if protocol in ("uhdm",) else None
    a = Evaluator(protocol, metrics=metrics)
    a.update(out, gt)
    b = Evaluator(protocol, metrics=metrics)
    b.update(out.float() / 255, gt.float() / 255)
    quantised = a.protocol.quantize is not None
    # unquantised protocols keep float inputs: float32 k/255 is off by <= 3e-8 relative
    tol = 1e-9 if quantised else 1e-6
    for k, v in a.summary().items():
        assert b.summary()[k] == pytest.approx(v, abs=tol), k
    if quantised:  # float16 GT: truncating k/255*255 would lose levels; targets are rounded
        c = Evaluator(protocol, metrics=metrics)
        c.update(out.double() / 255, gt.half() / 255)
        assert c.summary() == pytest.approx(a.summary(), abs=1e-9)


def test_trunc_protocol_keeps_wdnet_semantics():
    out, gt = images(1, 2)
    a = Evaluator("tip2018_wdnet")
    a.update(out, gt)
    b = Evaluator("tip2018_wdnet")
    b.update((out.float() + 0.99) / 255, gt)  # WDNet's np.uint8(x*255) truncates this to out
    assert b.summary()["psnr"] == pytest.approx(a.summary()["psnr"], abs=1e-12)
    c = Evaluator("basicsr_y")
    c.update((out.float() + 0.99) / 255, gt)  # rounding protocols get out + 1
    assert c.summary()["psnr"] != pytest.approx(a.summary()["psnr"], abs=1e-3)


def test_sums_round_trip_pools_ranks():
    out, gt = images(5, 3)
    full = Evaluator("basicsr")
    full.update(out[:2], gt[:2])
    full.update(out[2:], gt[2:])
    r0, r1 = Evaluator("basicsr"), Evaluator("basicsr")
    r0.update(out[:2], gt[:2])
    r1.update(out[2:], gt[2:])
    t = r0.sums() + r1.sums()  # what an all-reduce(SUM) produces
    assert t.dtype == torch.float64 and t.ndim == 1 and len(t) == len(r0.sum_names())
    r0.load_sums(t)
    assert r0.summary() == pytest.approx(full.summary(), abs=1e-12)
    fresh = Evaluator("basicsr")
    fresh.load_sums(full.sums())
    assert fresh.summary() == pytest.approx(full.summary(), abs=1e-12)
    with pytest.raises(ValueError):
        fresh.load_sums(torch.zeros(3))
    fresh.reset()
    assert fresh.summary()["n_images"] == 0 and math.isnan(fresh.summary()["psnr"])


def _shadow_batch():
    torch.manual_seed(4)
    gt = torch.rand(2, 3, 64, 64, dtype=torch.float64)
    mask = torch.zeros(2, 1, 64, 64, dtype=torch.uint8)
    mask[0, :, 8:40, 8:40] = 255  # big shadow
    mask[1, :, 30:36, 30:36] = 255  # small shadow
    pred = torch.where(mask.bool(), gt * 0.7, gt * 0.98 + 0.01)
    pred[1] = torch.where(mask[1].bool(), gt[1] * 0.3, pred[1])  # the small shadow is badly restored
    return pred, gt, mask


@pytest.mark.parametrize("protocol", ["shadow_a", "shadow_b"])
def test_pooled_vs_per_image_lab_mae(protocol):
    pred, gt, mask = _shadow_batch()
    ev = Evaluator(protocol, metrics=["lab_mae"])
    rows = ev.update(pred, gt, mask, names=["big", "small"])
    s = ev.summary()
    # per-image mean of the rows
    assert s["lab_mae_s_pi"] == pytest.approx((rows[0]["lab_mae_s"] + rows[1]["lab_mae_s"]) / 2, abs=1e-12)
    # pooled: weighted by the shadow pixel counts, so dominated by the big shadow
    pool = dict(zip(ev.sum_names(), ev.sums().tolist()))
    assert s["lab_mae_s_pp"] == pytest.approx(pool["pool:sum_s"] / pool["pool:n_s"], abs=1e-12)
    assert abs(s["lab_mae_s_pp"] - rows[0]["lab_mae_s"]) < abs(s["lab_mae_s_pi"] - rows[0]["lab_mae_s"])
    assert s["lab_mae_s_pp"] != pytest.approx(s["lab_mae_s_pi"], abs=1e-3)
    # equal image sizes: ALL is the same both ways
    assert s["lab_mae_pp"] == pytest.approx(s["lab_mae_pi"], abs=1e-12)
    if protocol == "shadow_b":
        assert pool["pool:n_s"] == 32 * 32 + 6 * 6  # native size, mask != 0


def test_images_without_shadow_are_left_out_of_the_per_image_mean():
    pred, gt, mask = _shadow_batch()
    mask[1] = 0
    ev = Evaluator("shadow_b")
    rows = ev.update(pred, gt, mask)
    assert math.isnan(rows[1]["lab_mae_s"])
    s = ev.summary()
    assert s["lab_mae_s_pi"] == pytest.approx(rows[0]["lab_mae_s"], abs=1e-12)
    assert s["lab_mae_s_pp"] == pytest.approx(rows[0]["lab_mae_s"], abs=1e-12)


def test_shadow_a_rows_and_float_mask():
    pred, gt, mask = _shadow_batch()
    a = Evaluator("shadow_a")
    a.update(pred, gt, mask)
    b = Evaluator("shadow_a")
    b.update(pred, gt, mask.float() / 255)
    assert set(a.keys) == {"psnr", "psnr_s", "psnr_ns", "ssim", "ssim_s", "ssim_ns", "lab_mae", "lab_mae_s", "lab_mae_ns"}
    assert a.summary() == pytest.approx(b.summary(), abs=1e-12)


def test_identical_images_give_inf_psnr():
    out, _ = images(1, 5)
    ev = Evaluator("basicsr")
    (row,) = ev.update(out, out)
    assert math.isinf(row["psnr"]) and row["ssim"] == pytest.approx(1.0)
    assert math.isinf(ev.summary()["psnr"])


def test_crop_border_override():
    out, gt = images(1, 6)
    ev = Evaluator("basicsr", crop_border=4)
    ev.update(out, gt)
    assert ev.summary()["psnr"] == pytest.approx(psnr(out.double(), gt.double(), data_range=255, crop_border=4).item())
    with pytest.raises(ConfigError):
        Evaluator("shadow_a", crop_border=2)


def test_metric_selection_errors():
    with pytest.raises(ConfigError, match="did you mean 'psnr'"):
        Evaluator("basicsr", metrics=["psnrr"])
    with pytest.raises(ConfigError, match="'ssim' is not defined for protocol 'ipt'"):
        Evaluator("ipt", metrics=["ssim"])
    with pytest.raises(ConfigError):
        Evaluator("basicsr", metrics=["lab_mae"])
    assert Evaluator("basicsr", metrics=["ssim"]).keys == ("ssim",)


def test_shape_errors_name_the_images():
    out, gt = images(1, 7)
    with pytest.raises(DataError, match="img7"):
        Evaluator("basicsr").update(out, gt[..., :-1], names=["img7"])
    with pytest.raises(DataError):
        Evaluator("shadow_a").update(out[:, :1], gt[:, :1])


def test_single_image_and_grey_inputs():
    out, gt = images(1, 8)
    ev = Evaluator("basicsr_y")
    ev.update(out[0], gt[0])  # (C, H, W) is accepted as a batch of one
    grey = Evaluator("basicsr_y")
    grey.update(out[:, :1], gt[:, :1])  # grey images are their own luma
    assert grey.summary()["psnr"] == pytest.approx(psnr(out[:, :1].double(), gt[:, :1].double(), data_range=255).item())


def test_format_table_names_the_protocol():
    out, gt = images(2, 9)
    ev = Evaluator("fhdmi")
    ev.update(out, gt)
    table = ev.format_table()
    lines = table.splitlines()
    assert lines[0] == "| metric | fhdmi (FHDMi) |"
    assert lines[1] == "|---|---:|"
    assert "| n_images | 2 |" in lines
    assert any(line.startswith("| psnr | ") for line in lines) and any(line.startswith("| ssim | ") for line in lines)
    titled = ev.format_table(ev.summary(), title="2 images, a vs b").splitlines()
    assert titled[0] == "2 images, a vs b" and titled[2] == lines[0]


def test_device_argument_cpu():
    out, gt = images(1, 10)
    ev = Evaluator("basicsr", device="cpu")
    ev.update(out, gt)
    assert ev.sums().device.type == "cpu"
