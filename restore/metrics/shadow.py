"""Shadow-removal metrics (metrics.md §4.4, families A and B), batched torch, float64.

The papers' "RMSE" is a mean absolute error in CIELAB (MATLAB ``srgb2lab``, D50-adapted), per
pixel summed over L, a and b, averaged over all pixels (ALL), the shadow region (S) or the
non-shadow region (NS). Two aggregations exist: the mean of per-image values ("PI") and the
dataset-pooled ``sum d / sum pixels`` ("PP"). So everything here returns per-image **sums and
counts** that an accumulator can pool either way.

* Family A (``measure_shadow.m``): result, GT and mask are MATLAB-``imresize``d to 256x256 (the
  mask as uint8, rounded between passes), shadow = resized mask != 0; also whole-image and
  region PSNR / 3-D SSIM (L = 1), where a region metric zeroes the other region in both images
  and still averages over all pixels.
* Family B (DC-ShadowNet ``evaluate_recovery.m``): native size; GT bicubic-resized to the result
  size only if they differ, mask nearest-resized, 3-channel masks -> ``rgb2gray``, mask != 0.
"""

from __future__ import annotations

import torch
from torch import Tensor

from restore.metrics.color import rgb_to_gray_matlab, srgb_to_lab
from restore.metrics.psnr import psnr
from restore.metrics.ssim import ssim
from restore.utils.matlab_resize import imresize

FAMILY_A_SIZE = (256, 256)
SUM_KEYS = ("sum_all", "n_all", "sum_s", "n_s", "sum_ns", "n_ns")


def lab_error(pred: Tensor, target: Tensor) -> Tensor:
    """Per-pixel ``|dL| + |da| + |db|`` of two ``(B, 3, H, W)`` sRGB batches in [0, 1] -> ``(B, H, W)``."""
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch: pred {tuple(pred.shape)} vs target {tuple(target.shape)}")
    return (srgb_to_lab(pred) - srgb_to_lab(target)).abs().sum(dim=1)


def lab_mae(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> dict[str, Tensor]:
    """Per-image LAB absolute-error sums and pixel counts over ALL / S / NS.

    ``pred``, ``target``: ``(B, 3, H, W)`` sRGB in [0, 1] (already at the protocol's size);
    ``mask``: ``(B, 1, H, W)`` (or ``(B, H, W)``), shadow where non-zero; ``None`` = no shadow
    pixels. Returns ``{'sum_all', 'n_all', 'sum_s', 'n_s', 'sum_ns', 'n_ns'}``, each ``(B,)``
    float64. Per-image MAE is ``sum_x / n_x``; the pooled MAE is ``sum(sum_x) / sum(n_x)``.
    """
    err = lab_error(pred, target)
    b = err.shape[0]
    if mask is None:
        shadow = torch.zeros_like(err, dtype=torch.bool)
    else:
        shadow = (mask.reshape(b, *err.shape[-2:]) != 0)
    s = shadow.to(err.dtype)
    sum_all = err.flatten(1).sum(1)
    sum_s = (err * s).flatten(1).sum(1)
    n_all = torch.full((b,), float(err[0].numel()), dtype=torch.float64, device=err.device)
    n_s = s.flatten(1).sum(1)
    return {
        "sum_all": sum_all,
        "n_all": n_all,
        "sum_s": sum_s,
        "n_s": n_s,
        "sum_ns": sum_all - sum_s,
        "n_ns": n_all - n_s,
    }


def mask_to_uint8(mask: Tensor) -> Tensor:
    """Raw mask -> uint8 ``(B, 1, H, W)``: uint8 kept, float/bool in [0, 1] scaled by 255 and rounded.

    3-channel masks are reduced with MATLAB ``rgb2gray`` (uint8 path: rounded).
    """
    if mask.ndim == 3:
        mask = mask[:, None]
    if mask.ndim != 4 or mask.shape[1] not in (1, 3):
        raise ValueError(f"expected a mask of shape (B, 1, H, W) or (B, 3, H, W), got {tuple(mask.shape)}")
    if mask.dtype == torch.bool:
        m = mask.to(torch.float64) * 255.0
    elif mask.dtype == torch.uint8:
        m = mask.to(torch.float64)
    else:
        m = torch.round(mask.to(torch.float64).clamp(0, 1) * 255.0)
    if m.shape[1] == 3:
        m = rgb_to_gray_matlab(m, round_uint8=True)
    return m.clamp_(0, 255).to(torch.uint8)


def prepare_family_a(pred: Tensor, target: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
    """``measure_shadow.m`` preprocessing: everything to 256x256 with MATLAB ``imresize``.

    ``pred``/``target``: ``(B, 3, H, W)`` float in [0, 1] (``double(img)/255``), resized as doubles
    (no clipping). ``mask``: raw mask, resized as uint8 (rounded between the two passes), then
    binarised ``!= 0`` -> bool ``(B, 1, 256, 256)``.
    """
    pred = imresize(pred.to(torch.float64), FAMILY_A_SIZE)
    target = imresize(target.to(torch.float64), FAMILY_A_SIZE)
    shadow = None
    if mask is not None:
        shadow = imresize(mask_to_uint8(mask), FAMILY_A_SIZE) != 0
    return pred, target, shadow


def prepare_family_b(pred: Tensor, target: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
    """DC-ShadowNet ``evaluate_recovery.m`` preprocessing at the result's size.

    GT is bicubic-resized (MATLAB) to the result size only when sizes differ; the mask is
    nearest-resized when needed, 3-channel masks go through ``rgb2gray``; shadow = mask != 0.
    """
    size = tuple(pred.shape[-2:])
    pred = pred.to(torch.float64)
    target = target.to(torch.float64)
    if tuple(target.shape[-2:]) != size:
        target = imresize(target, size)
    shadow = None
    if mask is not None:
        m = mask_to_uint8(mask)
        if tuple(m.shape[-2:]) != size:
            m = imresize(m, size, method="nearest")
        shadow = m != 0
    return pred, target, shadow


def region_psnr_ssim(pred: Tensor, target: Tensor, shadow: Tensor | None) -> dict[str, Tensor]:
    """Family-A PSNR (peak 1) and MATLAB 3-D SSIM (L = 1): whole image, S and NS, each ``(B,)``.

    Region values multiply both images by the region mask (zeros elsewhere) and still average
    over all pixels, exactly as ``measure_shadow.m`` (hence inflated numbers). Without a mask only
    'psnr' and 'ssim' are returned.
    """
    out = {
        "psnr": psnr(pred, target, data_range=1.0),
        "ssim": ssim(pred, target, data_range=1.0, variant="matlab3d"),
    }
    if shadow is not None:
        s = shadow.to(torch.float64)
        for key, region in (("s", s), ("ns", 1.0 - s)):
            p, t = pred * region, target * region
            out[f"psnr_{key}"] = psnr(p, t, data_range=1.0)
            out[f"ssim_{key}"] = ssim(p, t, data_range=1.0, variant="matlab3d")
    return out
