"""`restore test` results: paper tables, the input row, a locked and staged results folder, writes
that stay inside it, sets without ground truth, and progress output."""

from __future__ import annotations

import csv
import fcntl
import json
import math
import os
import pty
import struct
import subprocess
import sys
import termios
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from restore.archs.n2n_unet import N2NUNet
from restore.cli.main import main

OPTIONS = """\
name: run
network: {{type: n2n_unet, n_feature: 8}}
path: {{results_root: {root}/results, pretrained: {root}/w.pth}}
datasets:
  test:
    pairs: {{type: paired_folder, input_dir: {root}/in, target_dir: {root}/gt, num_workers: 0}}
    noisy: {{type: noisy_folder, root: {root}/in, num_workers: 0}}
"""


def setup(root: Path, n: int = 3, text: str = OPTIONS) -> Path:
    rng = np.random.default_rng(1)
    for i in range(n):
        clean = rng.integers(40, 216, (32, 32, 3), dtype=np.uint8)
        noisy = np.clip(clean.astype(int) + rng.integers(-25, 26, clean.shape), 0, 255).astype(np.uint8)
        for folder, img in (("in", noisy), ("gt", clean)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(root / folder / f"{i}.png"), img)
    torch.manual_seed(0)
    torch.save(N2NUNet(n_feature=8).state_dict(), root / "w.pth")
    opt = root / "o.yml"
    opt.write_text(text.format(root=root))
    return opt


