"""LPIPS (v0.1, package ``lpips``) without any download (metrics.md §5).

The ``lpips`` package ships its linear-layer weights, but its backbone (torchvision AlexNet or
VGG16 ImageNet weights) would be fetched from the internet on first use. We build the network
with a random backbone (``pnet_rand=True``) and load torchvision's checkpoint ourselves from, in
order: the ``backbone_path`` argument, ``$RESTORE_LPIPS_BACKBONE``, or the torch hub cache
``<torch.hub.get_dir()>/checkpoints/<torchvision file name>``. A missing file raises
:class:`~restore.errors.MissingWeightsError` naming the exact file and place.

``lpips``/``torchvision`` are imported only when an :class:`LPIPSMetric` is constructed.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import Tensor

from restore.utils.weights_file import find_weights_file, pick_tensors, read_weights_file

ENV_VAR = "RESTORE_LPIPS_BACKBONE"
# torchvision's checkpoint file names (AlexNet_Weights / VGG16_Weights .IMAGENET1K_V1).
BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}
# Smallest image side the backbone accepts (smaller ones pool to a 0x0 feature map).
MIN_SIZE = {"alex": 31, "vgg": 16}


def backbone_file(net: str, backbone_path: str | os.PathLike | None = None) -> Path:
    """Where the ``net`` backbone checkpoint is looked for (argument > env var > torch hub cache)."""
    return find_weights_file(BACKBONE_FILES[net], backbone_path, ENV_VAR)


class LPIPSMetric:
    """Per-image LPIPS distance (lower is better) with a local backbone checkpoint.

    ``net``: 'alex' (demoireing papers, ESDNet) or 'vgg' (BasicSR's script); always report it.
    Call with ``(B, 3, H, W)`` RGB in [0, 1] (clamped, then mapped to [-1, 1]); returns ``(B,)``
    float64. The network runs in float32 on the inputs' device.
    """

    def __init__(self, net: str = "alex", *, backbone_path: str | os.PathLike | None = None, device=None) -> None:
        if net not in BACKBONE_FILES:
            raise ValueError(f"LPIPS net must be one of {', '.join(BACKBONE_FILES)}, got {net!r}")
        # read before building the net: a missing or bad file fails fast
        path, state = read_weights_file(f"LPIPS {net} backbone weights", BACKBONE_FILES[net], backbone_path, ENV_VAR)
        import lpips  # lazy: pulls in torchvision

        with warnings.catch_warnings():  # torchvision's 'pretrained' deprecation chatter
            warnings.simplefilter("ignore")
            model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
        _load_backbone(model.net, state, path)
        self.net = net
        self.backbone_path = path
        self.model = model.eval().requires_grad_(False)
        if device is not None:
            self.model.to(device)

    @torch.no_grad()
    def __call__(self, pred: Tensor, target: Tensor) -> Tensor:
        if pred.shape != target.shape or pred.ndim != 4 or pred.shape[1] != 3:
            raise ValueError(f"expected two (B, 3, H, W) batches, got {tuple(pred.shape)} and {tuple(target.shape)}")
        dev = next(self.model.parameters()).device
        if dev != pred.device:
            self.model.to(pred.device)
        x = pred.to(torch.float32).clamp(0, 1) * 2 - 1
        y = target.to(torch.float32).clamp(0, 1) * 2 - 1
        return self.model(x, y).flatten(1).sum(1).to(torch.float64)


def _load_backbone(backbone: torch.nn.Module, state: dict[str, Tensor], path: Path) -> None:
    """Copy torchvision ``features.<i>.*`` tensors into lpips' ``slice<k>.<i>.*`` modules."""
    params = {
        f"{idx}.{pname}": param
        for sl in backbone.children()
        for idx, module in sl.named_children()
        for pname, param in module.named_parameters(recurse=False)
    }
    for key, value in pick_tensors(state, params, path).items():
        params[key].data.copy_(value)
