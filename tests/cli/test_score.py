"""`restore score`: pairing, outputs, golden values, and every bad-input case as one line."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def score(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "restore.cli.main", "score", *args],
                          capture_output=True, text=True, cwd=cwd)


def save(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rgb[..., ::-1] if rgb.ndim == 3 else rgb)
    return path


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def small_pair(tmp_path):
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    pred = np.clip(gt.astype(int) + rng.integers(-6, 7, gt.shape), 0, 255).astype(np.uint8)
    for i in range(3):
        save(tmp_path / "gt" / f"img{i}.png", np.roll(gt, i, axis=0))
        save(tmp_path / "pred" / f"img{i}.png", np.roll(pred, i, axis=0))
    return tmp_path


def test_kodim07_shift_matches_the_spec_value(shared_data, tmp_path):
    """metrics.md P3: kodim07 vs itself rolled by one column -> RGB PSNR 27.955554, SSIM 0.879195."""
    gt = cv2.imread(str(shared_data / "kodak24" / "kodim07.png"))[..., ::-1]
    save(tmp_path / "gt" / "kodim07.png", gt)
    save(tmp_path / "pred" / "kodim07.png", np.roll(gt, 1, axis=1))
    proc = score("--pred", "pred", "--gt", "gt", "--protocol", "basicsr", "--json", "out/s.json",
                 "--csv", "out/s.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads((tmp_path / "out/s.json").read_text())
    assert payload["protocol"] == "basicsr" and payload["count"] == 1
    assert abs(payload["summary"]["psnr"] - 27.955554) < 1e-4
    assert abs(payload["summary"]["ssim"] - 0.879195) < 1e-5
    rows = list(csv.DictReader((tmp_path / "out/s.csv").open()))
    assert rows[0]["name"] == "kodim07" and abs(float(rows[0]["psnr"]) - 27.955554) < 1e-4
    assert "basicsr" in proc.stdout.splitlines()[0] or "basicsr" in proc.stdout


def test_scores_agree_with_an_independent_psnr(small_pair):
    proc = score("--pred", "pred", "--gt", "gt", "--json", "s.json", cwd=small_pair)
    assert proc.returncode == 0, proc.stderr
    per_image = json.loads((small_pair / "s.json").read_text())["per_image"]
    for row in per_image:
        a = cv2.imread(str(small_pair / "pred" / f"{row['name']}.png")).astype(np.float64)
        b = cv2.imread(str(small_pair / "gt" / f"{row['name']}.png")).astype(np.float64)
        assert abs(row["psnr"] - 10 * np.log10(255**2 / np.mean((a - b) ** 2))) < 1e-6
    assert (small_pair / "scores_basicsr.csv").is_file()


def test_sorted_pairing_for_the_deraining_protocol(small_pair):
    for i in range(3):  # results named like the inputs, ground truth like norain-*
        (small_pair / "pred" / f"img{i}.png").rename(small_pair / "pred" / f"rain-{i:03d}.png")
    proc = score("--pred", "pred", "--gt", "gt", "--protocol", "derain_matlab", "--json", "s.json", cwd=small_pair)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((small_pair / "s.json").read_text())["count"] == 3
    by_name = score("--pred", "pred", "--gt", "gt", "--pairing", "same_name", cwd=small_pair)
    assert_one_line_error(by_name, "rain-000")


def test_shadow_protocol_reports_regions(small_pair):
    for i in range(3):
        mask = np.zeros((40, 48), np.uint8)
        mask[10:30, 5 + i: 25 + i] = 255
        save(small_pair / "mask" / f"img{i}.png", mask)
    proc = score("--pred", "pred", "--gt", "gt", "--mask", "mask", "--protocol", "shadow_a", "--json", "s.json", cwd=small_pair)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((small_pair / "s.json").read_text())["summary"]
    assert {"lab_mae_pp", "lab_mae_s_pp", "lab_mae_ns_pp", "lab_mae_s_pi"} <= set(summary)


def test_missing_folder(small_pair):
    assert_one_line_error(score("--pred", "nope", "--gt", "gt", cwd=small_pair), "'nope'", "not found")


def test_unpaired_file(small_pair):
    save(small_pair / "pred" / "extra.png", np.zeros((40, 48, 3), np.uint8))
    assert_one_line_error(score("--pred", "pred", "--gt", "gt", cwd=small_pair), "extra")


def test_zero_byte_image(small_pair):
    (small_pair / "pred" / "img1.png").write_bytes(b"")
    assert_one_line_error(score("--pred", "pred", "--gt", "gt", cwd=small_pair), "img1.png", "empty")


def test_corrupt_image(small_pair):
    data = (small_pair / "gt" / "img2.png").read_bytes()
    (small_pair / "gt" / "img2.png").write_bytes(data[:40])
    assert_one_line_error(score("--pred", "pred", "--gt", "gt", cwd=small_pair), "img2.png")


def test_sizes_differ(small_pair):
    save(small_pair / "pred" / "img0.png", np.zeros((40, 50, 3), np.uint8))
    assert_one_line_error(score("--pred", "pred", "--gt", "gt", cwd=small_pair), "img0.png", "sizes differ")


def test_mask_of_the_wrong_size(small_pair):
    for i in range(3):
        save(small_pair / "mask" / f"img{i}.png", np.zeros((20, 48) if i == 1 else (40, 48), np.uint8))
    proc = score("--pred", "pred", "--gt", "gt", "--mask", "mask", "--protocol", "shadow_b", cwd=small_pair)
    assert_one_line_error(proc, "img1.png", "mask")


def test_unknown_protocol(small_pair):
    assert_one_line_error(score("--pred", "pred", "--gt", "gt", "--protocol", "sidd", cwd=small_pair), "'sidd'", "did you mean")


def test_sixteen_bit_results_score_like_their_eight_bit_levels(small_pair):
    for i in range(3):
        img = cv2.imread(str(small_pair / "pred" / f"img{i}.png"))
        cv2.imwrite(str(small_pair / "pred" / f"img{i}.png"), img.astype(np.uint16) * 257)
    proc = score("--pred", "pred", "--gt", "gt", "--json", "s16.json", cwd=small_pair)
    assert proc.returncode == 0, proc.stderr
    for i in range(3):
        cv2.imwrite(str(small_pair / "pred" / f"img{i}.png"), (cv2.imread(str(small_pair / "pred" / f"img{i}.png"), cv2.IMREAD_UNCHANGED) // 257).astype(np.uint8))  # noqa: E501
    assert score("--pred", "pred", "--gt", "gt", "--json", "s8.json", cwd=small_pair).returncode == 0
    s16 = json.loads((small_pair / "s16.json").read_text())["summary"]
    s8 = json.loads((small_pair / "s8.json").read_text())["summary"]
    assert s16 == s8
