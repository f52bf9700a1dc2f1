"""`--check` checks everything a run would touch and lists every problem (train, test, infer)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from restore.archs.n2n_unet import N2NUNet
from restore.cli.main import main

NETWORK = "network: {type: n2n_unet, n_feature: 8}\n"
TEST = """\
name: chk
device: cpu
{network}path: {{results_root: {root}/results}}
datasets:
  test:
    t: {{type: paired_folder, input_dir: {root}/in, target_dir: {root}/gt, num_workers: 0}}
"""
TRAIN = """\
name: chk
device: cpu
{network}path: {{experiments_root: {root}/exp}}
train: {{total_iter: 1}}
datasets:
  train: {{type: paired_folder, input_dir: {root}/in, target_dir: {root}/gt, crop_size: 8, batch_size: 1, num_workers: 0}}
"""


def write(path: Path, seed: int = 0, h: int = 16, w: int = 16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8))
    return path


def truncate(path: Path, keep: int = 60) -> None:
    """Keep the signature, the whole header and the start of the pixel data: the header reads fine."""
    path.write_bytes(path.read_bytes()[:keep])


@pytest.fixture
def data(tmp_path) -> Path:
    for i in range(3):
        write(tmp_path / f"in/{i}.png", seed=i)
        write(tmp_path / f"gt/{i}.png", seed=10 + i)
    torch.save(N2NUNet(n_feature=8).state_dict(), tmp_path / "w.pth")
    return tmp_path


def opt(root: Path, template: str, network: str = NETWORK, name: str = "o.yml") -> str:
    path = root / name
    path.write_text(template.format(root=root, network=network))
    return str(path)


def errors(capfd) -> tuple[list[str], str]:
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err and "libpng" not in captured.err, captured.err
    lines = captured.err.strip().splitlines()
    assert all(line.startswith("restore: error: ") for line in lines), lines
    return lines, captured.out


def test_a_truncated_png_with_a_valid_header_fails_check_but_passes_quick(data, capfd):
    truncate(data / "in/1.png")
    for command, template in (("train", TRAIN), ("test", TEST)):
        args = [command, "-opt", opt(data, template)] + (["--weights", str(data / "w.pth")] if command == "test" else [])
        assert main(args + ["--check"]) == 2
        lines, _ = errors(capfd)
        assert len(lines) == 1 and "in/1.png" in lines[0] and "truncated" in lines[0], lines
        assert main(args + ["--check=quick"]) == 0  # headers only: the documented blind spot
        _, out = errors(capfd)
        assert "options are valid" in out and "headers" in out


def test_every_problem_is_listed(data, capfd):
    (data / "in/0.png").write_bytes(b"")
    truncate(data / "gt/1.png")
    write(data / "gt/2.png", h=20)  # size mismatch
    assert main(["train", "-opt", opt(data, TRAIN), "--check"]) == 2
    lines, out = errors(capfd)
    assert len(lines) == 3, lines
    assert "in/0.png" in lines[0] and "empty" in lines[0]
    assert "gt/1.png" in lines[1] and "truncated" in lines[1]
    assert "gt/2.png" in lines[2] and "16x20" in lines[2]
    assert all("o.yml: datasets.train: " in line for line in lines)
    assert out == ""


def test_problems_past_the_cap_are_counted(data, capfd):
    for i in range(25):
        (data / f"in/x{i:02d}.png").write_bytes(b"")
        (data / f"gt/x{i:02d}.png").write_bytes(b"")
    assert main(["train", "-opt", opt(data, TRAIN), "--check=quick"]) == 2
    lines, _ = errors(capfd)
    assert len(lines) == 21
    assert lines[-1] == "restore: error: ... and 30 more problems (50 in all)"


def test_test_check_checks_the_weights(data, capfd):
    args = ["test", "-opt", opt(data, TEST), "--check"]
    assert main(args + ["--weights", str(data / "missing.pth")]) == 2
    lines, _ = errors(capfd)
    assert len(lines) == 1 and "missing.pth" in lines[0] and "does not exist" in lines[0]

    assert main(args) == 0  # neither --weights nor path.pretrained: the data alone, and said so
    _, out = errors(capfd)
    assert "no weights given" in out and "none checked" in out

    wide = opt(data, TEST, network="network: {type: n2n_unet, n_feature: 16}\n", name="wide.yml")
    (data / "in/2.png").write_bytes(b"")
    assert main(["test", "-opt", wide, "--check", "--weights", str(data / "w.pth")]) == 2
    lines, _ = errors(capfd)  # the weights AND the file, not just the first problem
    assert len(lines) == 2 and "do not fit" in lines[0] and "shape mismatch" in lines[0]
    assert "in/2.png" in lines[1]

    (data / "in/2.png").unlink()
    write(data / "in/2.png")
    assert main(args + ["--weights", str(data / "w.pth")]) == 0
    _, out = errors(capfd)
    assert "weights '" in out and "fit the network" in out and "3 samples checked (files decoded" in out
    assert not (data / "results").exists()


def test_check_builds_the_network_on_the_meta_device(data):
    from restore.cli.check import network_on_meta
    from restore.config import load_options

    options = load_options(opt(data, TEST))
    model = network_on_meta(options)
    assert {p.device.type for p in model.parameters()} == {"meta"}


def infer_check(root: Path, *extra: str, inp: str = "in", weights: str = "w.pth") -> int:
    (root / "i.yml").write_text("name: chk\ndevice: cpu\n" + NETWORK)
    return main(["infer", "-opt", str(root / "i.yml"), "--weights", str(root / weights),
                 "--input", str(root / inp), "--output", str(root / "out"), "--check", *extra])


def test_infer_check_passes_a_good_folder_and_writes_nothing(data, capfd):
    assert infer_check(data) == 0
    _, out = errors(capfd)
    assert "3 images checked (decoded)" in out
    assert not (data / "out").exists()


def test_infer_check_reports_missing_input_and_weights_together(data, capfd):
    assert infer_check(data, inp="nope", weights="nope.pth") == 2
    lines, _ = errors(capfd)
    assert len(lines) == 2, lines
    assert "nope.pth" in lines[0] and "does not exist" in lines[0]
    assert "input folder" in lines[1] and "nope" in lines[1] and "does not exist" in lines[1]


def test_infer_check_reports_every_bad_file_and_refused_target(data, capfd):
    import os

    truncate(data / "in/0.png")
    (data / "in/1.png").write_bytes(b"")
    write(data / "in/sub/a.png")
    (data / "out").mkdir()
    os.symlink(data / "in", data / "out/sub")
    assert infer_check(data) == 2
    lines, _ = errors(capfd)
    assert len(lines) == 3, lines
    assert "in/0.png" in lines[0] and "truncated" in lines[0]
    assert "in/1.png" in lines[1] and "empty" in lines[1]
    assert "out/sub/a.png" in lines[2] and "never writes into what it reads" in lines[2]
    assert infer_check(data, "quick") == 2  # --check quick: the truncated file passes its header
    lines, _ = errors(capfd)
    assert len(lines) == 2 and "in/1.png" in lines[0]


def test_a_real_test_run_that_meets_a_truncated_file_says_one_line(data, capfd):
    truncate(data / "in/2.png")
    assert main(["test", "-opt", opt(data, TEST), "--weights", str(data / "w.pth")]) == 2
    lines, _ = errors(capfd)
    assert len(lines) == 1 and "in/2.png" in lines[0] and "truncated" in lines[0], lines
