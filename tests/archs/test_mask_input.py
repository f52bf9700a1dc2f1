"""with_mask: any architecture reads the shadow mask as an extra input channel (options, size
rules, training end to end, `restore infer --mask-dir`)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from restore import registry
from restore.archs.mask_input import WithMask
from restore.archs.n2n_unet import N2NUNet
from restore.cli.main import main
from restore.config import load_options
from restore.engine.inference import Restorer
from restore.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


class Echo(nn.Module):
    """Returns its input: shows exactly what the wrapper feeds the inner network."""

    def __init__(self, in_nc: int = 4) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w * x


class Centred(Echo):
    """An inner network with its own size rule (records the sizes it was given)."""

    seen: list[tuple[int, int]] = []

    def forward_any_size(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape[-2:]))
        return self(x)[:, :3]


def options_file(tmp_path: Path, network: str) -> Path:
    path = tmp_path / "o.yml"
    path.write_text(f"name: m\ndevice: cpu\nnetwork: {network}\n"
                    f"datasets: {{test: {{t: {{type: shadow_folder, root: {tmp_path}, protocol: shadow_b}}}}}}\n")
    return path


def test_mask_is_concatenated_after_the_image_raw_or_thresholded() -> None:
    x, mask = torch.rand(2, 3, 8, 10), torch.rand(2, 1, 8, 10)
    assert torch.equal(WithMask(Echo())(x, mask), torch.cat([x, mask], 1))
    assert torch.equal(WithMask(Echo(), mask_threshold=0.5)(x, mask), torch.cat([x, (mask > 0.5).float()], 1))
    residual = WithMask(N2NUNet(in_nc=4, n_feature=8), residual=True)
    plain = WithMask(N2NUNet(in_nc=4, n_feature=8))
    plain.load_state_dict(residual.state_dict())
    x32, m32 = torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32)
    torch.testing.assert_close(residual(x32, m32), plain(x32, m32) + x32)
    assert WithMask.input_keys == ("input", "mask")


def test_option_file_validates_the_inner_network_at_load_time(tmp_path: Path) -> None:
    opts = load_options(options_file(tmp_path, "{type: with_mask, network: {type: n2n_unet, in_nc: 4, n_feature: 8}}"))
    net = opts.network.build()
    assert isinstance(net.network, N2NUNet) and net.in_nc == 3 and net.size_multiple == 32
    assert list(net.state_dict())[0] == "network.enc_conv0.weight"
    with pytest.raises(ConfigError, match=r"network\.network\.n_featur.*did you mean 'n_feature'"):
        load_options(options_file(tmp_path, "{type: with_mask, network: {type: n2n_unet, in_nc: 4, n_featur: 8}}"))
    with pytest.raises(ConfigError, match="in_nc: 4 for RGB"):
        three = load_options(options_file(tmp_path, "{type: with_mask, network: {type: n2n_unet, n_feature: 8}}"))
        three.network.build()
    with pytest.raises(ConfigError, match="cannot wrap with_mask"):
        load_options(options_file(tmp_path, "{type: with_mask, network: {type: with_mask}}")).network.build()


def test_size_rules_are_the_inner_networks() -> None:
    net = WithMask(N2NUNet(in_nc=4, n_feature=8))
    assert not hasattr(net, "forward_any_size")  # the engine pads image and mask to 32 itself
    x, mask = torch.rand(1, 3, 40, 50), torch.rand(1, 1, 40, 50)
    assert Restorer(net)(x, mask).shape == (1, 3, 40, 50)

    centred = WithMask(Centred())
    Centred.seen.clear()
    out = Restorer(centred)(x, mask)
    assert Centred.seen == [(40, 50)] and torch.equal(out, x)  # the inner rule ran, on 4 channels


def mask_folder(root: Path, n: int = 3, size: tuple[int, int] = (40, 48)) -> Path:
    """ISTD layout: shadow image, mask (0/255) and a shadow-free target darkened inside the mask."""
    rng = np.random.default_rng(0)
    for i in range(n):
        free = rng.integers(60, 256, (*size, 3), dtype=np.uint8)
        mask = np.zeros(size, np.uint8)
        mask[5 + i : 25 + i, 8:30] = 255
        shadow = np.where(mask[..., None] > 0, free // 2, free).astype(np.uint8)
        for folder, array in (("train_A", shadow), ("train_B", mask), ("train_C", free)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(root / folder / f"{i}.png"), array)
    return root


def test_trains_for_shadow_removal_and_restores_with_mask_dir(tmp_path: Path, capsys) -> None:
    data = mask_folder(tmp_path / "ISTD")
    overrides = [
        "network={type: with_mask, network: {type: n2n_unet, in_nc: 4, n_feature: 8}, residual: true}",
        f"datasets.train={{type: shadow_folder, root: {data}, split: train, crop_size: 32, batch_size: 2, "
        "num_workers: 0}",
        f"datasets.val.istd_test.root={data}", "datasets.val.istd_test.split=train",
        "datasets.val.istd_test.num_workers=0",
        "train.total_iter=2", "train.val_every=2", "train.save_every=2", "train.log_every=1",
        "train.scheduler.warmup_iter=0", "infer.tile=null", "device=cpu",
        f"path.experiments_root={tmp_path / 'exp'}",
    ]
    opt = ROOT / "options/unet/train/shadow_istd_unet_mask.yml"
    assert main(["train", "-opt", str(opt), *[a for o in overrides for a in ("--set", o)]]) == 0
    out = capsys.readouterr().out
    assert "lab_mae" in out  # validated under the shadow protocol, with the masks
    weights = tmp_path / "exp/shadow_istd_unet_mask/models/final.pth"
    assert weights.is_file()

    args = ["infer", "-opt", str(opt), "--set", "network={type: with_mask, network: {type: n2n_unet, in_nc: 4, "
            "n_feature: 8}, residual: true}", "--set", "device=cpu", "--set", "infer.tile=null",
            "--weights", str(weights), "--input", str(data / "train_A"), "--no-progress"]
    assert main([*args, "--mask-dir", str(data / "train_B"), "--output", str(tmp_path / "out")]) == 0
    assert "restored 3" in capsys.readouterr().out

    restored = cv2.imread(str(tmp_path / "out" / "0.png"))
    assert restored.shape == (40, 48, 3)

    from restore.engine.checkpoint import load_weights

    net = load_options(opt, ["network.network.n_feature=8"]).network.build()
    load_weights(net, weights)
    x, mask = torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)
    with torch.no_grad():
        assert not torch.equal(net(x, mask), net(x, mask + 1))  # the trained network reads the mask


def test_registered_and_default_network() -> None:
    assert registry.target("arch", "with_mask") == "restore.archs.mask_input:WithMask"
    net = WithMask()  # the N2N UNet with in_nc 4: `restore archs with_mask` can show a size
    assert net.in_nc == 3 and isinstance(net.network, N2NUNet)
