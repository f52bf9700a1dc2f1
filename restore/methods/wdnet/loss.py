"""Wavelet-domain losses of WDNet's official recipe (specs/wdnet.md §7).

Both transform prediction and target with the 2-level Haar packet of
:mod:`restore.methods.wdnet.wavelet` (``(B, 3, H, W) -> (B, 48, H/4, W/4)``, band-major: channels 0..2
are the LL-LL band of R, G, B, channels 3..47 the 15 detail bands as RGB triples). H and W must
be multiples of 4 (WDNet trains on 256x256 crops).

Official weighting: ``100 * wavelet_l1(high) + 10 * wavelet_l1(low) + 5 * wavelet_texture``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restore.methods.wdnet.wavelet import HaarPacket


class WaveletL1Loss(nn.Module):
    """Mean absolute difference of the wavelet coefficients of one band group.

    ``bands``: ``"low"`` (the LL-LL band, official ``loss_lr``), ``"high"`` (the 15 detail
    bands, official ``loss_sr``) or ``"all"``.
    """

    def __init__(self, bands: Literal["low", "high", "all"] = "high") -> None:
        super().__init__()
        if bands not in ("low", "high", "all"):
            from restore.errors import ConfigError

            raise ConfigError(f"wavelet_l1 bands must be 'low', 'high' or 'all', got {bands!r}")
        self.bands = bands
        self.wavelet = HaarPacket(levels=2, channels=3)

    def _select(self, coeffs: Tensor) -> Tensor:
        if self.bands == "low":
            return coeffs[:, :3]
        if self.bands == "high":
            return coeffs[:, 3:]
        return coeffs

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return F.l1_loss(self._select(self.wavelet(pred)), self._select(self.wavelet(target)))


class WaveletTextureLoss(nn.Module):
    """Hinge on the detail-band energy: ``mean(relu(ratio * e(target) - e(pred) + margin))``.

    ``e`` is the per-pixel energy of each of the 15 detail bands summed over the 3 colours,
    ``(B, 15, H/4, W/4)``; it penalises a prediction whose texture is much weaker than the
    target's (official: ratio 1.2, margin 0).
    """

    def __init__(self, ratio: float = 1.2, margin: float = 0.0) -> None:
        super().__init__()
        self.ratio, self.margin = ratio, margin
        self.wavelet = HaarPacket(levels=2, channels=3)

    def energy(self, x: Tensor) -> Tensor:
        detail = self.wavelet(x)[:, 3:]
        b, _, h, w = detail.shape
        return detail.view(b, -1, 3, h, w).square().sum(2)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return torch.relu(self.ratio * self.energy(target) - self.energy(pred) + self.margin).mean()
