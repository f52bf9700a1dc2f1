"""LAB-Net's loss terms, computed in OpenCV's 8-bit LAB space as the official code does.

LAB-Net's input, output and target are OpenCV 8-bit LAB codes / 255 (:mod:`restore.methods.labnet.lab`),
and its loss is computed there against the LAB target: ``perceptual + 10 * gradient + 100 * MSE``.
The framework's datasets yield RGB, so the train step ``labnet``
(:mod:`restore.methods.labnet.step`) converts input and target with OpenCV before the network
and applies the configured ``train.losses`` to the LAB tensors:

.. code-block:: yaml

    train:
      step: {type: labnet}
      losses:
        - {type: labnet_perceptual, weight: 1.0}
        - {type: sobel_gradient, weight: 10.0}
        - {type: l2, weight: 100.0}

* :class:`LabNetPerceptualLoss` (``labnet_perceptual``): frozen torchvision VGG16 (ImageNet
  weights, never downloaded: torchvision's ``vgg16-397923af.pth`` is looked up as the LPIPS
  backbone is), fed the LAB tensors as they are (no ImageNet normalisation, as the official
  code). L1 between the features of prediction and target at six points, divided by
  (1.0, 2.6, 4.8, 3.7, 5.6, 0.15): the image itself, relu1_2, relu2_2, relu3_2, relu4_2 and the
  pre-ReLU conv5_2. (The official slices end on convs; each next slice starts with an in-place
  ReLU that rewrites the stored output, hence the ReLU'd features except the last.)
* :class:`SobelGradientLoss` (``sobel_gradient``): depthwise Sobel x and y with zero padding 1,
  ``L1(dx) + L1(dy)``.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restore.errors import ConfigError
from restore.utils.weights_file import pick_tensors, read_weights_file

VGG16_FILE = "vgg16-397923af.pth"  # torchvision's VGG16_Weights.IMAGENET1K_V1
VGG16_ENV = "RESTORE_VGG_WEIGHTS"  # the same variable as the perceptual loss
#: Indices of ``vgg16.features`` after which the official loss reads a feature map, and its divisor.
PERCEPTUAL_TAPS = (3, 8, 13, 20, 26)
PERCEPTUAL_DIVISORS = (1.0, 2.6, 4.8, 3.7, 5.6, 0.15)


def vgg16_features(weights_path: str | os.PathLike | None = None) -> nn.Sequential:
    """torchvision's ``vgg16().features`` (31 layers) with its ImageNet weights, frozen, in eval mode.

    The file is ``weights_path``, else ``$RESTORE_VGG_WEIGHTS``, else the torch hub cache. Only
    the ``features.*`` tensors of the checkpoint are read; a missing or unreadable file is a
    one-line :class:`MissingWeightsError` (nothing is ever downloaded).
    """
    from torchvision.models.vgg import cfgs, make_layers

    what = "VGG16 weights for the labnet_perceptual loss"
    path, state = read_weights_file(what, VGG16_FILE, weights_path, VGG16_ENV)
    features = make_layers(cfgs["D"])
    features.load_state_dict(pick_tensors(state, features.state_dict(), path))
    for m in features.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    return features.eval().requires_grad_(False)


class LabNetPerceptualLoss(nn.Module):
    """LAB-Net's VGG16 perceptual loss (see the module docstring); ``pred``, ``target`` (B, 3, H, W)."""

    def __init__(self, weights_path: str | None = None, divisors: list[float] | None = None) -> None:
        super().__init__()
        self.divisors = [float(d) for d in (divisors or PERCEPTUAL_DIVISORS)]
        if len(self.divisors) != len(PERCEPTUAL_TAPS) + 1:
            raise ConfigError(f"labnet_perceptual divisors must be {len(PERCEPTUAL_TAPS) + 1} numbers, got {divisors}")
        self.features = vgg16_features(weights_path)[: PERCEPTUAL_TAPS[-1] + 1]

    def train(self, mode: bool = True) -> LabNetPerceptualLoss:  # the VGG stays in eval mode
        return self

    def _taps(self, x: Tensor) -> list[Tensor]:
        out = [x]
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in PERCEPTUAL_TAPS:
                out.append(x)
        return out

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        with torch.no_grad():
            goal = self._taps(target)
        loss = pred.new_zeros(())
        for p, t, d in zip(self._taps(pred), goal, self.divisors):
            loss = loss + F.l1_loss(p, t) / d
        return loss


def sobel_gradients(x: Tensor) -> tuple[Tensor, Tensor]:
    """Depthwise Sobel responses of (B, C, H, W), zero padding 1 -> (gx, gy), each (B, C, H, W)."""
    kx = x.new_tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
    c = x.shape[1]
    weight = torch.stack([kx, kx.t()])[:, None].repeat(c, 1, 1, 1)  # per channel: x then y
    g = F.conv2d(x, weight, padding=1, groups=c)
    return g[:, 0::2], g[:, 1::2]


class SobelGradientLoss(nn.Module):
    """``L1(sobel_x(pred), sobel_x(target)) + L1(sobel_y(pred), sobel_y(target))`` (means)."""

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        (px, py), (tx, ty) = sobel_gradients(pred), sobel_gradients(target)
        return F.l1_loss(px, tx) + F.l1_loss(py, ty)
