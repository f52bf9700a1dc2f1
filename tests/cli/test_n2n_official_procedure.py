"""Neighbor2Neighbor's shipped option files against the official test procedure, written out
independently here (neighbor2neighbor.md §7), with random weights in the release's file layout."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from restore.archs.n2n_unet import N2NUNet
from restore.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def lively_unet(n_feature: int, seed: int = 0) -> N2NUNet:
    """Random weights whose outputs spread over [0, 1] (the 0.1-scaled init outputs ~0, which
    would clamp to black and make any comparison trivially equal)."""
    torch.manual_seed(seed)
    net = N2NUNet(n_feature=n_feature)
    with torch.no_grad():
        spread = float(net(torch.rand(1, 3, 64, 64)).std())
        net.nin_c.weight.mul_(0.25 / spread)
        net.nin_c.bias.fill_(0.5)
    return net.eval()


def official_output(net: N2NUNet, im: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) input -> the official validation path's uint8 output."""
    x = np.array(im, dtype=np.float32) / 255.0
    h, w, _ = x.shape
    side = (max(h, w) + 31) // 32 * 32
    x = np.pad(x, [[0, side - h], [0, side - w], [0, 0]], "reflect")
    with torch.no_grad():
        pred = net(torch.from_numpy(x.transpose(2, 0, 1)).unsqueeze(0))
    pred = pred.permute(0, 2, 3, 1).numpy()[0][:h, :w, :]
    return np.clip(np.clip(pred, 0, 1) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("noise", ["gauss25", "poisson5_50"])
def test_infer_option_file_gives_the_official_images(tmp_path: Path, noise: str):
    net = lively_unet(48)
    weights = tmp_path / f"model_{noise.replace('5_50', '5-50')}_b4e100r02.pth"
    torch.save(net.state_dict(), weights)  # released files are bare state_dicts
    rng = np.random.default_rng(1)
    inputs = tmp_path / "in"
    inputs.mkdir()
    sizes = {"wide": (37, 70), "square": (64, 64), "tall": (100, 33)}  # pads beyond the side for "tall"
    for name, (h, w) in sizes.items():
        cv2.imwrite(str(inputs / f"{name}.png"), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    out = tmp_path / "out"
    opt = str(ROOT / "options" / "neighbor2neighbor" / "infer" / f"n2n_{noise}.yml")
    assert main(["infer", "-opt", opt, "--weights", str(weights), "--input", str(inputs), "--output", str(out),
                 "--no-progress"]) == 0
    for name, (h, w) in sizes.items():
        expected = official_output(net, rgb(inputs / f"{name}.png"))
        got = rgb(out / f"{name}.png")
        assert got.shape == (h, w, 3)
        assert expected.std() > 20  # a real image, not a clamped constant
        diff = np.abs(got.astype(int) - expected.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # identical but for x.5 rounding ties


def test_test_option_file_scores_like_the_official_validation(tmp_path: Path, capsys):
    """Two sets (2 images x 2 repeats, 1 image x 1) through `restore test` with the shipped file,
    against the official loop: numpy stream seeded 101, no input quantisation, reflect padding
    to a 32-multiple square, output rounded half up, PSNR on 0..255, per-channel Gaussian SSIM on
    the valid region. Small synthetic photos stand in for Kodak and Set14 (the UNet's 96-wide
    full-resolution stage makes 768x512 images slow on a CPU)."""
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:96, 0:96] / 96.0
    sets = {"kodak24": [(64, 96), (96, 72)], "set14": [(80, 80)]}
    for s, sizes in sets.items():
        (tmp_path / s).mkdir()
        for i, (h, w) in enumerate(sizes):
            smooth = np.stack([yy, xx, 1 - yy], axis=-1)[:h, :w] * 200 + rng.normal(0, 8, (h, w, 3))
            cv2.imwrite(str(tmp_path / s / f"img{i}.png"), np.clip(smooth, 0, 255).astype(np.uint8))
    repeats = {"kodak24": 2, "set14": 1}
    net = lively_unet(8, seed=3)
    weights = tmp_path / "w.pth"
    torch.save(net.state_dict(), weights)
    opt = str(ROOT / "options" / "neighbor2neighbor" / "test" / "n2n_gauss25.yml")
    args = ["test", "-opt", opt, "--weights", str(weights), "--set", "network.n_feature=8",
            "--set", f"path.results_root={tmp_path / 'results'}"]
    for s, r in repeats.items():
        args += ["--set", f"datasets.test.{s}.root={tmp_path / s}", "--set", f"datasets.test.{s}.repeat={r}",
                 "--set", f"datasets.test.{s}.num_workers=0"]
    assert main(args) == 0
    capsys.readouterr()
    for s, r in repeats.items():
        files = sorted((tmp_path / s).glob("*.png"))
        state = np.random.get_state()
        np.random.seed(101)
        expected = {}
        try:
            for k in range(r):
                for path in files:
                    clean = rgb(path)
                    x = np.array(clean, dtype=np.float32) / 255.0
                    noisy = np.array(x + np.random.normal(size=x.shape) * (25 / 255.0), dtype=np.float32)
                    h, w, _ = x.shape
                    side = (max(h, w) + 31) // 32 * 32
                    padded = np.pad(noisy, [[0, side - h], [0, side - w], [0, 0]], "reflect")
                    with torch.no_grad():
                        pred = net(torch.from_numpy(padded.transpose(2, 0, 1)).unsqueeze(0))[0].permute(1, 2, 0).numpy()
                    pred255 = np.clip(np.clip(pred[:h, :w], 0, 1) * 255.0 + 0.5, 0, 255).astype(np.uint8)
                    mse = np.mean((clean.astype(np.float32) - pred255.astype(np.float32)) ** 2)
                    ssim = structural_similarity(clean, pred255, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                                 use_sample_covariance=False, data_range=255)
                    name = path.stem if r == 1 else f"{path.stem}#{k}"
                    expected[name] = (10 * np.log10(255.0**2 / mse), ssim)
        finally:
            np.random.set_state(state)
        with open(tmp_path / "results" / "n2n_gauss25" / s / "per_image.csv") as handle:
            rows = {row["name"]: row for row in csv.DictReader(handle)}
        assert set(rows) == set(expected)
        for name, (psnr, ssim) in expected.items():
            assert float(rows[name]["psnr"]) == pytest.approx(psnr, abs=1e-4)
            assert float(rows[name]["ssim"]) == pytest.approx(ssim, abs=1e-5)
