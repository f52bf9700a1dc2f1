"""VGG feature ("perceptual") loss, with ImageNet weights read from a local file only.

``sum_l weight_l * criterion(phi_l(pred), phi_l(target))`` over chosen ReLU outputs ``phi_l`` of
torchvision's VGG16/VGG19 ``features``. Defaults are WDNet's recipe (specs/wdnet.md §7): VGG19,
``relu1_2`` / 2.6 + ``relu2_2`` / 4.8, L1, and Caffe-style input ``255 x - (123.68, 116.779,
103.939)`` with no division by the std (``input_norm="imagenet"`` gives torchvision's usual
``(x - mean) / std`` instead).

The weights are never downloaded: the network is built with random weights and loaded from
``weights_path``, else ``$RESTORE_VGG_WEIGHTS``, else the torch hub cache
(``~/.cache/torch/hub/checkpoints/vgg19-dcbb9e9d.pth``), as for every backbone in restore
(:mod:`restore.utils.weights_file`). A missing or unreadable file raises
:class:`~restore.errors.MissingWeightsError` naming the file and where to put it. Only the
layers up to the deepest one used are built and loaded.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restore.errors import ConfigError
from restore.utils.weights_file import pick_tensors, read_weights_file

#: torchvision's ImageNet checkpoint file names (VGG16_Weights / VGG19_Weights .IMAGENET1K_V1).
VGG_FILES = {"vgg16": "vgg16-397923af.pth", "vgg19": "vgg19-dcbb9e9d.pth"}
_CONFIG = {"vgg16": "D", "vgg19": "E"}  # torchvision.models.vgg.cfgs keys
CAFFE_MEAN = (123.68, 116.779, 103.939)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
WDNET_LAYERS = {"relu1_2": 1 / 2.6, "relu2_2": 1 / 4.8}


ENV_VAR = "RESTORE_VGG_WEIGHTS"


def layer_names(cfg: list) -> list[str]:
    """Names of the modules of ``make_layers(cfg)``: conv1_1, relu1_1, ..., pool1, conv2_1, ..."""
    names, block, index = [], 1, 1
    for entry in cfg:
        if entry == "M":
            names.append(f"pool{block}")
            block, index = block + 1, 1
        else:
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
            index += 1
    return names


class PerceptualLoss(nn.Module):
    """Weighted feature distances of a frozen VGG; ``(pred, target)`` are (B, 3, H, W) RGB in [0, 1].

    Args:
        net: ``"vgg19"`` (WDNet) or ``"vgg16"``.
        layers: ``{layer name: weight}``, names as ``relu2_2``, ``conv3_1``, ``pool1``
            (default: WDNet's ``relu1_2: 1/2.6, relu2_2: 1/4.8``).
        weights_path: torchvision's ImageNet checkpoint of ``net``
            (default: ``$RESTORE_VGG_WEIGHTS``, else the torch hub cache).
        input_norm: ``"caffe"`` (WDNet: ``255 x - mean``) or ``"imagenet"`` (``(x - mean) / std``).
        criterion: ``"l1"`` (WDNet) or ``"l2"``.
    """

    def __init__(
        self,
        net: Literal["vgg19", "vgg16"] = "vgg19",
        layers: dict[str, float] | None = None,
        weights_path: str | None = None,
        input_norm: Literal["caffe", "imagenet"] = "caffe",
        criterion: Literal["l1", "l2"] = "l1",
    ) -> None:
        super().__init__()
        if net not in VGG_FILES:
            raise ConfigError(f"perceptual loss net must be one of {', '.join(VGG_FILES)}, got {net!r}")
        if input_norm not in ("caffe", "imagenet"):
            raise ConfigError(f"perceptual loss input_norm must be 'caffe' or 'imagenet', got {input_norm!r}")
        if criterion not in ("l1", "l2"):
            raise ConfigError(f"perceptual loss criterion must be 'l1' or 'l2', got {criterion!r}")
        layers = dict(WDNET_LAYERS if layers is None else layers)
        if not layers:
            raise ConfigError("perceptual loss needs at least one layer")
        from torchvision.models.vgg import cfgs, make_layers  # lazy: torchvision is heavy

        cfg = cfgs[_CONFIG[net]]
        names = layer_names(cfg)
        unknown = sorted(set(layers) - set(names))
        if unknown:
            raise ConfigError(f"unknown {net} layer(s) {', '.join(unknown)} (known: {', '.join(names)})")
        what = f"{net} ImageNet weights for the perceptual loss"
        path, state = read_weights_file(what, VGG_FILES[net], weights_path, ENV_VAR)
        self.taps = {names.index(name): float(weight) for name, weight in layers.items()}
        last = max(self.taps)
        # Build only the entries of cfg that produce modules 0..last.
        modules, used = 0, 0
        while modules <= last:
            modules += 1 if cfg[used] == "M" else 2
            used += 1
        self.features = nn.Sequential(*list(make_layers(cfg[:used]))[: last + 1])
        for m in self.features:
            if isinstance(m, nn.ReLU):
                m.inplace = False  # a tapped conv output must survive the ReLU after it (autograd)
        self.features.load_state_dict(pick_tensors(state, self.features.state_dict(), path))
        self.features.requires_grad_(False).eval()
        self.weights_path, self.input_norm = path, input_norm
        self.distance = F.l1_loss if criterion == "l1" else F.mse_loss
        if input_norm == "caffe":
            mean, std = torch.tensor(CAFFE_MEAN), torch.ones(3)  # std unused
        else:
            mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.features.eval()  # frozen: stays in eval mode whatever the trainer asks
        return self

    def normalize(self, x: Tensor) -> Tensor:
        if self.input_norm == "caffe":
            return x * 255 - self.mean
        return (x - self.mean) / self.std

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        n = pred.shape[0]
        h = self.normalize(torch.cat([pred, target.detach()]))
        total = pred.new_zeros(())
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.taps:
                total = total + self.taps[i] * self.distance(h[:n], h[n:].detach())
        return total

