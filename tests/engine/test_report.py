"""The HTML report: metric orientation (the trainer's, from the metric table), best/worst choice,
the zoom window, a self-contained file."""

from __future__ import annotations

import base64
import re

import cv2
import numpy as np
import pytest
import torch

from restore.engine.evaluate import EvalResult
from restore.engine.report import (
    DISPLAY_SIZE,
    extremes,
    fit,
    needed,
    primary_metric,
    render,
    views,
    worst_region,
    write_report,
)


def result(protocol: str, label: str, columns: tuple[str, ...], rows: list[dict], table: str = "") -> EvalResult:
    return EvalResult(name="s", protocol=protocol, label=label, summary={"n_images": len(rows)}, rows=rows,
                      table=table or f"| metric | {protocol} ({label}) |\n|---|---:|\n| n_images | {len(rows)} |",
                      columns=columns, indices=[10 + i for i in range(len(rows))])


def test_psnr_higher_is_best_and_indices_are_the_datasets():
    r = result("basicsr", "BasicSR RGB", ("psnr", "ssim"),
               [{"name": "a", "psnr": 30.0, "ssim": 0.9}, {"name": "b", "psnr": 25.0, "ssim": 0.95},
                {"name": "c", "psnr": float("inf"), "ssim": 1.0}])
    assert primary_metric(r) == ("psnr", True)
    assert [(w, i, row["name"]) for w, i, row in extremes(r)] == [("best", 12, "c"), ("worst", 11, "b")]
    assert needed({"s": r}) == {"s": [12, 11]}


def test_shadow_lowest_lab_mae_is_best_even_with_psnr_present():
    rows = [{"name": "a", "psnr": 20.0, "psnr_s": 1.0, "psnr_ns": 2.0, "ssim": 0.5, "ssim_s": 0.1, "ssim_ns": 0.2,
             "lab_mae": 7.0, "lab_mae_s": 9.0, "lab_mae_ns": 4.0},
            {"name": "b", "psnr": 30.0, "psnr_s": 1.0, "psnr_ns": 2.0, "ssim": 0.5, "ssim_s": 0.1, "ssim_ns": 0.2,
             "lab_mae": 3.0, "lab_mae_s": None, "lab_mae_ns": 3.0}]
    cols = tuple(k for k in rows[0] if k != "name")
    r = result("shadow_a", "Shadow A: measure_shadow.m", cols, rows)
    assert primary_metric(r) == ("lab_mae", False)
    assert [(w, row["name"]) for w, _, row in extremes(r)] == [("best", "b"), ("worst", "a")]
    only_lpips = result("uhdm", "UHDM", ("lpips",), [{"name": "a", "lpips": 0.2}, {"name": "b", "lpips": 0.1}])
    assert [(w, row["name"]) for w, _, row in extremes(only_lpips)] == [("best", "b"), ("worst", "a")]


def test_single_or_valueless_images():
    one = result("basicsr", "BasicSR RGB", ("psnr",), [{"name": "a", "psnr": 31.0}])
    assert [w for w, _, _ in extremes(one)] == ["only"]
    none = result("shadow_b", "Shadow B", ("lab_mae", "lab_mae_s", "lab_mae_ns"),
                  [{"name": "a", "lab_mae": None, "lab_mae_s": None, "lab_mae_ns": None}])
    assert extremes(none) == []


def test_worst_region_finds_the_planted_error_and_clips_to_small_images():
    target = torch.zeros(3, 200, 256)
    output = target.clone()
    output[:, 120:150, 40:70] = 1.0  # the only error, 30x30
    top, left, h, w = worst_region(output, target)
    assert (h, w) == (96, 96)
    assert top <= 120 and top + 96 >= 150 and left <= 40 and left + 96 >= 70
    assert worst_region(torch.rand(3, 40, 50), torch.rand(3, 40, 50)) == (0, 0, 40, 50)


def test_fit_and_views_shapes():
    big = torch.rand(3, 700, 1024)
    assert tuple(fit(big).shape) == (3, round(700 * DISPLAY_SIZE / 1024), DISPLAY_SIZE)
    small = torch.rand(3, 48, 64)
    assert fit(small) is small
    # SR-like triple: a 2x smaller grey input is brought to the output size for display
    full, crops, (top, left, h, w) = views((torch.rand(1, 100, 120), torch.rand(3, 200, 240), torch.rand(3, 200, 240)))
    assert [tuple(v.shape) for v in full] == [(3, 200, 240)] * 3
    assert [tuple(c.shape) for c in crops] == [(3, 96, 96)] * 3 and 0 <= top <= 104 and 0 <= left <= 144


def _triple(seed: int, h: int = 48, w: int = 64):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(3, h, w, generator=g)
    return t + 0.1 * torch.randn(3, h, w, generator=g), t + 0.02 * torch.randn(3, h, w, generator=g), t


