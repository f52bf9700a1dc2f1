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

from restore.errors import MissingWeightsError
from restore.utils.weights_file import find_weights_file

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
        path = backbone_file(net, backbone_path)
        if not path.is_file():
            raise MissingWeightsError(
                f"LPIPS {net} backbone weights not found: put torchvision's {BACKBONE_FILES[net]} at {path} "
                f"(or set {ENV_VAR}=/path/to/{BACKBONE_FILES[net]}); nothing is downloaded"
            )
        state = _read_checkpoint(path, net)  # before building the net: a bad file fails fast
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


def _read_checkpoint(path: Path, net: str) -> dict[str, Tensor]:
    """``torch.load`` the backbone file; a truncated, empty or foreign file is a MissingWeightsError
    (one line naming it), not an unpickling traceback."""
    problem = None
    try:
        if path.stat().st_size == 0:
            problem = "empty file"
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(state, dict):
                problem = f"holds a {type(state).__name__}, not a state dict"
    except Exception as err:  # UnpicklingError, EOFError, RuntimeError (zip reader), OSError, ...
        text = " ".join(str(err).split()).split(". ")[0][:120]  # first sentence: torch's are paragraphs
        problem = f"{type(err).__name__}: {text}" if text else type(err).__name__
    if problem is not None:
        raise MissingWeightsError(
            f"{path}: not a readable PyTorch checkpoint of torchvision's {BACKBONE_FILES[net]} ({problem})"
        )
    return state


def _load_backbone(backbone: torch.nn.Module, state: dict[str, Tensor], path: Path) -> None:
    """Copy torchvision ``features.<i>.*`` tensors into lpips' ``slice<k>.<i>.*`` modules."""
    loaded = 0
    for slice_name, sl in backbone.named_children():
        for idx, module in sl.named_children():
            for pname, param in module.named_parameters(recurse=False):
                key = f"features.{idx}.{pname}"
                if key not in state:
                    raise MissingWeightsError(f"{path} is not a torchvision checkpoint for this LPIPS net (no {key})")
                value = state[key]
                if not isinstance(value, Tensor) or value.shape != param.shape:
                    got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                    raise MissingWeightsError(f"{path}: {key} is {got}, expected a tensor of shape {tuple(param.shape)}")
                param.data.copy_(value)
                loaded += 1
    if loaded == 0:
        raise MissingWeightsError(f"{path}: no backbone parameters matched")
