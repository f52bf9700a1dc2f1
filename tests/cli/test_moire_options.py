"""Synthetic moiré from option files: a ``degraded_folder`` (alone or as a mixture source)
loads and yields aligned pairs; a bad degradation name or moiré option is one line at load
time through the real command line (exit 2, nothing written), as for every other key.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from restore.cli.main import main

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
name: moire_run
network: {{type: n2n_unet, n_feature: 8}}
datasets:
  train:
    type: degraded_folder
    root: {clean}
    degradation: moire
    degradation_args: {{blur: [0.2, 0.3], pitch_ratio: [0.95, 1.05], demosaic: bilinear}}
    crop_size: 32
    batch_size: 2
    num_workers: 0
  val:
    mixed:
      type: mixture
      sources:
        - {{type: degraded_folder, root: {clean}, degradation: moire_strong, task: demoire}}
        - {{type: degraded_folder, root: {clean}, degradation: gauss25}}
train: {{total_iter: 1, log_every: 1, val_every: 1}}
path:
  experiments_root: {tmp}/exp
  results_root: {tmp}/results
"""


@pytest.fixture
def good(tmp_path: Path) -> str:
    import cv2

    clean = tmp_path / "clean"
    clean.mkdir()
    yy, xx = np.mgrid[0:48, 0:48]
    for i in range(2):
        image = np.stack([(xx * 5 + i * 40) % 256, (yy * 5) % 256, ((xx + yy) * 3) % 256], axis=2)
        cv2.imwrite(str(clean / f"{i}.png"), image.astype(np.uint8))
    return GOOD.format(clean=clean, tmp=tmp_path)


def fails(capsys, argv: list[str], *fragments: str) -> str:
    """Run ``restore ARGV``; assert exit 2 and one error line holding every fragment."""
    assert main([str(a) for a in argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("restore: error: "), captured.err
    assert "Traceback" not in captured.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def nothing_written(tmp_path: Path) -> None:
    assert not (tmp_path / "exp").exists() and not (tmp_path / "results").exists()


def test_the_good_file_loads_and_yields_aligned_moire_pairs(tmp_path, good):
    from restore.config import load_options

    opt = tmp_path / "o.yml"
    opt.write_text(good)
    options = load_options(opt)
    train = options.datasets.train.dataset.build()
    sample = train[(0, 7)]
    assert sample["input"].shape == sample["target"].shape == (3, 32, 32) and sample["task"] == "moire"
    assert sample["input"].dtype == torch.float32 and 0 <= float(sample["input"].min()) <= float(sample["input"].max()) <= 1
    assert (sample["input"] - sample["target"]).abs().mean() > 0.01
    assert torch.equal(train[(0, 7)]["input"], sample["input"])  # a pure function of the key
    assert train.degradation.blur == (0.2, 0.3) and train.degradation.pitch_ratio == (0.95, 1.05)
    mixed = options.datasets.val["mixed"].dataset.build()
    assert mixed.tasks == ["demoire", "gauss25"] and len(mixed) == 4
    whole = mixed[0]
    assert whole["input"].shape == whole["target"].shape == (3, 48, 48) and whole["name"].startswith("demoire/")
    nothing_written(tmp_path)


def test_the_good_file_trains_one_iteration(tmp_path, capsys, good):
    opt = tmp_path / "o.yml"
    opt.write_text(good)
    assert main(["train", "-opt", str(opt), "--no-tensorboard"]) == 0
    assert (tmp_path / "exp" / "moire_run" / "models" / "final.pth").is_file()


FAULTS = [
    ("blur: [0.2, 0.3]", "blur: [0.3, 0.2]",
     ["key 'datasets.train.degradation_args.blur' is invalid", "'blur' must be a number or [low, high] with low <= high"]),
    ("blur: [0.2, 0.3]", "blur: [-0.1, 0.3]", ["key 'datasets.train.degradation_args.blur' is invalid", "'blur' must lie in [0, 5]"]),
    ("pitch_ratio: [0.95, 1.05]", "pitch_ratio: fine",
     ["key 'datasets.train.degradation_args.pitch_ratio' is invalid", "'pitch_ratio' must be a number or [low, high]"]),
    ("demosaic: bilinear", "demosaic: ahd", ["'demosaic' must be one of bilinear, ea, vng, got 'ahd'"]),
    ("demosaic: bilinear", "render_scale: 2", ["'render_scale' must be an integer in 3..12, got 2"]),
    ("demosaic: bilinear", "jpeg_prob: 2", ["'jpeg_prob' must be a probability in [0, 1], got 2"]),
    ("demosaic: bilinear", "pitch: 1",
     ["key 'datasets.train.degradation_args.pitch' is invalid: unknown option 'pitch' for degradation 'moire'"]),
    ("degradation: moire\n", "degradation: moir\n",
     ["key 'datasets.train.degradation' is invalid: unknown degradation 'moir'", "moire, moire_strong"]),
    ("degradation: moire_strong, task", "degradation: moire_strong, degradation_args: {distortion: 0.5}, task",
     ["key 'datasets.val.mixed.sources.0.degradation_args.distortion' is invalid", "'distortion' must lie in [-0.2, 0.2]"]),
]


@pytest.mark.parametrize("command", ["options", "train"])
@pytest.mark.parametrize("old,new,fragments", FAULTS)
def test_a_bad_moire_option_is_one_line_at_load_time(tmp_path, capsys, good, command, old, new, fragments):
    assert old in good
    opt = tmp_path / "o.yml"
    opt.write_text(good.replace(old, new, 1))
    fails(capsys, [command, "-opt", opt], f"restore: error: {opt}: ", *fragments)
    nothing_written(tmp_path)


def test_a_bad_moire_option_from_set_blames_it(tmp_path, capsys, good):
    opt = tmp_path / "o.yml"
    opt.write_text(good)
    fails(capsys, ["train", "-opt", opt, "--set", "datasets.train.degradation_args.noise=[0, 0.9]"],
          "--set datasets.train.degradation_args.noise: key 'datasets.train.degradation_args.noise' is invalid",
          "'noise' must lie in [0, 0.5]")
    nothing_written(tmp_path)


def test_in_a_real_process_the_exit_status_is_2_and_stderr_one_line(tmp_path, good):
    opt = tmp_path / "o.yml"
    opt.write_text(good.replace("blur: [0.2, 0.3]", "blur: [0.3, 0.2]"))
    proc = subprocess.run([sys.executable, "-m", "restore.cli.main", "train", "-opt", str(opt)],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"restore: error: {opt}: key 'datasets.train.degradation_args.blur'")
    nothing_written(tmp_path)
