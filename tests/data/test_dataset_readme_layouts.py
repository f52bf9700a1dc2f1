"""datasets/README.md end to end: every snippet runs on a tiny folder in its documented layout.

Each snippet gets tiny images written where the README says they live (relative to the working
directory, as in the option files). Evaluation sets (``val`` or ``test``; a ``val`` set is run as
a test set) go through ``restore test`` with a random-weight ``n2n_unet``; a set with ground
truth must come back scored, one without (DND crops, SIDD benchmark blocks, your own shadow
images) restored and saved but not scored. Training sets go through ``restore train --check``
and the first sample is drawn through the full pipeline (crop sizes lowered to fit the tiny
images). A snippet without a layout here fails the test, so new snippets must be covered.
"""

from __future__ import annotations

import json
import re
import textwrap
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io
import torch
import yaml

from restore.archs.n2n_unet import N2NUNet
from restore.cli.main import main
from restore.config import load_options

README = Path(__file__).resolve().parents[2] / "datasets" / "README.md"
SNIPPETS = re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)

# marker (text unique to one snippet) -> files of its layout; {i} = 1, 2
LAYOUTS: dict[str, list[str]] = {
    "SIDD_Medium_Srgb/Data": [
        "datasets/SIDD/SIDD_Medium_Srgb/Data/0001_001_S6_00100_00060_3200_L/0001_NOISY_SRGB_01{i}.PNG",
        "datasets/SIDD/SIDD_Medium_Srgb/Data/0001_001_S6_00100_00060_3200_L/0001_GT_SRGB_01{i}.PNG"],
    "input_crops": ["datasets/SIDD/train/input_crops/{i}.png", "datasets/SIDD/train/target_crops/{i}.png"],
    "ValidationNoisyBlocksSrgb": ["datasets/SIDD/val/ValidationNoisyBlocksSrgb.mat",
                                  "datasets/SIDD/val/ValidationGtBlocksSrgb.mat"],
    "BenchmarkNoisyBlocksSrgb": ["datasets/SIDD/benchmark/BenchmarkNoisyBlocksSrgb.mat"],
    "datasets/DND/crops": ["datasets/DND/crops/0001_{i}.png"],
    "kodak24_n2n": ["datasets/test/Kodak24/kodim0{i}.png", "datasets/test/McMaster/{i}.tif",
                    "datasets/test/Set12/0{i}.grey.png"],
    "datasets/train/DFWB": ["datasets/train/DFWB/{i}.png"],
    "my_noisy_photos": ["datasets/train/my_noisy_photos/{i}.png"],
    "Rain100L/train": ["datasets/Rain100L/{s}/rainy/rain-00{i}.png", "datasets/Rain100L/{s}/norain-00{i}.png"],
    "Test2800": ["datasets/train/Rain13K/input/{i}.png", "datasets/train/Rain13K/target/{i}.png",
                 "datasets/test/Test2800/input/{i}.png", "datasets/test/Test2800/target/{i}.png"],
    "Raindrop": ["datasets/Raindrop/test_a/data/{i}_rain.png", "datasets/Raindrop/test_a/gt/{i}_clean.png"],
    "TIP2018": ["datasets/TIP2018/{s}/source/image_test_part001_0000004{i}_source.png",
                "datasets/TIP2018/{s}/target/image_test_part001_0000004{i}_target.png"],
    "LCDMoire": ["datasets/LCDMoire/val/moire/00000{i}.jpg", "datasets/LCDMoire/val/clear/00000{i}.png"],
    "FHDMi": ["datasets/FHDMi/{s}/source/src_0000{i}.png", "datasets/FHDMi/{s}/target/tar_0000{i}.png"],
    "UHDM": ["datasets/UHDM/{s}/scene{i}/000{i}_moire.jpg", "datasets/UHDM/{s}/scene{i}/000{i}_gt.jpg"],
    "istd_test": ["datasets/ISTD/{s}/{s}_A/90-{i}.png", "datasets/ISTD/{s}/{s}_B/90-{i}.mask.png",
                  "datasets/ISTD/{s}/{s}_C/90-{i}.png"],
    "istd_plus": ["datasets/ISTD/test/test_A/90-{i}.png", "datasets/ISTD/test/test_B/90-{i}.mask.png",
                  "datasets/ISTD/test/test_C_fixed_official/90-{i}.png"],
    "srd_test": ["datasets/SRD/{s}/shadow/IMG_{i}.jpg", "datasets/SRD/{s}/shadow_free/IMG_{i}_free.jpg",
                 "datasets/SRD/{s}/mask/IMG_{i}.mask.png"],
    "SRD_DHAN": ["datasets/SRD_DHAN/test/test_A/{i}.png", "datasets/SRD_DHAN/test/test_B/{i}.mask.png",
                 "datasets/SRD_DHAN/test/test_C/{i}.png"],
    "my_shadows": ["../shared/data/shadow/images/{i}.png", "../shared/data/shadow/masks/{i}.mask.png"],
}
#: sets that have no ground truth: restored and saved by `restore test`, not scored
UNSCORED = {"sidd_benchmark", "dnd", "my_shadows"}
SIZE = {"TIP2018": 48}  # TIP2018 crops the middle 2/3 before resizing to 256x256


