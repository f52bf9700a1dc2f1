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
    assert rows[1]["lab_mae_s"] is None and rows[1]["lab_mae_ns"] is not None  # no value, not NaN
    s = ev.summary()
    assert s["lab_mae_s_pi"] == pytest.approx(rows[0]["lab_mae_s"], abs=1e-12)
    assert s["lab_mae_s_pp"] == pytest.approx(rows[0]["lab_mae_s"], abs=1e-12)
    assert s["n_images"] == 2 and s["n_images_s"] == 1 and "n_images_ns" not in s
    assert list(s)[:2] == ["n_images", "n_images_s"]
    assert "| n_images_s | 1 |" in ev.format_table().splitlines()


def test_shadow_a_region_values_of_an_empty_region_have_no_value():
    """No shadow pixels: MATLAB's region PSNR of two all-zero images is inf (and S-MAE 0/0); neither
    may enter the means. Without a mask no image has a shadow region."""
    pred, gt, mask = _shadow_batch()
    mask[1] = 0
    ev = Evaluator("shadow_a")
    rows = ev.update(pred, gt, mask, names=["big", "none"])
    assert all(rows[1][k] is None for k in ("psnr_s", "ssim_s", "lab_mae_s"))
    assert all(rows[1][k] is not None for k in ("psnr", "psnr_ns", "ssim_ns", "lab_mae_ns"))
    s = ev.summary()
    assert s["n_images_s"] == 1 and math.isfinite(s["psnr_s"])
    assert s["psnr_s"] == pytest.approx(rows[0]["psnr_s"], abs=1e-12)
    assert s["ssim_ns"] == pytest.approx((rows[0]["ssim_ns"] + rows[1]["ssim_ns"]) / 2, abs=1e-12)
    nomask = Evaluator("shadow_a")
    nomask.update(pred, gt)
    t = nomask.summary()
    assert t["n_images_s"] == 0 and math.isnan(t["psnr_s"]) and math.isnan(t["lab_mae_s_pi"])
    assert "n_images_ns" not in t and math.isfinite(t["psnr_ns"])
    assert "| n_images_s | 0 |" in nomask.format_table()


def test_region_counts_survive_the_sums_round_trip():
    pred, gt, mask = _shadow_batch()
    mask[1] = 0
    r0, r1 = Evaluator("shadow_a"), Evaluator("shadow_a")
    r0.update(pred[:1], gt[:1], mask[:1])
    r1.update(pred[1:], gt[1:], mask[1:])
    r0.load_sums(r0.sums() + r1.sums())
    full = Evaluator("shadow_a")
    full.update(pred, gt, mask)
    assert r0.summary() == pytest.approx(full.summary(), abs=1e-12)
    assert r0.summary()["n_images_s"] == 1


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_predictions_are_refused_not_dropped(bad):
    """A diverged network gives NaN; leaving it out of the mean would report 39.9 dB on 2 images."""
    torch.manual_seed(11)
    gt = torch.rand(3, 3, 32, 32)
    pred = gt + 0.01
    pred[1, 0, 5, 5] = bad
    ev = Evaluator("basicsr")
    with pytest.raises(DataError, match=r"^prediction for 'b' contains NaN/inf values$"):
        ev.update(pred, gt, names=["a", "b", "c"])
    assert ev.rows == [] and ev.summary()["n_images"] == 0  # nothing recorded
    pred[2] = math.nan
    with pytest.raises(DataError, match=r"predictions for 'b', 'c' contain NaN/inf"):
        ev.update(pred, gt, names=["a", "b", "c"])
    with pytest.raises(DataError, match="prediction for #0 contains"):  # unnamed: running index
        ev.update(pred[1:2], gt[1:2])
    with pytest.raises(DataError, match="ground truth for 'g'"):
        Evaluator("sidd_matlab").update(gt[:1], pred[1:2], names=["g"])


@pytest.mark.parametrize("protocol", ["shadow_a", "shadow_b"])
def test_non_finite_shadow_inputs_are_refused(protocol):
    pred, gt, mask = _shadow_batch()
    pred[0, 1, 3, 3] = math.nan
    with pytest.raises(DataError, match="prediction for 'x' contains NaN"):
        Evaluator(protocol).update(pred, gt, mask, names=["x", "y"])
    pred, gt, mask = _shadow_batch()
    fmask = mask.double() / 255
    fmask[1, 0, 0, 0] = math.nan
    with pytest.raises(DataError, match="mask for 'y' contains NaN"):
        Evaluator(protocol).update(pred, gt, fmask, names=["x", "y"])


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


