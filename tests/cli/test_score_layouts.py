"""`restore score` on `restore test`'s saved images against the standard layouts of
datasets/README.md (Rain100L, TIP2018, ISTD, SIDD PNG), and score files that fail safely."""

from __future__ import annotations

import csv
import errno
import json
import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from restore.archs.n2n_unet import N2NUNet
from restore.cli.main import main


def write(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


def smooth(rng: np.random.Generator, size: int) -> np.ndarray:
    return cv2.resize(rng.integers(30, 226, (4, 4, 3)).astype(np.uint8), (size, size), interpolation=cv2.INTER_LINEAR)


def degrade(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    return np.clip(img.astype(int) + rng.integers(-20, 21, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    state = N2NUNet(n_feature=8).state_dict()
    state["nin_c.bias"] += 0.5  # mid-grey outputs: no PSNR of a black image
    path = tmp_path_factory.mktemp("w") / "w.pth"
    torch.save(state, path)
    return path


def run_test(cwd: Path, weights: Path, set_name: str, spec: dict, capsys) -> list[dict]:
    """`restore test` with save_images on one set; returns its per-image rows."""
    spec = {**spec, "save_images": True, "num_workers": 0, "phase": "test"}
    opt = cwd / "o.yml"
    opt.write_text(f"name: run\nnetwork: {{type: n2n_unet, n_feature: 8}}\npath: {{pretrained: {weights}}}\n"
                   + yaml.safe_dump({"datasets": {"test": {set_name: spec}}}))
    assert main(["test", "-opt", str(opt), "--progress", "off"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    return list(csv.DictReader((cwd / "results/run" / set_name / "per_image.csv").open()))


def score(capsys, *args: str) -> tuple[int, dict, str]:
    code = main(["score", *args, "--json", "s.json", "--csv", "s.csv"])
    err = capsys.readouterr().err
    payload = json.loads(Path("s.json").read_text()) if code == 0 else {}
    return code, payload, err


def same_rows(scored: list[dict], tested: list[dict], keys: tuple[str, ...]) -> None:
    assert len(scored) == len(tested) > 0
    for s, t in zip(scored, tested):
        for k in keys:
            assert s[k] == pytest.approx(float(t[k]), abs=1e-9), (k, s, t)


def one_line(err: str, *fragments: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("restore: error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_rain100l_prenet_layout(tmp_path, monkeypatch, capsys, weights):
    rng = np.random.default_rng(0)
    test = tmp_path / "datasets/Rain100L/test"
    for i in (1, 2, 3):
        clean = smooth(rng, 32)
        write(test / f"norain-00{i}.png", clean)
        write(test / "rainy" / f"rain-00{i}.png", degrade(rng, clean))
    monkeypatch.chdir(tmp_path)
    tested = run_test(tmp_path, weights, "rain100l", {
        "type": "paired_folder", "input_dir": "datasets/Rain100L/test/rainy", "target_dir": "datasets/Rain100L/test",
        "pairing": "replace", "pair_replace": ["rain-", "norain-"], "protocol": "derain_matlab"}, capsys)
    pred, gt = "results/run/rain100l/images", "datasets/Rain100L/test"
    code, by_rule, err = score(capsys, "--pred", pred, "--gt", gt, "--protocol", "derain_matlab",
                               "--pairing", "replace", "--pair-replace", "rain-", "norain-")
    assert code == 0, err
    same_rows(by_rule["per_image"], tested, ("psnr", "ssim"))
    # the protocol's own sorted pairing: the GT folder's top level only, or the GT files by glob
    for extra in (["--no-recursive"], ["--gt-glob", "norain-*"]):
        code, payload, err = score(capsys, "--pred", pred, "--gt", gt, "--protocol", "derain_matlab", *extra)
        assert code == 0, err
        same_rows(payload["per_image"], tested, ("psnr", "ssim"))
    code, _, err = score(capsys, "--pred", pred, "--gt", gt, "--protocol", "derain_matlab")
    assert code == 2
    one_line(err, "pairing 'sorted' needs equal counts", "rainy/rain-001.png")


def test_tip2018_layout_with_the_datasets_preprocessing(tmp_path, monkeypatch, capsys, weights):
    rng = np.random.default_rng(1)
    for i in (1, 2):
        clean = smooth(rng, 60)
        stem = f"datasets/TIP2018/test/{{}}/image_test_part001_0000004{i}_{{}}.png"
        write(tmp_path / stem.format("target", "target"), clean)
        write(tmp_path / stem.format("source", "source"), degrade(rng, clean))
    monkeypatch.chdir(tmp_path)
    tested = run_test(tmp_path, weights, "tip2018", {
        "type": "paired_folder", "input_dir": "datasets/TIP2018/test/source", "target_dir": "datasets/TIP2018/test/target",
        "pairing": "replace", "pair_replace": ["source", "target"], "preprocess": "tip2018", "protocol": "tip2018"}, capsys)
    pred = "results/run/tip2018/images"
    assert cv2.imread(str(Path(pred) / "image_test_part001_00000041_source.png")).shape == (256, 256, 3)
    args = ["--pred", pred, "--gt", "datasets/TIP2018/test/target", "--protocol", "tip2018",
            "--pairing", "replace", "--pair-replace", "source", "target"]
    code, payload, err = score(capsys, *args, "--gt-preprocess", "tip2018")
    assert code == 0, err
    same_rows(payload["per_image"], tested, ("psnr", "ssim"))
    code, _, err = score(capsys, *args)  # the raw 60x60 targets do not match the 256x256 outputs
    assert code == 2
    one_line(err, "sizes differ", "add --gt-preprocess tip2018")


def test_istd_layout_with_masks(tmp_path, monkeypatch, capsys, weights):
    rng = np.random.default_rng(2)
    root = tmp_path / "datasets/ISTD/test"
    for i in (1, 2):
        free = smooth(rng, 32)
        mask = np.zeros((32, 32), np.uint8)
        mask[8:20, 6 + i: 24] = 255
        shadow = free.copy()
        shadow[mask > 0] = (shadow[mask > 0] * 0.5).astype(np.uint8)
        write(root / "test_A" / f"90-{i}.png", shadow)
        write(root / "test_B" / f"90-{i}.png", mask)
        write(root / "test_C" / f"90-{i}.png", free)
    monkeypatch.chdir(tmp_path)
    tested = run_test(tmp_path, weights, "istd", {
        "type": "shadow_folder", "root": "datasets/ISTD", "split": "test", "layout": "istd", "protocol": "shadow_a"},
        capsys)
    code, payload, err = score(capsys, "--pred", "results/run/istd/images", "--gt", "datasets/ISTD/test/test_C",
                               "--mask", "datasets/ISTD/test/test_B", "--protocol", "shadow_a")
    assert code == 0, err
    same_rows(payload["per_image"], tested, ("lab_mae", "lab_mae_s", "lab_mae_ns", "psnr", "ssim"))


def test_sidd_png_layout_scene_folders(tmp_path, monkeypatch, capsys, weights):
    rng = np.random.default_rng(3)
    scenes = tmp_path / "datasets/SIDD/SIDD_Medium_Srgb/Data"
    for scene in ("0001_001_S6_00100_00060_3200_L", "0002_001_S6_00100_00020_3200_N"):
        for k in (10, 11):
            clean = smooth(rng, 32)
            write(scenes / scene / f"{scene[:4]}_GT_SRGB_0{k}.PNG", clean)
            write(scenes / scene / f"{scene[:4]}_NOISY_SRGB_0{k}.PNG", degrade(rng, clean))
    monkeypatch.chdir(tmp_path)
    data = "datasets/SIDD/SIDD_Medium_Srgb/Data"
    tested = run_test(tmp_path, weights, "sidd", {
        "type": "paired_folder", "input_dir": data, "target_dir": data, "pairing": "replace",
        "pair_replace": ["NOISY", "GT"], "protocol": "basicsr"}, capsys)
    pred = Path("results/run/sidd/images")
    assert len(list(pred.rglob("*.png"))) == 4
    code, payload, err = score(capsys, "--pred", str(pred), "--gt", data, "--pairing", "replace",
                               "--pair-replace", "NOISY", "GT")
    assert code == 0, err
    same_rows(payload["per_image"], tested, ("psnr", "ssim"))
    first = payload["per_image"][0]  # and an independent RGB PSNR of the saved file against its GT
    assert first["name"] == "0001_001_S6_00100_00060_3200_L/0001_GT_SRGB_010"
    a = cv2.imread(str(pred / "0001_001_S6_00100_00060_3200_L/0001_NOISY_SRGB_010.png")).astype(np.float64)
    b = cv2.imread(f"{data}/0001_001_S6_00100_00060_3200_L/0001_GT_SRGB_010.PNG").astype(np.float64)
    assert first["psnr"] == pytest.approx(10 * math.log10(255**2 / np.mean((a - b) ** 2)), abs=1e-9)


# ------------------------------------------------------------------------- score files
@pytest.fixture
def pair(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    for i in range(2):
        clean = smooth(rng, 24)
        write(tmp_path / "gt" / f"{i}.png", clean)
        write(tmp_path / "pred" / f"{i}.png", degrade(rng, clean))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def no_new_files(root: Path, before: set[str]) -> None:
    assert {p.relative_to(root).as_posix() for p in root.rglob("*")} == before


def listing(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def test_csv_to_a_folder_is_one_line(pair, capsys):
    (pair / "out.csv").mkdir()
    before = listing(pair)
    assert main(["score", "--pred", "pred", "--gt", "gt", "--csv", "out.csv"]) == 2
    one_line(capsys.readouterr().err, "out.csv", "folder")
    no_new_files(pair, before)


@pytest.mark.parametrize("fault", ["replace", "fsync", "mkstemp"])
def test_disk_full_or_read_only_leaves_no_file(pair, capsys, monkeypatch, fault):
    """Injected faults: ENOSPC at the rename or the flush, EACCES creating the temporary file."""
    import tempfile

    def fail(*args, **kwargs):
        code = errno.EACCES if fault == "mkstemp" else errno.ENOSPC
        raise OSError(code, os.strerror(code))

    target = {"replace": (os, "replace"), "fsync": (os, "fsync"), "mkstemp": (tempfile, "mkstemp")}[fault]
    files_before = {p for p in pair.rglob("*") if p.is_file()}
    monkeypatch.setattr(*target, fail)
    assert main(["score", "--pred", "pred", "--gt", "gt", "--csv", "out/s.csv", "--json", "out/s.json"]) == 2
    line = one_line(capsys.readouterr().err, "out/s.csv")
    assert ("permission denied" if fault == "mkstemp" else "disk full") in line
    assert {p for p in pair.rglob("*") if p.is_file()} == files_before  # no 0-byte CSV, no temporary file


def test_json_to_a_full_device_leaves_no_csv(pair, capsys):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    before = listing(pair)
    assert main(["score", "--pred", "pred", "--gt", "gt", "--json", "/dev/full"]) == 2
    one_line(capsys.readouterr().err, "/dev/full", "disk full")
    no_new_files(pair, before)
    assert os.path.exists("/dev/full") and not os.path.isfile("/dev/full")  # the device is still a device
    assert main(["score", "--pred", "pred", "--gt", "gt", "--json", "/dev/null"]) == 0


def test_score_files_never_replace_what_is_scored(pair, capsys):
    original = (pair / "gt/0.png").read_bytes()
    assert main(["score", "--pred", "pred", "--gt", "gt", "--csv", "gt/0.png"]) == 2
    one_line(capsys.readouterr().err, "gt/0.png", "one of the images being scored")
    assert (pair / "gt/0.png").read_bytes() == original
    assert main(["score", "--pred", "pred", "--gt", "gt", "--csv", "same", "--json", "same"]) == 2
    one_line(capsys.readouterr().err, "--csv and --json name the same file")
    assert not (pair / "same").exists()


def test_score_of_a_folder_against_itself_and_empty_folders(pair, capsys):
    assert main(["score", "--pred", "gt", "--gt", "gt"]) == 2
    one_line(capsys.readouterr().err, "paired with itself")
    (pair / "empty").mkdir()
    assert main(["score", "--pred", "empty", "--gt", "gt"]) == 2
    one_line(capsys.readouterr().err, "no images found", "empty")
    assert main(["score", "--pred", "pred", "--gt", "gt", "--pairing", "replace"]) == 2
    one_line(capsys.readouterr().err, "--pair-replace")
