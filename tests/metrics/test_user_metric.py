"""A user metric end to end: registered once in the metric table, listed in an option file's
``metrics:``, scored by ``restore test`` and by validation, and kept as lower-is-better by the
trainer's best weights. Expected values are computed here with numpy, from the image files."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from restore import registry
from restore.cli.main import main
from restore.config import load_options
from restore.engine.checkpoint import load_file
from restore.engine.trainer import Trainer
from restore.metrics.table import registered_metric

GT_GAIN = 0.8  # ground truth = round(0.8 * input): a network with gain 0.8 is (almost) perfect


def mean_abs_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The user metric: (B, C, H, W) in [0, 1] -> (B,) mean |pred - target|."""
    return (pred - target).abs().flatten(1).mean(1)


class Gain(nn.Module):
    """output = gain * input: one weight that sets how far the output is from the ground truth."""

    def __init__(self, gain: float = 1.0) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(float(gain)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain


def make_pairs(root: Path, n: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    """Inputs with even values (``gain * input * 255`` then never lies half-way between two
    levels for the gains used here) and ground truths ``round(0.8 * input)``."""
    rng = np.random.default_rng(7)
    pairs = []
    for i in range(n):
        inp = (rng.integers(0, 128, (32, 40 + 8 * i, 3)) * 2).astype(np.uint8)
        gt = np.round(GT_GAIN * inp.astype(np.float64)).astype(np.uint8)
        for folder, img in (("in", inp), ("gt", gt)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(root / folder / f"{i}.png"), img)
        pairs.append((inp, gt))
    return pairs


def expected_mae(gain: float, pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[float]:
    """Per image: the output quantised like BasicSR (uint8, round) against the ground truth, in [0, 1]."""
    out = []
    for inp, gt in pairs:
        pred = np.round(np.clip(gain * inp.astype(np.float64) / 255.0, 0.0, 1.0) * 255.0)
        out.append(float(np.mean(np.abs(pred - gt.astype(np.float64))) / 255.0))
    return out


TEST_OPTIONS = """\
name: user_metric
device: cpu
network: {{type: gain_net, gain: 1.0}}
path: {{results_root: {root}/results, pretrained: {root}/w.pth}}
datasets:
  test:
    t: {{type: paired_folder, input_dir: {root}/in, target_dir: {root}/gt, protocol: basicsr, metrics: [mae],
        num_workers: 0}}
"""


def test_restore_test_scores_a_registered_metric_and_ranks_by_it_lowest_first(tmp_path, capsys):
    pairs = make_pairs(tmp_path)
    torch.save(Gain(0.5).state_dict(), tmp_path / "w.pth")
    (tmp_path / "o.yml").write_text(TEST_OPTIONS.format(root=tmp_path))
    with registry.registered("arch", "gain_net", f"{__name__}:Gain"), \
            registered_metric("mae", f"{__name__}:mean_abs_error", better="lower"):
        assert main(["test", "-opt", str(tmp_path / "o.yml"), "--progress", "off"]) == 0
    per_image = expected_mae(0.5, pairs)
    res = tmp_path / "results/user_metric/t"
    summary = json.loads((res / "summary.json").read_text())
    assert summary["metrics"]["mae"] == pytest.approx(np.mean(per_image), rel=1e-12, abs=0)
    rows = list(csv.DictReader((res / "per_image.csv").open()))
    assert [float(r["mae"]) for r in rows] == pytest.approx(per_image, rel=1e-9)
    # the report ranks images by the only metric, lower is better: best = smallest error
    html = (tmp_path / "results/user_metric/report.html").read_text()
    best = re.search(r"<h3>Best image: (\S+) \(mae [0-9.]+; (\w+) is better\)</h3>", html)
    assert best is not None and best.group(2) == "lower"
    assert best.group(1) == str(int(np.argmin(per_image)))


def test_unregistered_metric_in_an_option_file_is_one_line(tmp_path, capsys):
    make_pairs(tmp_path, n=1)
    torch.save(Gain(0.5).state_dict(), tmp_path / "w.pth")
    (tmp_path / "o.yml").write_text(TEST_OPTIONS.format(root=tmp_path))
    with registry.registered("arch", "gain_net", f"{__name__}:Gain"):
        assert main(["test", "-opt", str(tmp_path / "o.yml"), "--progress", "off"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown metric 'mae'" in err[0] and "o.yml" in err[0], err
    assert not (tmp_path / "results").exists()


TRAIN_OPTIONS = """\
name: best
device: cpu
network: {{type: gain_net}}
datasets:
  train: {{type: synthetic_noise, root: {root}/in, noise: gauss25, crop_size: 32, batch_size: 1, num_workers: 0}}
  val:
    v: {{type: paired_folder, input_dir: {root}/in, target_dir: {root}/gt, protocol: basicsr, metrics: [psnr, mae],
        num_workers: 0}}
train: {{total_iter: 10}}
path: {{experiments_root: {root}/experiments}}
"""


def test_validation_keeps_the_weights_of_the_lowest_user_metric(tmp_path):
    pairs = make_pairs(tmp_path)
    (tmp_path / "o.yml").write_text(TRAIN_OPTIONS.format(root=tmp_path))
    gains = [0.5, 1.0, GT_GAIN, 0.6]  # errors 0.3x, 0.2x, ~0, 0.2x the input: the third is best
    with registry.registered("arch", "gain_net", f"{__name__}:Gain"), \
            registered_metric("mae", f"{__name__}:mean_abs_error", better="lower"):
        trainer = Trainer(load_options(tmp_path / "o.yml"), tensorboard=False)
        try:
            with trainer.run_lock:
                trainer.setup()
                for it, gain in enumerate(gains, start=1):
                    trainer.iteration = it
                    with torch.no_grad():
                        trainer.model.gain.fill_(gain)
                    result = trainer.validate()["v"]
                    assert result.summary["mae"] == pytest.approx(np.mean(expected_mae(gain, pairs)), rel=1e-12, abs=0)
        finally:
            trainer.log.close()
    maes = [float(np.mean(expected_mae(g, pairs))) for g in gains]
    assert trainer.best["v_mae"] == {"value": pytest.approx(min(maes), rel=1e-12, abs=0), "iter": 3}
    saved = load_file(tmp_path / "experiments/best/models/best_v_mae.pth")
    assert saved["iteration"] == 3 and float(saved["params"]["gain"]) == pytest.approx(GT_GAIN)
    assert trainer.best["v_psnr"]["iter"] == 3  # PSNR, higher is better, agrees on the best output
