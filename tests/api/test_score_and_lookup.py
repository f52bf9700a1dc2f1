"""``restore.score``, ``restore.list_architectures``, ``restore.load_options``, and the README's lines.

``score`` is checked against PSNR computed here with numpy and against ``restore score`` on the
same files; ``list_architectures`` against ``restore archs``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from api_nets import generated_image
from data_helpers import assert_one_line, save_rgb
from PIL import Image

import restore
from restore.cli.main import main
from restore.data.image_io import read_image
from restore.errors import ConfigError

N2N_GAUSS25 = "options/neighbor2neighbor/infer/n2n_gauss25.yml"


def numpy_psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def noisy_copy(clean: np.ndarray, sigma: float = 25, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, clean.shape)
    return np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)


def test_score_is_the_rgb_psnr_and_equals_restore_score(tmp_path, capsys):
    gt = generated_image(64, 80, seed=1)
    pred = noisy_copy(gt, 10)
    expected = numpy_psnr(pred, gt)
    for p, g in [(pred, gt), (Image.fromarray(pred), gt), (torch.from_numpy(pred).permute(2, 0, 1), gt),
                 (pred.astype(np.float32) / np.float32(255), gt)]:
        result = restore.score(p, g)
        assert result["n_images"] == 1 and result["psnr"] == pytest.approx(expected, abs=1e-9)
        assert 0 < result["ssim"] < 1
    save_rgb(tmp_path / "pred/a.png", pred)
    save_rgb(tmp_path / "gt/a.png", gt)
    from_files = restore.score(tmp_path / "pred/a.png", tmp_path / "gt/a.png", protocol="basicsr")
    assert main(["score", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                 "--csv", str(tmp_path / "s.csv"), "--json", str(tmp_path / "s.json")]) == 0
    cli = json.loads((tmp_path / "s.json").read_text())["summary"]
    assert from_files["psnr"] == cli["psnr"] and from_files["ssim"] == cli["ssim"]
    y = restore.score(pred, gt, protocol="basicsr_y")
    assert y["psnr"] != pytest.approx(expected)  # another protocol, another number
    with pytest.raises(ConfigError) as excinfo:
        restore.score(pred, gt, protocol="basicrs")
    assert_one_line(excinfo, "basicrs")


def test_list_architectures_is_restore_archs(capsys):
    names = restore.list_architectures()
    assert {"n2n_unet", "uformer", "tape_r", "wdnet", "labnet", "ipt"} <= set(names)
    capsys.readouterr()
    assert main(["archs"]) == 0
    assert names == [line.split()[0] for line in capsys.readouterr().out.splitlines()]


def test_load_options_applies_overrides_and_names_the_file(tmp_path):
    options = restore.load_options(N2N_GAUSS25, ["infer.tile=256"])
    assert options.network.type == "n2n_unet" and options.infer.tile == 256
    with pytest.raises(ConfigError) as excinfo:
        restore.load_options(tmp_path / "none.yml")
    assert_one_line(excinfo, "none.yml")


def test_the_readme_lines_on_a_kodak_photo(shared_data, tmp_path):
    """The README's example with the real infer option file and random weights in the released layout."""
    from restore.archs.n2n_unet import N2NUNet

    torch.manual_seed(0)
    weights = tmp_path / "model_gauss25_b4e100r02.pth"
    torch.save(N2NUNet(in_nc=3, out_nc=3, n_feature=48, pad_square=True).state_dict(), weights)
    clean = read_image(shared_data / "kodak24/kodim19.png")[200:456, 100:420]  # a crop: seconds on a CPU
    noisy = noisy_copy(clean)

    model = restore.load(N2N_GAUSS25, weights=weights, device="cpu")
    restored = model(noisy)
    assert restored.shape == clean.shape == (256, 320, 3) and restored.dtype == np.uint8
    scores = restore.score(restored, clean, protocol="basicsr")
    assert scores["psnr"] == pytest.approx(numpy_psnr(restored, clean), abs=1e-9)
