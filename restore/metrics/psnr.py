"""PSNR, batched, float64 (metrics.md §1).

``PSNR = 10 log10(peak^2 / MSE)`` with MSE over all pixels *and* channels of each image. The
dataset number is the mean of the per-image dB values (the evaluator does that), never the PSNR
of a pooled MSE.
"""

from __future__ import annotations

import torch
from torch import Tensor


def crop(x: Tensor, border: int) -> Tensor:
    """Remove ``border`` rows/columns on every side of ``(..., H, W)``; 0 is a no-op."""
    if border < 0:
        raise ValueError(f"crop_border must be >= 0, got {border}")
    if border == 0:
        return x
    if 2 * border >= min(x.shape[-2:]):
        raise ValueError(f"crop_border {border} leaves nothing of a {tuple(x.shape[-2:])} image")
    return x[..., border:-border, border:-border]


def mse(pred: Tensor, target: Tensor) -> Tensor:
    """Per-image mean squared error over (C, H, W) of ``(B, C, H, W)`` tensors -> ``(B,)`` float64."""
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch: pred {tuple(pred.shape)} vs target {tuple(target.shape)}")
    if pred.ndim != 4:
        raise ValueError(f"expected (B, C, H, W), got {tuple(pred.shape)}")
    d = pred.to(torch.float64) - target.to(torch.float64)
    return d.square().flatten(1).mean(dim=1)


def psnr_from_mse(m: Tensor, data_range: float = 1.0) -> Tensor:
    """``10 log10(data_range^2 / m)``; ``inf`` where ``m == 0`` (identical images), like BasicSR."""
    return 10.0 * torch.log10(data_range**2 / m)


def psnr(pred: Tensor, target: Tensor, *, data_range: float = 1.0, crop_border: int = 0) -> Tensor:
    """Per-image PSNR in dB of ``(B, C, H, W)`` batches -> ``(B,)`` float64.

    ``data_range`` is the peak value of the data (1 for [0, 1], 255 for [0, 255]); ``crop_border``
    pixels are dropped on every side first. No quantisation or colour conversion happens here
    (the protocol does that). Identical images give ``+inf`` (MSE = 0), as BasicSR's numpy PSNR;
    no epsilon is added, so values match the float64 references to ~1e-10 dB.
    """
    return psnr_from_mse(mse(crop(pred, crop_border), crop(target, crop_border)), data_range)