def test_report_is_self_contained_with_best_and_worst_views(tmp_path):
    table = "| metric | basicsr (BasicSR RGB) |\n|---|---:|\n| n_images | 3 |\n| psnr | 30.0000 |"
    r = result("basicsr", "BasicSR RGB", ("psnr",),
               [{"name": "x/<b>one", "psnr": 30.0}, {"name": "two", "psnr": 35.0}, {"name": "three", "psnr": 25.0}],
               table=table)
    images = {"s": {11: _triple(1), 12: _triple(2, 600, 900)}}
    path = write_report(tmp_path / "out" / "report.html", {"s": r}, images, title="exp", meta={"weights": "w.pth"})
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "</html>" in text
    assert "basicsr" in text and "BasicSR RGB" in text and "<h2>s — protocol basicsr (BasicSR RGB)</h2>" in text
    assert "<th>basicsr (BasicSR RGB)</th>" in text and "<td>30.0000</td>" in text
    assert "Best image: two" in text and "Worst image: three" in text
    assert "<script" not in text and "http://" not in text and "https://" not in text and "<link" not in text
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(uris) == 12  # 2 images x (3 full views + 3 crops)
    decoded = [cv2.imdecode(np.frombuffer(base64.b64decode(u), np.uint8), cv2.IMREAD_COLOR) for u in uris]
    assert all(d is not None for d in decoded)
    assert max(max(d.shape[:2]) for d in decoded) == DISPLAY_SIZE  # the 900x600 image was downscaled
    assert 'class="zoom" width="288" height="288"' in text and "image-rendering:pixelated" in text
    assert not list(tmp_path.glob("out/.*"))  # no temporary file left behind


def test_missing_images_and_escaping_are_handled():
    r = result("basicsr", "BasicSR RGB", ("psnr",), [{"name": "<i>a&b", "psnr": 3.0}, {"name": "c", "psnr": 4.0}])
    text = render({"s<1>": r}, {})
    assert "&lt;i&gt;a&amp;b" in text and "<i>a&b" not in text and "s&lt;1&gt;" in text
    assert text.count("images not available") == 2


@pytest.mark.parametrize("protocol,label", [("shadow_b", "Shadow B: evaluate_recovery.m")])
def test_shadow_report_says_lower_is_better(protocol, label):
    r = result(protocol, label, ("lab_mae", "lab_mae_s", "lab_mae_ns"),
               [{"name": "a", "lab_mae": 5.0, "lab_mae_s": 9.0, "lab_mae_ns": 3.0},
                {"name": "b", "lab_mae": 4.0, "lab_mae_s": 8.0, "lab_mae_ns": 3.0}])
    text = render({"istd": r}, {"istd": {11: _triple(3)}})
    assert "Best image: b (lab_mae 4.0000; lower is better)" in text and "Worst image: a" in text
    assert "Shadow B: evaluate_recovery.m" in text


def test_a_panel_renders_like_its_triple():
    from restore.engine.report import Panel, panel

    r = result("basicsr", "BasicSR RGB", ("psnr",), [{"name": "a", "psnr": 3.0}, {"name": "b", "psnr": 4.0}])
    triples = {11: _triple(4, 300, 200), 10: _triple(5)}
    panels = {i: panel(t) for i, t in triples.items()}
    assert isinstance(panels[11], Panel) and panels[11].size == (300, 200)
    meta = {"generated": "fixed"}
    assert render({"s": r}, {"s": panels}, meta=meta) == render({"s": r}, {"s": triples}, meta=meta)


def mean_abs_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).abs().flatten(1).mean(1)


def test_report_and_trainer_agree_on_every_metrics_direction():
    """For each metric of the table (a registered user metric too), the image the report calls
    best is the one whose value the trainer's best-weights rule would keep."""
    from restore.engine import trainer
    from restore.metrics.table import get_metric, metric_names, registered_metric

    values = [2.0, 1.0, 3.0]  # lowest: image 1, highest: image 2
    with registered_metric("mae", f"{__name__}:mean_abs_error", better="lower"):
        names = metric_names()
        assert names == ("psnr", "ssim", "lpips", "lab_mae", "mae")
        picked = {}
        for m in names:
            protocol = "shadow_b" if m == "lab_mae" else "basicsr"
            r = result(protocol, "x", (m,), [{"name": str(i), m: v} for i, v in enumerate(values)])
            key, higher = primary_metric(r)
            best = extremes(r)[0]
            assert key == m and best[0] == "best"
            picked[m] = int(best[2]["name"])
            # the trainer keeps a new best when the value is lower (resp. higher) than the old one
            lower = {k: trainer.best_keys()[k] for k in get_metric(m).headline_keys()}
            assert set(lower.values()) == {not higher}, (m, lower)
            assert picked[m] == (int(np.argmin(values)) if not higher else int(np.argmax(values)))
    assert picked == {"psnr": 2, "ssim": 2, "lpips": 1, "lab_mae": 1, "mae": 1}
