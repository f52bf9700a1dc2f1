"""run_benchmark: the files under results/<name>/, their contents, and the weights rules."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from restore.archs.n2n_unet import N2NUNet
from restore.config import load_options
from restore.engine.benchmark import image_path, run_benchmark
from restore.errors import ConfigError, DataError

H, W = 48, 64
OPTIONS = """\
name: bench
network: {{type: n2n_unet, n_feature: 8}}
path: {{results_root: {root}/results{pretrained}}}
datasets:
  test:
    derain: {{type: paired_folder, input_dir: {root}/in, target_dir: {root}/gt, protocol: derain_matlab,
              save_images: true, batch_size: 2, num_workers: 0}}
    plain: {{type: paired_folder, input_dir: {root}/in, target_dir: {root}/gt, num_workers: 0}}
"""


def make_data(root: Path, n: int = 3) -> None:
    rng = np.random.default_rng(5)
    for i in range(n):
        clean = rng.integers(30, 226, (H, W, 3), dtype=np.uint8)
        noisy = np.clip(clean.astype(int) + rng.integers(-20, 21, clean.shape), 0, 255).astype(np.uint8)
        for folder, img in (("in", noisy), ("gt", clean)):
            (root / folder / "sub").mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(root / folder / "sub" / f"r{i}.png"), img)


def make_options(root: Path, pretrained: bool = True):
    weights = root / "w.pth"
    torch.manual_seed(0)
    torch.save({"params": N2NUNet(n_feature=8).state_dict()}, weights)
    opt = root / "o.yml"
    opt.write_text(OPTIONS.format(root=root, pretrained=f", pretrained: {weights}" if pretrained else ""))
    return load_options(opt)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    make_data(root)
    options = make_options(root)
    printed: list[str] = []
    results = run_benchmark(options, echo=printed.append)
    return root, results, "\n".join(printed)


def test_per_set_files(bench):
    root, results, _ = bench
    out = root / "results" / "bench"
    assert set(results) == {"derain", "plain"}
    for set_name, protocol in (("derain", "derain_matlab"), ("plain", "basicsr")):
        d = out / set_name
        with (d / "per_image.csv").open() as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 3 and list(rows[0]) == ["name", "psnr", "ssim"]
        assert [r["name"] for r in rows] == ["sub/r0", "sub/r1", "sub/r2"]
        summary = json.loads((d / "summary.json").read_text())
        assert summary["protocol"] == protocol and summary["n_images"] == 3 and summary["options"] == "bench"
        assert summary["weights"].endswith("w.pth") and summary["restore_version"] and summary["timestamp"]
        assert set(summary["metrics"]) == {"n_images", "psnr", "ssim"}
        assert summary["metrics"]["psnr"] == pytest.approx(np.mean([float(r["psnr"]) for r in rows]), abs=1e-9)
        md = (d / "summary.md").read_text()
        assert f"| metric | {protocol} (" in md and results[set_name].label in md


def test_saved_images_are_the_scored_outputs(bench):
    """The basicsr protocol rounds the output like the 8-bit writer: PSNR from the saved PNGs
    against the ground-truth files (numpy) equals the CSV value."""
    root, results, _ = bench
    images = root / "results/bench/derain/images"
    assert sorted(p.relative_to(images).as_posix() for p in images.rglob("*.png")) == [
        "sub/r0.png", "sub/r1.png", "sub/r2.png"]
    assert not (root / "results/bench/plain/images").exists()  # save_images: false
    for row in results["plain"].rows:
        saved = cv2.imread(str(images / f"{row['name']}.png"), cv2.IMREAD_UNCHANGED)
        assert saved.dtype == np.uint8 and saved.shape == (H, W, 3)
        gt = cv2.imread(str(root / "gt" / f"{row['name']}.png")).astype(np.float64)
        mse = np.mean((saved.astype(np.float64) - gt) ** 2)
        assert row["psnr"] == pytest.approx(10 * math.log10(255.0**2 / mse), abs=1e-9)


def test_summary_report_and_stdout(bench):
    root, results, printed = bench
    out = root / "results" / "bench"
    summary = (out / "summary.md").read_text()
    assert "## derain" in summary and "## plain" in summary and "derain_matlab (Derain MATLAB Y)" in summary
    html = (out / "report.html").read_text()
    assert "derain_matlab" in html and "Derain MATLAB Y" in html and "BasicSR RGB" in html
    assert html.count("Best image:") == 2 and html.count("Worst image:") == 2
    assert "data:image/png;base64," in html and "images not available" not in html
    assert "| metric | derain_matlab (Derain MATLAB Y) |" in printed and "per_image.csv" in printed
    assert "report.html" in printed


def test_weights_argument_wins_and_missing_weights_is_one_line(tmp_path):
    make_data(tmp_path, n=1)
    options = make_options(tmp_path, pretrained=False)
    with pytest.raises(ConfigError) as info:
        run_benchmark(options, echo=None)
    msg = str(info.value)
    assert "\n" not in msg and "path.pretrained" in msg and "o.yml" in msg
    with pytest.raises(DataError, match="nope.pth"):
        run_benchmark(options, weights=tmp_path / "nope.pth", echo=None)
    results = run_benchmark(options, weights=tmp_path / "w.pth", echo=None)
    assert results["plain"].n_images == 1
    assert (tmp_path / "results/bench/report.html").is_file()


def test_weights_that_do_not_fit(tmp_path):
    make_data(tmp_path, n=1)
    options = make_options(tmp_path)
    torch.save(N2NUNet(n_feature=4).state_dict(), tmp_path / "small.pth")
    with pytest.raises(ConfigError, match="do not fit"):
        run_benchmark(options, weights=tmp_path / "small.pth", echo=None)


def test_image_names_stay_inside_the_folder(tmp_path):
    assert image_path(tmp_path, "a/b") == tmp_path / "a" / "b.png"
    for bad in ("../x", "/etc/x", "a/../../x"):
        with pytest.raises(DataError):
            image_path(tmp_path, bad)


def test_each_set_reports_images_and_megapixels_per_second(bench):
    import re

    from restore.engine.benchmark import rate_text

    _, _, printed = bench
    rates = re.findall(r"\(([\d.]+) s, ([\d.]+) images/s, ([\d.e+-]+) MP/s\)", printed)
    assert len(rates) == 2, printed  # one per set
    for seconds, images, megapixels in rates:  # noqa: B007
        if float(images) > 0.5:  # both rates count the same three 48x64 images
            assert float(megapixels) / float(images) == pytest.approx(H * W / 1e6, rel=0.05)
    assert rate_text(24, 24 * 768 * 512, 10.0) == "10.0 s, 2.40 images/s, 0.944 MP/s"


def test_a_failed_background_image_write_stops_the_run(tmp_path, monkeypatch):
    import restore.engine.benchmark as benchmark
    from restore.errors import OutputError

    make_data(tmp_path)
    options = make_options(tmp_path)
    written: list[str] = []

    def save(folder, name, index, x, y, t):
        if name == "sub/r1":
            raise OutputError(f"cannot write '{folder / name}.png': disk full")
        written.append(name)

    monkeypatch.setattr(benchmark, "_save_output", save)
    with pytest.raises(OutputError, match="r1.png': disk full"):
        run_benchmark(options, echo=None)
    assert "sub/r0" in written
    assert not (tmp_path / "results/bench/derain").exists()  # the staged results never replace anything