def layout_of(snippet: str) -> str:
    found = [m for m in LAYOUTS if m in snippet]
    assert len(found) == 1, f"snippet needs exactly one layout here (found {found}):\n{snippet}"
    return found[0]


def write_image(path: Path, size: int) -> None:
    """A smooth random image (JPEG-friendly); masks are 0/255 with a shadow rectangle."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    if path.name.endswith(".mask.png"):
        img = np.zeros((size, size), np.uint8)
        img[size // 4: size // 2, size // 4: 3 * size // 4] = 255
        path = path.with_name(path.name.replace(".mask", ""))
    else:
        small = rng.integers(20, 236, (4, 4, 3)).astype(np.uint8)
        img = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
        if path.name.endswith(".grey.png"):
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            path = path.with_name(path.name.replace(".grey", ""))
    assert cv2.imwrite(str(path), img)


def write_layout(marker: str, cwd: Path) -> None:
    for pattern in LAYOUTS[marker]:
        for split in ("train", "test"):
            for i in (1, 2):
                path = cwd / pattern.format(i=i, s=split)
                if path.suffix == ".mat":
                    path.parent.mkdir(parents=True, exist_ok=True)
                    blocks = np.random.default_rng(i).integers(0, 256, (2, 2, 32, 32, 3)).astype(np.uint8)
                    scipy.io.savemat(path, {path.stem: blocks})
                else:
                    write_image(path, SIZE.get(marker, 32))


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "n2n.pth"
    torch.save(N2NUNet(n_feature=8).state_dict(), path)
    return path


def test_every_snippet_has_a_layout():
    assert len(SNIPPETS) >= 20
    assert sorted(layout_of(s) for s in SNIPPETS) == sorted(LAYOUTS)


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_snippet_runs_on_its_layout(tmp_path, monkeypatch, capsys, weights, index):
    snippet = SNIPPETS[index]
    cwd = tmp_path / "project"
    cwd.mkdir()
    write_layout(layout_of(snippet), cwd)
    monkeypatch.chdir(cwd)
    datasets = yaml.safe_load(snippet)["datasets"]
    head = "name: snippet\nnetwork: {type: n2n_unet, n_feature: 8}\n"

    if "train" in datasets:
        opt = cwd / "train.yml"
        opt.write_text(head + "train: {total_iter: 1}\n" + snippet)
        fits = ["--set", "datasets.train.crop_size=16"] if "crop_size" in datasets["train"] else []
        assert main(["train", "-opt", str(opt), "--check", *fits]) == 0, capsys.readouterr().err
        options = load_options(opt, [f.split("=", 1)[0] + "=16" for f in fits[1:]])
        sample = options.datasets.train.dataset.build()[0]
        assert sample["input"].ndim == 3 and sample["name"]

    evaluation = {**datasets.get("val", {}), **datasets.get("test", {})}
    for spec in evaluation.values():
        spec["num_workers"] = 0  # speed only: the layout is what is tested
    for grey, sets in ((False, {k: v for k, v in evaluation.items() if v.get("channels", 3) == 3}),
                       (True, {k: v for k, v in evaluation.items() if v.get("channels", 3) == 1})):
        if sets:
            run_test_sets(cwd, sets, grey_weights(tmp_path) if grey else weights, capsys, grey)


def grey_weights(folder: Path) -> Path:
    torch.manual_seed(0)
    torch.save(N2NUNet(in_nc=1, out_nc=1, n_feature=8).state_dict(), folder / "grey.pth")
    return folder / "grey.pth"


def run_test_sets(cwd: Path, evaluation: dict, weights: Path, capsys, grey: bool) -> None:
    """``restore test`` on ``evaluation`` (set name -> snippet options); checks every set's results."""
    channels = ", in_nc: 1, out_nc: 1" if grey else ""
    opt = cwd / "test.yml"
    opt.write_text(f"name: snippet\nnetwork: {{type: n2n_unet, n_feature: 8{channels}}}\n"
                   f"path: {{pretrained: {weights}}}\n" + yaml.safe_dump({"datasets": {"test": evaluation}}))
    extra = []
    if "uhdm" in evaluation:  # the UHDM protocol's LPIPS needs torchvision's AlexNet file; nothing is downloaded
        extra = ["--set", "datasets.test.uhdm.metrics=[psnr, ssim]"]
    code = main(["test", "-opt", str(opt), "--progress", "off", *extra])
    captured = capsys.readouterr()
    assert code == 0 and "Traceback" not in captured.err, captured.err
    for set_name in evaluation:
        summary = json.loads((cwd / "results/snippet" / set_name / "summary.json").read_text())
        images = sorted((cwd / "results/snippet" / set_name / "images").rglob("*.png"))
        if images:
            assert len(images) == summary["n_images"]
        if set_name in UNSCORED:
            assert summary["scored"] is False and summary["protocol"] is None
            assert len(images) == summary["n_images"] > 0  # saved even where save_images is not set
        else:
            figures = summary["metrics"]
            headline = "psnr" if "psnr" in figures else "lab_mae_pp"
            assert summary["scored"] is True and np.isfinite(float(figures[headline])), summary
            assert summary["n_images"] >= 2
    table = (cwd / "results/snippet/table.md").read_text()
    assert all(f"| {name} |" in table for name in evaluation)


