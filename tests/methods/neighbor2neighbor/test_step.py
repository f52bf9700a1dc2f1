"""Neighbor2Neighbor training through the engine: the step, its ramp, and noisy-only training."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from restore.archs.n2n_unet import N2NUNet
from restore.cli.main import main
from restore.errors import ConfigError
from restore.methods.neighbor2neighbor.loss import PAIRS
from restore.methods.neighbor2neighbor.step import Neighbor2NeighborStep

ROOT = Path(__file__).resolve().parents[3]


def ramp(epoch_length: int, total_iter: int, **kw) -> Neighbor2NeighborStep:
    step = Neighbor2NeighborStep(epoch_length=epoch_length, **kw)
    step.total_iter = total_iter
    return step


def test_regulariser_weight_steps_once_per_epoch_up_to_increase_ratio():
    step = ramp(10, 100, increase_ratio=2.0)  # 10 epochs: gamma = epoch / 10 * 2, epoch from 1
    assert [step.gamma(i) for i in (0, 9, 10, 19, 55, 99)] == pytest.approx([0.2, 0.2, 0.4, 0.4, 1.2, 2.0])
    # the official recipe: 11,082 iterations per epoch, 100 epochs, ratio 2
    official = ramp(11082, 1_108_200)
    assert official.gamma(0) == pytest.approx(0.02)
    assert official.gamma(11081) == pytest.approx(0.02) and official.gamma(11082) == pytest.approx(0.04)
    assert official.gamma(1_108_199) == pytest.approx(2.0)


def test_linear_ramp_reaches_the_ratio_at_the_last_iteration():
    step = ramp(10, 50, increase_ratio=3.0, ramp="linear")
    assert step.gamma(0) == pytest.approx(3.0 / 50) and step.gamma(49) == pytest.approx(3.0)
    values = [step.gamma(i) for i in range(50)]
    assert values == sorted(values) and len(set(values)) == 50


def reference_subimages(y: torch.Tensor, draws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Independent loop version of the official generate_mask_pair / generate_subimages."""
    n, c, h, w = y.shape
    g1, g2 = torch.empty(n, c, h // 2, w // 2), torch.empty(n, c, h // 2, w // 2)
    offsets = [(0, 0), (0, 1), (1, 0), (1, 1)]
    k = 0
    for b in range(n):
        for i in range(h // 2):
            for j in range(w // 2):
                first, second = PAIRS[int(draws[k])]
                k += 1
                (r1, c1), (r2, c2) = offsets[first], offsets[second]
                g1[b, :, i, j] = y[b, :, 2 * i + r1, 2 * j + c1]
                g2[b, :, i, j] = y[b, :, 2 * i + r2, 2 * j + c2]
    return g1, g2


def test_step_equals_the_official_objective_with_a_no_grad_second_forward():
    torch.manual_seed(0)
    net = N2NUNet(n_feature=4)
    y = torch.rand(2, 3, 64, 64)
    step = ramp(5, 20)
    trainer = SimpleNamespace(iteration=7)  # epoch 2 of 4 -> gamma 1.0
    torch.manual_seed(11)
    loss, logs = step(net, {"input": y}, trainer)
    loss.backward()
    grads = [p.grad.clone() for p in net.parameters()]
    assert logs["gamma"] == pytest.approx(1.0)

    net.zero_grad()
    torch.manual_seed(11)
    draws = torch.randint(0, 8, (2 * 32 * 32,))
    s1, s2 = reference_subimages(y, draws)
    fy = net(y).detach()
    f1, f2 = reference_subimages(fy, draws)
    out = net(s1)
    ref = ((out - s2) ** 2).mean() + 1.0 * ((out - s2 - (f1 - f2)) ** 2).mean()
    ref.backward()
    torch.testing.assert_close(loss, ref)
    for g, p in zip(grads, net.parameters()):
        torch.testing.assert_close(g, p.grad)


class Recorder(nn.Module):
    size_multiple = 1

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.calls: list[tuple[tuple[int, ...], bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((tuple(x.shape), torch.is_grad_enabled()))
        return self.conv(x)


def test_full_image_forward_runs_without_gradient_and_the_sub_image_one_with():
    net = Recorder()
    loss, _ = ramp(1, 1)(net, {"input": torch.rand(1, 3, 8, 8)}, SimpleNamespace(iteration=0))
    assert net.calls == [((1, 3, 8, 8), False), ((1, 3, 4, 4), True)]
    assert loss.requires_grad


def test_sizes_that_cannot_be_halved_for_the_network_are_a_config_error():
    step = Neighbor2NeighborStep()
    step._multiple = 32
    with pytest.raises(ConfigError, match="multiples of 64"):
        step(N2NUNet(n_feature=4), {"input": torch.rand(1, 3, 96, 64)}, SimpleNamespace(iteration=0))


@pytest.fixture()
def noisy_folder(tmp_path: Path) -> Path:
    """Noisy photos only: a smooth image plus Gaussian noise, saved as 8-bit PNG."""
    import cv2

    root = tmp_path / "noisy"
    root.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:80, 0:96] / 96.0
    for i in range(4):
        clean = np.stack([yy, xx, (yy + xx) / 2], axis=-1) * (0.5 + 0.1 * i)
        noisy = np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1)
        cv2.imwrite(str(root / f"photo{i}.png"), np.round(noisy * 255).astype(np.uint8))
    return root


def test_recipe_trains_on_noisy_photos_alone_then_restores_the_same_folder(noisy_folder: Path, tmp_path: Path):
    """The two documented commands of options/neighbor2neighbor/train/n2n_my_photos.yml, on a tiny budget."""
    opt = str(ROOT / "options" / "neighbor2neighbor" / "train" / "n2n_my_photos.yml")
    exp = tmp_path / "experiments"
    common = ["--set", f"path.experiments_root={exp}"]
    assert main(["train", "-opt", opt, *common, "--set", f"datasets.train.root={noisy_folder}",
                 "--set", "datasets.train.crop_size=64", "--set", "datasets.train.batch_size=2",
                 "--set", "datasets.train.num_workers=0", "--set", "train.total_iter=4",
                 "--set", "train.log_every=1", "--set", "train.save_every=4", "--no-tensorboard"]) == 0
    run = exp / "n2n_my_photos"
    logs = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    gammas = [r["train/gamma"] for r in logs if "train/gamma" in r]
    # 4 images / batch 2 = 2 iterations per epoch, 2 epochs in 4 iterations: gamma 1, 1, 2, 2
    assert gammas == pytest.approx([1.0, 1.0, 2.0, 2.0])
    assert all(np.isfinite(r["train/loss_rec"]) and np.isfinite(r["train/loss_reg"]) for r in logs if "train/loss_rec" in r)
    weights = run / "models" / "final.pth"
    assert weights.is_file()

    out = tmp_path / "restored"
    assert main(["infer", "-opt", opt, *common, "--weights", str(weights), "--input", str(noisy_folder),
                 "--output", str(out), "--no-progress"]) == 0
    import cv2

    for src in sorted(noisy_folder.glob("*.png")):
        restored = cv2.imread(str(out / src.name))
        assert restored is not None and restored.shape == cv2.imread(str(src)).shape


def test_a_crop_the_sub_images_cannot_use_is_caught_before_training(noisy_folder: Path, tmp_path: Path, capsys):
    opt = str(ROOT / "options" / "neighbor2neighbor" / "train" / "n2n_my_photos.yml")
    code = main(["train", "-opt", opt, "--set", f"path.experiments_root={tmp_path / 'e'}",
                 "--set", f"datasets.train.root={noisy_folder}", "--set", "datasets.train.crop_size=48"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "crop_size 48" in err[0] and "multiple of 64" in err[0]
