"""The metric table: directions, the keys each metric produces (and that the Evaluator uses them),
what a protocol can compute, and registering user metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restore.errors import ConfigError
from restore.metrics import PROTOCOLS, Evaluator
from restore.metrics.protocols import Protocol
from restore.metrics.table import (
    best_keys,
    get_metric,
    higher_is_better,
    metric_names,
    metric_of,
    ranking_order,
    register_metric,
    registered_metric,
)

ME = __name__


def mae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).abs().flatten(1).mean(1)


def scalar_mae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).abs().mean()  # one number for the batch: not a per-image metric


class CountedMAE:
    """A class target: instantiated once per Evaluator, then called per batch."""

    made = 0

    def __init__(self) -> None:
        CountedMAE.made += 1

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return mae(pred, target)


def test_builtin_directions_and_the_trainers_best_keys():
    assert {m: get_metric(m).better for m in metric_names()} == {
        "psnr": "higher", "ssim": "higher", "lpips": "lower", "lab_mae": "lower"}
    # the keys (and directions) the trainer kept best weights for before the table existed
    assert best_keys() == {"psnr": False, "ssim": False, "lpips": True, "lab_mae_pi": True, "lab_mae_pp": True}
    assert higher_is_better("psnr_s") and higher_is_better("ssim_ns")
    assert not higher_is_better("lab_mae_s_pp") and not higher_is_better("lab_mae")
    assert metric_of("lab_mae_ns_pi").name == "lab_mae" and metric_of("n_images") is None
    with pytest.raises(KeyError):
        higher_is_better("n_images_s")


def test_keys_per_shadow_family():
    lab, psnr = get_metric("lab_mae"), get_metric("psnr")
    assert psnr.row_keys(None) == psnr.row_keys("b") == ("psnr",)
    assert psnr.row_keys("a") == ("psnr", "psnr_s", "psnr_ns")
    assert lab.row_keys("b") == ("lab_mae", "lab_mae_s", "lab_mae_ns")
    assert lab.summary_keys("a") == ("lab_mae_pp", "lab_mae_pi", "lab_mae_s_pp", "lab_mae_s_pi", "lab_mae_ns_pp",
                                     "lab_mae_ns_pi")


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_evaluator_columns_and_summary_are_the_tables_keys(name):
    p = PROTOCOLS[name]
    metrics = [m for m in p.metrics if m != "lpips"]  # LPIPS needs backbone weights to construct
    ev = Evaluator(name, metrics=metrics)
    assert ev.keys == tuple(k for m in metrics for k in get_metric(m).row_keys(p.shadow))
    summary = [k for k in ev.summary() if not k.startswith("n_images")]
    assert summary == [k for m in metrics for k in get_metric(m).summary_keys(p.shadow)]


def test_shadow_a_summary_keys_are_unchanged():
    ev = Evaluator("shadow_a")
    assert list(ev.summary()) == [
        "n_images", "psnr", "psnr_s", "psnr_ns", "ssim", "ssim_s", "ssim_ns", "lab_mae_pp", "lab_mae_pi",
        "lab_mae_s_pp", "lab_mae_s_pi", "lab_mae_ns_pp", "lab_mae_ns_pi"]


def test_what_a_protocol_can_compute_follows_the_metrics_needs():
    assert PROTOCOLS["ipt"].available_metrics() == ("psnr", "lpips")  # no SSIM variant, no shadow family
    assert PROTOCOLS["shadow_b"].available_metrics() == ("psnr", "lpips", "lab_mae")
    assert PROTOCOLS["shadow_a"].available_metrics() == ("psnr", "ssim", "lpips", "lab_mae")
    with pytest.raises(ValueError, match="lists lab_mae, which needs a shadow family"):
        Protocol(name="x", label="x", description="x", metrics=("psnr", "lab_mae"))
    with pytest.raises(ValueError, match="lists ssim, which needs an SSIM variant"):
        Protocol(name="x", label="x", description="x", ssim=None)
    with pytest.raises(ValueError, match=r"unknown metrics \['sharpness'\]"):
        Protocol(name="x", label="x", description="x", metrics=("sharpness",))


def test_ranking_puts_a_shadow_protocols_own_metric_first():
    assert ranking_order(shadow=True)[:2] == ("lab_mae", "psnr")
    assert ranking_order(shadow=False) == ("psnr", "ssim", "lpips", "lab_mae")
    with registered_metric("mae", f"{ME}:mae", better="lower"):
        assert ranking_order(shadow=False) == ("psnr", "ssim", "lpips", "lab_mae", "mae")


@pytest.mark.parametrize(
    "name, target, better, message",
    [
        ("psnr", f"{ME}:mae", "lower", "taken by the built-in metric 'psnr'"),
        ("psnr_s", f"{ME}:mae", "lower", "taken by the built-in metric 'psnr'"),
        ("lab_mae_pp", f"{ME}:mae", "lower", "taken by the built-in metric 'lab_mae'"),
        ("My-MAE", f"{ME}:mae", "lower", "lower-case letters"),
        ("n_images_x", f"{ME}:mae", "lower", "lower-case letters"),
        ("mae", "mae", "lower", "must look like 'module:attribute'"),
        ("mae", f"{ME}:mae", "smaller", "'higher' or 'lower'"),
    ],
)
def test_register_metric_refuses(name, target, better, message):
    before = metric_names()
    with pytest.raises(ValueError, match=message):
        register_metric(name, target, better=better)
    assert metric_names() == before and get_metric("psnr").target == "restore.metrics.psnr:psnr"


def test_registered_metric_replaces_then_restores():
    with registered_metric("mae", f"{ME}:mae", better="lower"):
        with registered_metric("mae", f"{ME}:CountedMAE", better="higher") as inner:
            assert get_metric("mae") is inner and higher_is_better("mae")
        assert get_metric("mae").target == f"{ME}:mae" and not higher_is_better("mae")
        assert best_keys()["mae"] is True
    assert "mae" not in metric_names()
    with pytest.raises(ConfigError, match=r"unknown metric 'mae'"):
        get_metric("mae")


def _quantised(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 256, shape).astype(np.uint8)


def test_evaluator_scores_a_user_metric_on_the_protocols_images():
    rng = np.random.default_rng(3)
    pred, gt = _quantised(rng, (2, 3, 24, 20)), _quantised(rng, (2, 3, 24, 20))
    # crop 4 pixels from every border, then mean |pred - gt| in [0, 1] per image
    expected = np.abs(pred[..., 4:-4, 4:-4].astype(np.float64) - gt[..., 4:-4, 4:-4]).reshape(2, -1).mean(1) / 255.0
    with registered_metric("mae", f"{ME}:mae", better="lower"):
        ev = Evaluator("basicsr", metrics=["mae", "psnr"], crop_border=4)
        assert ev.keys == ("psnr", "mae")  # table order: built-ins first
        rows = ev.update(torch.from_numpy(pred), torch.from_numpy(gt), names=["a", "b"])
    assert [r["mae"] for r in rows] == pytest.approx(expected.tolist(), rel=1e-12)
    assert ev.summary()["mae"] == pytest.approx(expected.mean(), rel=1e-12)


def test_user_metric_under_a_shadow_protocol_has_no_region_keys():
    rng = np.random.default_rng(4)
    pred, gt = _quantised(rng, (1, 3, 16, 16)), _quantised(rng, (1, 3, 16, 16))
    with registered_metric("mae", f"{ME}:mae", better="lower"):
        ev = Evaluator("shadow_b", metrics=["lab_mae", "mae"])
        assert ev.keys == ("lab_mae", "lab_mae_s", "lab_mae_ns", "mae")
        ev.update(torch.from_numpy(pred), torch.from_numpy(gt), names=["x"])
    expected = np.abs(pred.astype(np.float64) - gt).mean() / 255.0
    assert ev.summary()["mae"] == pytest.approx(expected, rel=1e-12)


def test_a_class_target_is_instantiated_once():
    CountedMAE.made = 0
    x = torch.zeros(1, 3, 16, 16, dtype=torch.uint8)
    with registered_metric("counted", f"{ME}:CountedMAE", better="lower"):
        ev = Evaluator("basicsr", metrics=["counted"])
        for _ in range(3):
            ev.update(x, x + 51)
    assert CountedMAE.made == 1 and ev.summary()["counted"] == pytest.approx(0.2)


def test_user_metric_faults_are_one_line_config_errors():
    x = torch.zeros(2, 3, 16, 16, dtype=torch.uint8)
    with registered_metric("batchwide", f"{ME}:scalar_mae", better="lower"):
        ev = Evaluator("basicsr", metrics=["batchwide"])
        with pytest.raises(ConfigError, match=r"metric 'batchwide' .* returned shape \(\); expected one value per image, \(2,\)"):
            ev.update(x, x)
        assert ev.rows == [] and ev.summary()["n_images"] == 0
    with registered_metric("missing", f"{ME}:no_such_function", better="lower"), \
            pytest.raises(ConfigError, match=rf"^metric 'missing': cannot load '{ME}:no_such_function': "):
        Evaluator("basicsr", metrics=["missing"])
    with pytest.raises(ConfigError, match=r"unknown metric 'maee'"):
        Evaluator("basicsr", metrics=["maee"])