# ------------------------------------------------------------ shadow sizes (metrics.md §4.4)
def _shadow_sized(pred_hw, gt_hw, seed=12):
    g = torch.Generator().manual_seed(seed)
    gt = torch.randint(0, 256, (1, 3, *gt_hw), generator=g, dtype=torch.uint8)
    pred = torch.randint(0, 256, (1, 3, *pred_hw), generator=g, dtype=torch.uint8)
    mask = torch.zeros(1, 1, *gt_hw, dtype=torch.uint8)
    mask[..., gt_hw[0] // 4 : gt_hw[0] // 2, gt_hw[1] // 3 : gt_hw[1] // 2] = 255
    return pred, gt, mask


def test_shadow_a_resizes_result_and_gt_independently():
    """Family A: a 256x256 result against a 640x480-style GT is valid; both go to 256x256."""
    from restore.metrics.shadow import lab_mae, prepare_family_a

    pred, gt, mask = _shadow_sized((256, 256), (60, 80))
    ev = Evaluator("shadow_a")
    (row,) = ev.update(pred, gt, mask, names=["istd"])
    xs, ys, s = prepare_family_a(pred.double() / 255, gt.double() / 255, mask)
    ref = lab_mae(xs, ys, s)
    assert row["lab_mae_s"] == pytest.approx((ref["sum_s"] / ref["n_s"]).item(), abs=1e-12)
    assert row["psnr"] == pytest.approx(psnr(xs, ys, data_range=1.0).item(), abs=1e-12)
    with pytest.raises(DataError, match=r"^image 'istd': mask is 256x256 but the ground truth is 80x60$"):
        Evaluator("shadow_a").update(pred, gt, torch.zeros(1, 1, 256, 256, dtype=torch.uint8), names=["istd"])


def test_shadow_b_gt_and_mask_go_to_the_result_size():
    """Family B: GT bicubic- and mask nearest-resized to the result's size; a mask given at the
    result's size is used as is; a mask of a third size is a pairing error."""
    from restore.metrics.shadow import lab_mae, prepare_family_b

    pred, gt, mask = _shadow_sized((30, 40), (60, 80))
    ev = Evaluator("shadow_b")
    (row,) = ev.update(pred, gt, mask, names=["srd"])
    xs, ys, s = prepare_family_b(pred.double() / 255, gt.double() / 255, mask)
    assert s.shape[-2:] == (30, 40)
    ref = lab_mae(xs, ys, s)
    assert row["lab_mae_s"] == pytest.approx((ref["sum_s"] / ref["n_s"]).item(), abs=1e-12)
    small = mask[..., 1::2, 1::2].contiguous()  # = MATLAB nearest 2x shrink of the mask
    again = Evaluator("shadow_b")
    (row2,) = again.update(pred, gt, small, names=["srd"])
    assert row2 == pytest.approx(row)
    with pytest.raises(DataError, match="'srd': mask is 20x15 but the ground truth is 80x60 and the result 40x30"):
        Evaluator("shadow_b").update(pred, gt, mask[..., :15, :20], names=["srd"])


# ------------------------------------------------------------ input validation (one DataError line)
@pytest.mark.parametrize(
    "protocol,size,crop,message",
    [
        ("basicsr", 8, None, r"^image 'x' is 8x8, smaller than the 11x11 SSIM window of protocol basicsr$"),
        ("fhdmi", 6, None, r"^image 'x' is 6x6, smaller than the 7x7 SSIM window of protocol fhdmi$"),
        ("basicsr_y", 16, 4, r"^image 'x' is 16x16 \(8x8 after crop_border 4\), smaller than the 11x11 SSIM"),
        ("basicsr", 16, 8, r"^image 'x' is 16x16: crop_border 8 leaves no pixels$"),
        ("ipt", 2, 1, r"^image 'x' is 2x2: crop_border 1 leaves no pixels$"),
    ],
    ids=["basicsr_8px", "fhdmi_6px", "cropped_too_small", "crop_too_big", "crop_too_big_psnr_only"],
)
def test_images_too_small_for_the_protocol(protocol, size, crop, message):
    out, gt = images(1, 13, (size, size))
    ev = Evaluator(protocol, crop_border=crop)
    with pytest.raises(DataError, match=message):
        ev.update(out, gt, names=["x"])
    assert ev.rows == []


@pytest.mark.parametrize("protocol,size", [("fhdmi", 7), ("ipt", 1), ("sidd_matlab", 3), ("tip2018", 1)])
def test_small_images_that_the_protocol_can_score(protocol, size):
    out, gt = images(2, 14, (size, size))
    (row, _) = Evaluator(protocol).update(out, gt)
    assert not any(math.isnan(v) for k, v in row.items() if k != "name")


def test_low_level_functions_keep_value_errors():
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    with pytest.raises(ValueError):
        ssim(x, x)
    with pytest.raises(ValueError):
        psnr(x, x, crop_border=4)


def test_batch_errors_name_every_image():
    out, gt = images(6, 15, (8, 8))
    with pytest.raises(DataError, match=r"^images 'a', 'b', 'c', 'd' \(and 2 more\) are 8x8, smaller"):
        Evaluator("basicsr").update(out, gt, names=list("abcdef"))


def test_uint16_inputs_score_like_their_8_bit_levels():
    """16-bit PNG data is float64 /65535, then quantised: 257*k is exactly level k."""
    out, gt = images(2, 16)
    wide = out.to(torch.int32) * 257
    for protocol in ("basicsr", "sidd_matlab", "tip2018_wdnet", "shadow_b"):
        a, b = Evaluator(protocol), Evaluator(protocol)
        a.update(out, gt)
        b.update(wide.to(torch.uint16), (gt.to(torch.int32) * 257).to(torch.uint16))
        assert b.summary() == pytest.approx(a.summary(), abs=1e-12, nan_ok=True), protocol
        if protocol == "basicsr":  # values between levels are rounded like a float image
            c = Evaluator(protocol)
            c.update((wide + 100).clamp(max=65535).to(torch.uint16), gt)  # k + 0.39 levels -> k
            assert c.summary() == pytest.approx(a.summary(), abs=1e-12)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.int16, torch.bool])
