"""`restore train/test --check`: dataset problems surface at load time, as one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

OPTIONS = """\
name: check
network: {{type: n2n_unet, n_feature: 8}}
train: {{total_iter: 1}}
datasets:
  train:
    type: paired_folder
    input_dir: {root}/rainy
    target_dir: {root}
    pairing: replace
    pair_replace: [rain-, norain-]
  val:
    v: {{type: synthetic_noise, root: {root}/clean, noise: {noise}}}
"""


def check(tmp_path: Path, noise: str = "gauss25") -> subprocess.CompletedProcess:
    opt = tmp_path / "o.yml"
    opt.write_text(OPTIONS.format(root=tmp_path / "data", noise=noise))
    return subprocess.run([sys.executable, "-m", "restore.cli.main", "train", "-opt", str(opt), "--check"],
                          capture_output=True, text=True)


def make_data(tmp_path: Path, n: int = 2) -> None:
    img = np.zeros((32, 32, 3), np.uint8)
    for i in range(n):
        for path in (f"data/rainy/rain-{i:03d}.png", f"data/norain-{i:03d}.png", f"data/clean/c{i}.png"):
            (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tmp_path / path), img)


def one_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_valid_layout_passes(tmp_path):
    make_data(tmp_path)
    proc = check(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout


def test_missing_folder(tmp_path):
    proc = check(tmp_path)  # no data at all: both sets are reported, each naming file, key and folder
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "o.yml: datasets.train: " in lines[0] and "rainy" in lines[0]
    assert "o.yml: datasets.val.v: " in lines[1] and "clean" in lines[1]


def test_unpaired_file(tmp_path):
    make_data(tmp_path)
    (tmp_path / "data/norain-001.png").unlink()
    assert "rain-001.png" in one_line(check(tmp_path))


def test_bad_constructor_value_names_file_and_key(tmp_path):
    make_data(tmp_path)
    line = one_line(check(tmp_path, noise="gaus25"))
    assert "o.yml: datasets.val.v" in line and "gaus25" in line


def test_zero_byte_image(tmp_path):
    make_data(tmp_path)
    (tmp_path / "data/norain-001.png").write_bytes(b"")
    line = one_line(check(tmp_path))
    assert "norain-001.png" in line and "empty" in line


def test_pair_sizes_differ(tmp_path):
    make_data(tmp_path)
    cv2.imwrite(str(tmp_path / "data/norain-000.png"), np.zeros((32, 40, 3), np.uint8))
    line = one_line(check(tmp_path))
    assert "rain-000.png" in line and "norain-000.png" in line