def test_uhdm_without_the_lpips_backbone_is_one_line(tmp_path, monkeypatch, capsys, weights):
    from restore.errors import MissingWeightsError
    from restore.metrics.lpips_metric import LPIPSMetric

    try:
        LPIPSMetric("alex")
        pytest.skip("the LPIPS AlexNet backbone is installed here")
    except MissingWeightsError:
        pass
    snippet = next(s for s in SNIPPETS if "uhdm:" in s)
    write_layout("UHDM", tmp_path)
    monkeypatch.chdir(tmp_path)
    test_sets = yaml.safe_load(snippet)["datasets"]["test"]
    opt = tmp_path / "o.yml"
    opt.write_text(f"name: u\nnetwork: {{type: n2n_unet, n_feature: 8}}\npath: {{pretrained: {weights}}}\n"
                   + yaml.safe_dump({"datasets": {"test": test_sets}}))
    assert main(["test", "-opt", str(opt)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "LPIPS" in err[0] and "nothing is downloaded" in err[0], err
    assert not (tmp_path / "results").exists()


def test_a_set_without_ground_truth_under_val_is_one_line_in_its_own_words(tmp_path, capsys):
    write_layout("datasets/DND/crops", tmp_path)
    write_layout("input_crops", tmp_path)
    opt = tmp_path / "o.yml"
    opt.write_text(textwrap.dedent(f"""\
        name: v
        network: {{type: n2n_unet, n_feature: 8}}
        path: {{experiments_root: {tmp_path}/exp}}
        train: {{total_iter: 2, val_every: 1, save_every: 100}}
        datasets:
          train: {{type: paired_folder, input_dir: {tmp_path}/datasets/SIDD/train/input_crops,
                   target_dir: {tmp_path}/datasets/SIDD/train/target_crops, batch_size: 2, num_workers: 0}}
          val:
            dnd: {{type: noisy_folder, root: {tmp_path}/datasets/DND/crops, num_workers: 0}}
        """))
    assert main(["train", "-opt", str(opt)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no ground truth" in err[0], err
    assert "noisy_folder set holds inputs only" in err[0] and "shadow" not in err[0] and "with_target" not in err[0]


def test_a_grey_set_on_an_rgb_network_is_one_line(tmp_path, monkeypatch, capsys, weights):
    write_layout("kodak24_n2n", tmp_path)
    monkeypatch.chdir(tmp_path)
    opt = tmp_path / "o.yml"
    opt.write_text(f"name: g\nnetwork: {{type: n2n_unet, n_feature: 8}}\npath: {{pretrained: {weights}}}\n"
                   "datasets:\n  test:\n    set12_grey: {type: synthetic_noise, root: datasets/test/Set12, "
                   "noise: gauss25, channels: 1, num_workers: 0}\n")
    assert main(["test", "-opt", str(opt), "--progress", "off"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "set 'set12_grey'" in err[0] and "in_nc" in err[0] and "Traceback" not in err[0], err
    assert not (tmp_path / "results").exists()
