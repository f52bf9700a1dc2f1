"""`restore test -opt F`: tables and paths on stdout, one-line errors with exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from restore.archs.n2n_unet import N2NUNet
from restore.cli.main import main

OPTIONS = """\
name: cli
network: {{type: n2n_unet, n_feature: 8}}
path: {{results_root: {root}/results{pretrained}}}
datasets:
  test:
    t: {{type: paired_folder, input_dir: {root}/in, target_dir: {root}/gt, protocol: sidd_matlab, num_workers: 0}}
"""


def setup(root: Path, pretrained: bool = True, n: int = 2) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        for folder in ("in", "gt"):
            (root / folder).mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(root / folder / f"{i}.png"), img)
    torch.save(N2NUNet(n_feature=8).state_dict(), root / "w.pth")
    opt = root / "o.yml"
    opt.write_text(OPTIONS.format(root=root, pretrained=f", pretrained: {root / 'w.pth'}" if pretrained else ""))
    return opt


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("restore: error: "), err
    return err[0]


def test_runs_and_prints_tables_and_paths(tmp_path, capsys):
    opt = setup(tmp_path)
    assert main(["test", "-opt", str(opt), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "| metric | sidd_matlab (SIDD MATLAB) |" in out and "| n_images | 2 |" in out
    for path in ("t/per_image.csv", "t/summary.json", "t/summary.md", "cli/summary.md", "report.html"):
        assert path in out
    assert (tmp_path / "results/cli/t/per_image.csv").is_file() and (tmp_path / "results/cli/report.html").is_file()


def test_weights_flag_and_overrides(tmp_path, capsys):
    opt = setup(tmp_path, pretrained=False)
    args = ["test", "-opt", str(opt), "--weights", str(tmp_path / "w.pth"), "--set", "datasets.test.t.save_images=true"]
    assert main(args) == 0
    assert len(list((tmp_path / "results/cli/t/images").glob("*.png"))) == 2


def test_missing_weights_is_one_line(tmp_path, capsys):
    opt = setup(tmp_path, pretrained=False)
    assert main(["test", "-opt", str(opt)]) == 2
    line = one_line(capsys)
    assert "path.pretrained" in line and "--weights" in line and "o.yml" in line
    assert not (tmp_path / "results").exists()


def test_bad_weights_file_and_device(tmp_path, capsys):
    opt = setup(tmp_path)
    assert main(["test", "-opt", str(opt), "--weights", str(tmp_path / "missing.pth")]) == 2
    assert "missing.pth" in one_line(capsys)
    assert main(["test", "-opt", str(opt), "--device", "gpu7"]) == 2
    assert "gpu7" in one_line(capsys)


def test_corrupt_image_is_one_line(tmp_path, capsys):
    opt = setup(tmp_path)
    (tmp_path / "gt" / "1.png").write_bytes(b"not a png")
    assert main(["test", "-opt", str(opt)]) == 2
    assert "1.png" in one_line(capsys)


def test_check_still_validates_without_running(tmp_path, capsys):
    opt = setup(tmp_path, pretrained=False)  # --check needs no weights
    assert main(["test", "-opt", str(opt), "--check"]) == 0
    assert "options are valid; 2 samples checked" in capsys.readouterr().out
    assert not (tmp_path / "results").exists()


def test_exit_status_through_the_console_entry_point(tmp_path):
    opt = setup(tmp_path, pretrained=False)
    proc = subprocess.run([sys.executable, "-m", "restore.cli.main", "test", "-opt", str(opt)],
                          capture_output=True, text=True)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "path.pretrained" in lines[0]


def test_approximate_precision_needs_allow_approximate(tmp_path, capsys):
    opt = setup(tmp_path)
    assert main(["test", "-opt", str(opt), "--precision", "bf16"]) == 2
    line = one_line(capsys)
    assert "bf16" in line and "--allow-approximate" in line
    assert not (tmp_path / "results").exists()
    assert main(["test", "-opt", str(opt), "--precision", "bf16", "--allow-approximate", "--progress", "off"]) == 0
    assert "backend torch, precision bf16" in capsys.readouterr().out
    assert "backend: torch, precision: bf16" in (tmp_path / "results/cli/summary.md").read_text()


def test_backend_and_precision_are_named_and_figures_match_torch(tmp_path, capsys, monkeypatch):
    import json

    import pytest

    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("RESTORE_CACHE", str(tmp_path / "cache"))
    opt = setup(tmp_path)
    figures = {}
    for backend in ("torch", "onnxruntime"):
        assert main(["test", "-opt", str(opt), "--backend", backend, "--set", f"name={backend}",
                     "--progress", "off"]) == 0
        run = json.loads((tmp_path / f"results/{backend}/results.json").read_text())
        assert (run["backend"], run["precision"]) == (backend, "fp32")
        assert (run["sets"][0]["backend"], run["sets"][0]["precision"]) == (backend, "fp32")
        assert f"backend: {backend}, precision: fp32" in (tmp_path / f"results/{backend}/summary.md").read_text()
        assert f"backend: {backend}" in (tmp_path / f"results/{backend}/report.html").read_text()
        figures[backend] = run["sets"][0]["metrics"]["psnr"]
    assert abs(figures["torch"] - figures["onnxruntime"]) < 1e-3
