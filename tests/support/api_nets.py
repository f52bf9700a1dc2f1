"""Small networks of the six architectures for the Python API and demo tests.

Each case is an option file's ``network`` section (small widths, so a forward on a 100-pixel
crop takes a fraction of a second on a CPU). :func:`write_case` builds the network from the
option file, seeds its weights, saves them as a plain state_dict (the layout the official
releases use, no restore metadata) and returns the option file and the weights file.
Imported as a plain module (tests/conftest.py puts tests/support on ``sys.path``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

# name -> (network section as YAML flow mapping, takes a mask, output scale)
CASES: dict[str, tuple[str, bool, int]] = {
    "n2n_unet": ("{type: n2n_unet, n_feature: 8, pad_square: true}", False, 1),
    "uformer": ("{type: uformer, embed_dim: 8, depths: [1, 1, 1, 1, 1, 1, 1, 1, 1], win_size: 4, modulator: true, "
                "drop_path_rate: 0.0}", False, 1),
    "tape_r": ("{type: tape_r, embed_dim: 8, depths_enc: [1, 1], depth_mid: 1, depths_dec: [1, 1], heads: [1, 2], "
               "heads_mid: 2, win_size: 4, prior_tokens: 8, pem_heads: 2, drop_path_rate: 0.0}", False, 1),
    "wdnet": ("{type: wdnet, channels: 16, growth: 8, dilations: [1, 3]}", False, 1),
    "labnet": ("{type: labnet, channels: 8, down_size: 64}", True, 1),
    "ipt": ("{type: ipt, n_feats: 4, num_heads: 4, num_layers: 1, scale: [2], num_queries: 1}", False, 2),
}

OPTIONS = """\
name: api_{name}
task: {task}
device: cpu
network: {network}
infer: {{tile: null}}
"""


class SmallConv(nn.Module):
    """Two 3x3 convolutions: a receptive field of 2 pixels, so tiling with an overlap of 8 or
    more equals the whole-image output (up to float rounding)."""

    def __init__(self, in_nc: int = 3, out_nc: int = 3) -> None:
        super().__init__()
        self.in_nc = in_nc
        self.body = nn.Sequential(nn.Conv2d(in_nc, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, out_nc, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def randomize(net: nn.Module, seed: int = 1, std: float = 0.05) -> nn.Module:
    """Seeded random parameters, for WDNet, whose own init is nearly the identity (an output
    equal to the input would hide a wrong wiring)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return net


def write_options(folder: Path, name: str, network: str, task: str = "denoise") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yml"
    path.write_text(OPTIONS.format(name=name, task=task, network=network))
    return path


def write_case(folder: Path, name: str, seed: int = 1) -> tuple[Path, Path]:
    """The option file and a random-weights file (plain state_dict) of case ``name``."""
    from restore.config import load_options

    network, takes_mask, _ = CASES[name]
    options = write_options(folder, name, network, task="shadow" if takes_mask else "denoise")
    torch.manual_seed(seed)  # the architectures' own random init, seeded
    net = load_options(options).network.build()
    if name == "wdnet":  # its own init is nearly the identity
        randomize(net, seed)
    if name == "n2n_unet":  # its own init gives outputs near 0, mostly clamped: mid-grey plus detail
        randomize(net, seed, std=0.1)
        last = [m for m in net.modules() if isinstance(m, nn.Conv2d)][-1]
        with torch.no_grad():
            last.bias.add_(0.4)
    weights = folder / f"{name}.pth"
    torch.save(net.state_dict(), weights)
    return options, weights


def generated_image(h: int = 40, w: int = 56, seed: int = 0) -> np.ndarray:
    """A smooth colour gradient with texture and a few edges: an image-like uint8 (H, W, 3)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([x / w, y / h, 0.5 + 0.4 * np.sin(x / 5 + y / 7)], axis=2)
    base[h // 3 : h // 2, w // 4 : w // 2] = [0.9, 0.2, 0.1]
    noisy = base + rng.normal(0, 0.05, base.shape)
    return np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)


def rectangle_mask(h: int, w: int) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4 : 3 * h // 4, w // 3 : 2 * w // 3] = 255
    return mask