def test_other_integer_dtypes_are_rejected(dtype):
    out, gt = images(1, 17)
    with pytest.raises(DataError, match=rf"^image 'x': prediction has dtype {dtype}; expected uint8, uint16 or floating"):
        Evaluator("basicsr").update(out.to(dtype), gt, names=["x"])
    with pytest.raises(DataError, match="ground truth has dtype"):
        Evaluator("basicsr").update(out, gt.to(dtype), names=["x"])


def test_bad_masks_are_data_errors():
    pred, gt, mask = _shadow_batch()
    names = ["m0", "m1"]
    with pytest.raises(DataError, match=r"^images 'm0', 'm1': mask has shape \(1, 1, 64, 64\); expected \(2, 1, H, W\)"):
        Evaluator("shadow_a").update(pred, gt, mask[:1], names=names)
    with pytest.raises(DataError, match=r"mask has shape \(2, 4, 64, 64\)"):
        Evaluator("shadow_b").update(pred, gt, mask.expand(2, 4, 64, 64), names=names)
    with pytest.raises(DataError, match="mask has dtype torch.int32"):
        Evaluator("shadow_b").update(pred, gt, mask.to(torch.int32), names=names)
    # accepted forms: (B, H, W), 3-channel, bool, uint16 -- all the same shadow region
    ref = Evaluator("shadow_a")
    ref.update(pred, gt, mask)
    for m in (mask[:, 0], mask.expand(2, 3, 64, 64), mask.bool(), mask.to(torch.int32).mul(257).to(torch.uint16)):
        ev = Evaluator("shadow_a")
        ev.update(pred, gt, m)
        assert ev.summary() == pytest.approx(ref.summary(), abs=1e-12)
    single = Evaluator("shadow_a")
    single.update(pred[0], gt[0], mask[0, 0])  # (C, H, W) image with an (H, W) mask
    assert single.rows[0]["lab_mae_s"] == pytest.approx(ref.rows[0]["lab_mae_s"], abs=1e-12)


def test_wrong_rank_and_empty_images():
    out, gt = images(1, 18)
    with pytest.raises(DataError, match=r"^image 'x': expected \(B, C, H, W\)"):
        Evaluator("basicsr").update(out[0, 0], gt[0, 0], names=["x"])
    with pytest.raises(DataError, match="empty image"):
        Evaluator("shadow_b").update(out[..., :0, :], gt, names=["x"])


# ------------------------------------------------------------ devices
def test_target_and_mask_follow_the_prediction_device(monkeypatch):
    """device=None: target and mask are moved to pred's device (a CUDA prediction with CPU ground
    truth must not fail). 'meta' stands in for the GPU: scoring stops at quantize."""
    import restore.metrics.evaluator as evaluator

    seen = []

    class Stop(Exception):
        pass

    def spy(x, *args, **kwargs):
        seen.append(x.device.type)
        if len(seen) == 2:
            raise Stop
        return x

    monkeypatch.setattr(evaluator, "quantize", spy)
    pred, gt, mask = _shadow_batch()
    with pytest.raises(Stop):
        Evaluator("basicsr").update(pred.to(torch.uint8).to("meta"), gt.to(torch.uint8))
    assert seen == ["meta", "meta"]
    seen.clear()
    with pytest.raises(Stop):
        Evaluator("basicsr", device="meta").update(pred.to(torch.uint8), gt.to(torch.uint8))
    assert seen == ["meta", "meta"]
    seen.clear()
    moved = {}
    monkeypatch.setattr(Evaluator, "_check", lambda self, p, t, m, n: moved.update(p=p, t=t, m=m))
    with pytest.raises(Stop):
        Evaluator("shadow_b").update(pred.to("meta"), gt, mask)
    assert {k: v.device.type for k, v in moved.items()} == {"p": "meta", "t": "meta", "m": "meta"}


def test_sums_device():
    ev = Evaluator("basicsr")
    assert ev.sums().device.type == "cpu"  # default: CPU (gloo); NCCL: the engine passes its device
    assert ev.sums("meta").device.type == "meta"
    assert Evaluator("basicsr", device="meta").sums().device.type == "meta"