def one_line(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("restore: error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def psnr_rgb(a: Path, b: Path) -> float:
    x, y = (cv2.imread(str(p)).astype(np.float64) for p in (a, b))
    return 10 * math.log10(255.0**2 / np.mean((x - y) ** 2))


@pytest.fixture
def done(tmp_path, capsys):
    """One finished run: (root, stdout)."""
    opt = setup(tmp_path)
    assert main(["test", "-opt", str(opt), "--progress", "lines"]) == 0
    return tmp_path, capsys.readouterr().out


def test_table_has_a_row_per_set_and_the_degraded_input(done):
    root, out = done
    res = root / "results/run"
    summary = json.loads((res / "pairs/summary.json").read_text())
    # the input row is the noisy input scored against the clean target (numpy, RGB PSNR)
    expected_input = np.mean([psnr_rgb(root / "in" / f"{i}.png", root / "gt" / f"{i}.png") for i in range(3)])
    assert summary["input_metrics"]["psnr"] == pytest.approx(expected_input, abs=1e-9)
    rows = list(csv.reader((res / "table.csv").open()))
    assert rows[0] == ["set", "protocol", "images", "PSNR (dB)", "SSIM"]
    assert rows[1] == ["pairs", "basicsr", "3", f"{summary['metrics']['psnr']:.2f}", f"{summary['metrics']['ssim']:.4f}"]
    assert rows[2][:4] == ["pairs (input)", "basicsr", "3", f"{expected_input:.2f}"]
    assert rows[3] == ["noisy", "not scored", "3", "", ""]
    md = (res / "table.md").read_text()
    assert "| pairs | basicsr | 3 |" in md and "| pairs (input) |" in md and md in out
    tex = (res / "table.tex").read_text()
    assert tex.startswith("\\begin{tabular}{llrrr}\n\\toprule\nset & protocol & images & PSNR (dB) & SSIM \\\\\n")
    assert "\\bottomrule" in tex and "pairs (input) & basicsr & 3 &" in tex
    html = (res / "report.html").read_text()
    assert html.index('<table class="summary">') < html.index('id="set-pairs"')
    assert not (res / ".partial").exists() and not (res / ".old").exists()


def test_a_set_without_ground_truth_is_restored_and_saved(done):
    root, out = done
    res = root / "results/run/noisy"
    summary = json.loads((res / "summary.json").read_text())
    assert summary["scored"] is False and summary["protocol"] is None and summary["n_images"] == 3
    assert sorted(p.name for p in (res / "images").glob("*.png")) == ["0.png", "1.png", "2.png"]
    assert "no ground truth" in out and "has no ground truth" not in out


def test_digits_and_metric_choice(tmp_path, capsys):
    opt = setup(tmp_path, n=2)
    assert main(["test", "-opt", str(opt), "--digits", "psnr=3", "ssim=1", "--table-metrics", "ssim", "psnr",
                 "--progress", "off"]) == 0
    rows = list(csv.reader((tmp_path / "results/run/table.csv").open()))
    assert rows[0][3:] == ["SSIM", "PSNR (dB)"]
    ssim, psnr = rows[1][3:]
    assert len(ssim.split(".")[1]) == 1 and len(psnr.split(".")[1]) == 3
    capsys.readouterr()
    assert main(["test", "-opt", str(opt), "--digits", "psnr=x"]) == 2
    one_line(capsys, "--digits", "psnr=x")
    assert main(["test", "-opt", str(opt), "--table-metrics", "psnr", "sharpness"]) == 2
    one_line(capsys, "sharpness")


def test_second_run_of_the_same_name_is_refused_while_the_first_holds_the_folder(done, capsys):
    root, _ = done
    before = snapshot(root / "results/run")
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from restore.utils.folder_lock import FolderLock
            FolderLock({str(root / 'results/run')!r}, "results").acquire()
            print("locked", flush=True)
            sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["test", "-opt", str(root / "o.yml"), "--progress", "off"]) == 2
        one_line(capsys, "in use", f"process {holder.pid}", "results/run")
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    after = snapshot(root / "results/run")
    assert {k: v for k, v in after.items() if k != ".lock"} == {k: v for k, v in before.items() if k != ".lock"}


def test_a_bad_file_mid_set_leaves_the_previous_results_intact(done, capsys):
    root, _ = done
    before = snapshot(root / "results/run")
    data = (root / "gt/1.png").read_bytes()
    (root / "gt/1.png").write_bytes(data[: len(data) // 2])  # the header still reads: only decoding fails
    proc = subprocess.run([sys.executable, "-m", "restore.cli.main", "test", "-opt", str(root / "o.yml")],
                          capture_output=True, text=True)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "gt/1.png" in lines[0]
    assert snapshot(root / "results/run") == before
    assert not (root / "results/run/.partial").exists()


def test_a_failed_first_run_leaves_no_results_folder(tmp_path, capsys):
    opt = setup(tmp_path)
    data = (tmp_path / "in/2.png").read_bytes()
    (tmp_path / "in/2.png").write_bytes(data[: len(data) // 2])
    assert main(["test", "-opt", str(opt), "--progress", "off"]) == 2
    one_line(capsys, "in/2.png")
    assert not (tmp_path / "results").exists()


def test_set_names_cannot_send_writes_outside_the_results_folder(tmp_path, capsys):
    escape = tmp_path / "escaped"
    text = OPTIONS.replace("    pairs:", "    '../../escaped':").replace("    noisy: {{type: noisy_folder, root: {root}/in, num_workers: 0}}\n", "")  # noqa: E501
    opt = setup(tmp_path, n=1, text=text)
    assert main(["test", "-opt", str(opt), "--progress", "off"]) == 2
    one_line(capsys, "escaped")
    assert not escape.exists() and not (tmp_path / "results").exists()
    for name in ("table.md", "report.html", ".partial"):
        opt.write_text(OPTIONS.replace("    pairs:", f"    '{name}':").format(root=tmp_path))
        assert main(["test", "-opt", str(opt), "--progress", "off"]) == 2
        one_line(capsys, name)


def test_a_link_planted_in_the_results_folder_is_replaced_not_followed(done, capsys):
    root, _ = done
    outside = root / "elsewhere"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    pairs = root / "results/run/pairs"
    os.rename(pairs, root / "moved")
    pairs.symlink_to(outside, target_is_directory=True)
    assert main(["test", "-opt", str(root / "o.yml"), "--progress", "off"]) == 0
    assert not pairs.is_symlink() and (pairs / "per_image.csv").is_file()
    assert [p.name for p in outside.iterdir()] == ["keep.txt"] and (outside / "keep.txt").read_text() == "mine"


def test_a_results_name_that_is_a_file(tmp_path, capsys):
    opt = setup(tmp_path, n=1)
    (tmp_path / "results").mkdir()
    (tmp_path / "results/run").write_text("not a folder")
    assert main(["test", "-opt", str(opt), "--progress", "off"]) == 2
    one_line(capsys, "results/run", "is a file")
    assert (tmp_path / "results/run").read_text() == "not a folder"


def test_progress_lines_without_a_terminal(done):
    _, out = done
    finals = [ln for ln in out.splitlines() if ln.startswith("pairs: 3/3 images in ")]
    assert len(finals) == 1 and "img/s" in finals[0]


def test_progress_bar_on_a_terminal(tmp_path):
    opt = setup(tmp_path, n=2)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal has a width
    try:
        proc = subprocess.run([sys.executable, "-m", "restore.cli.main", "test", "-opt", str(opt)],
                              stdout=subprocess.PIPE, stderr=slave, text=True, timeout=300)
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
    bar = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert "pairs: 100%" in bar and "2/2" in bar and "img/s" in bar
    assert "images in" not in proc.stdout  # no plain lines when the bar is shown
