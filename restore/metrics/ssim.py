"""SSIM in the three conventions the papers use (metrics.md §3), batched torch, float64.

``variant``:

* ``'gaussian'`` -- Wang et al. 2004 ``ssim_index.m`` = BasicSR ``calculate_ssim`` = skimage with
  ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``: 11x11 Gaussian (sigma 1.5),
  population moments, **valid** region only ((H-10) x (W-10) map), mean of per-channel means.
  Also the pytorch-msssim style (UHDM) since all channel maps have the same size.
* ``'matlab3d'`` -- MATLAB ``ssim`` on an H x W x C array: the image is a **3-D volume**, filtered
  by an 11x11x11 Gaussian (sigma 1.5) with replicate padding in all three dimensions, full-size
  map, mean over the whole volume. Along the channel axis replicate padding folds the 11 taps onto
  the C channels, so the third-dimension filter is the C x C matrix ``M[c, j] = sum of g[k]`` over
  the taps ``k`` whose replicate-clamped index ``clamp(c + k, 0, C-1)`` is ``j``. With C = 1 this
  is MATLAB's 2-D ``ssim``.
* ``'skimage_uniform'`` -- skimage ``structural_similarity`` defaults: 7x7 uniform window, sample
  covariance (x N/(N-1), N = 49), 3 px cropped (= valid region), mean of per-channel means.

``data_range`` is SSIM's L (C1 = (0.01 L)^2, C2 = (0.03 L)^2): 255 for uint8-valued data, 1 for
[0, 1] data (MATLAB on double/single), 2 for old skimage on float data (MBCNN/AIM19).
All filters are separable and implemented as shifted sums, so results are exact float64 on any
device; on CPU the map is computed in row bands that fit in cache (a Kodak image takes ~0.03 s on 2 cores).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from restore.metrics.psnr import crop

SSIMVariant = Literal["gaussian", "matlab3d", "skimage_uniform"]
VARIANTS: tuple[str, ...] = ("gaussian", "matlab3d", "skimage_uniform")

K1, K2 = 0.01, 0.03


def gaussian_kernel1d(size: int = 11, sigma: float = 1.5, *, device=None) -> Tensor:
    """Normalised 1-D Gaussian (= ``cv2.getGaussianKernel`` / MATLAB ``fspecial``), float64."""
    r = (size - 1) / 2.0
    x = torch.arange(size, dtype=torch.float64, device=device) - r
    g = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter_valid(x: Tensor, k: list[float]) -> Tensor:
    """Separable 'valid' filtering of ``(..., H, W)`` by the 1-D kernel ``k`` on both axes.

    Shifted in-place sums: exact float64, no im2col, any device.
    """
    n = len(k)
    wo, ho = x.shape[-1] - n + 1, x.shape[-2] - n + 1
    acc = x[..., :, 0:wo] * k[0]
    for i in range(1, n):
        acc.add_(x[..., :, i : i + wo], alpha=k[i])
    out = acc[..., 0:ho, :] * k[0]
    for i in range(1, n):
        out.add_(acc[..., i : i + ho, :], alpha=k[i])
    return out


def channel_matrix(channels: int, k: Tensor) -> Tensor:
    """C x C matrix of an odd 1-D kernel applied along channels with replicate padding."""
    r = (k.numel() - 1) // 2
    m = torch.zeros(channels, channels, dtype=torch.float64, device=k.device)
    for c in range(channels):
        for i in range(k.numel()):
            j = min(max(c + i - r, 0), channels - 1)
            m[c, j] += k[i]
    return m


def _window(variant: str, device) -> Tensor:
    if variant in ("gaussian", "matlab3d"):
        return gaussian_kernel1d(11, 1.5, device=device)
    if variant == "skimage_uniform":
        return torch.full((7,), 1.0 / 7.0, dtype=torch.float64, device=device)
    raise ValueError(f"unknown SSIM variant {variant!r}; choose from {', '.join(VARIANTS)}")


def _ssim_map_valid(x: Tensor, y: Tensor, k: Tensor, chan: Tensor | None, c1: float, c2: float, cov_norm: float) -> Tensor:
    """SSIM map of the valid region of ``(B, C, H, W)`` float64 inputs (window ``k`` separable).

    ``chan`` optionally mixes the filtered channels (MATLAB's 3-D window). Only the sum of the
    two variances enters SSIM, so x^2 and y^2 are filtered together (4 filtered maps, not 5).
    """
    b, c = x.shape[:2]
    f = _filter_valid(torch.cat((x, y, x * x + y * y, x * y), dim=1), k.tolist())  # (B, 4C, H', W')
    if chan is not None:
        hw = f.shape[-2:]
        f = torch.einsum("cj,bqjhw->bqchw", chan, f.view(b, 4, c, *hw)).reshape(b, 4 * c, *hw)
    mx, my, fss, fxy = f.split(c, dim=1)
    mxy = mx * my
    mss = mx.square_().add_(my.square_())  # mx^2 + my^2 (mx, my are not needed afterwards)
    num = (2.0 * mxy + c1) * ((fxy - mxy) * (2.0 * cov_norm) + c2)
    den = (mss + c1) * ((fss - mss) * cov_norm + c2)
    return num.div_(den)


def ssim_map(
    pred: Tensor,
    target: Tensor,
    *,
    data_range: float = 1.0,
    variant: SSIMVariant = "gaussian",
    band_rows: int = 64,
) -> Tensor:
    """SSIM map ``(B, C, H', W')`` (valid size for 'gaussian'/'skimage_uniform', full for 'matlab3d').

    ``map = (2 mx my + C1)(2 cov + C2) / ((mx^2 + my^2 + C1)(vx + vy + C2))`` with population
    moments (sample moments, x N/(N-1), for 'skimage_uniform'). On CPU the map is computed in
    bands of ``band_rows`` rows so the working set stays in cache (several times faster, same
    values); MATLAB's replicate padding commutes with the pixel products, so it is applied to
    the inputs and every variant becomes a 'valid' filter.
    """
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch: pred {tuple(pred.shape)} vs target {tuple(target.shape)}")
    if pred.ndim != 4:
        raise ValueError(f"expected (B, C, H, W), got {tuple(pred.shape)}")
    x = pred.to(torch.float64)
    y = target.to(torch.float64)
    k = _window(variant, x.device)
    n = k.numel()
    chan = None
    if variant == "matlab3d":
        pad = (n // 2,) * 4
        x = torch.nn.functional.pad(x, pad, mode="replicate")
        y = torch.nn.functional.pad(y, pad, mode="replicate")
        if x.shape[1] > 1:
            chan = channel_matrix(x.shape[1], k)
    h, w = x.shape[-2:]
    if h < n or w < n:
        raise ValueError(f"image {h}x{w} is smaller than the {n}x{n} SSIM window")
    args = (k, chan, (K1 * data_range) ** 2, (K2 * data_range) ** 2, 49.0 / 48.0 if variant == "skimage_uniform" else 1.0)
    ho = h - n + 1
    if x.device.type != "cpu" or ho <= band_rows:
        return _ssim_map_valid(x, y, *args)
    bands = []
    for r in range(0, ho, band_rows):
        rows = slice(r, min(ho, r + band_rows) + n - 1)
        bands.append(_ssim_map_valid(x[..., rows, :], y[..., rows, :], *args))
    return torch.cat(bands, dim=-2)


def ssim(
    pred: Tensor,
    target: Tensor,
    *,
    data_range: float = 1.0,
    variant: SSIMVariant = "gaussian",
    crop_border: int = 0,
) -> Tensor:
    """Per-image SSIM of ``(B, C, H, W)`` batches -> ``(B,)`` float64.

    ``crop_border`` pixels are removed on every side first; then the SSIM map of ``variant`` (see
    the module docstring) is averaged over channels and positions (for the valid-window variants
    all channel maps have equal size, so this is the mean of per-channel SSIMs).
    """
    if not math.isfinite(data_range) or data_range <= 0:
        raise ValueError(f"data_range must be a positive number, got {data_range}")
    smap = ssim_map(crop(pred, crop_border), crop(target, crop_border), data_range=data_range, variant=variant)
    return smap.flatten(1).mean(dim=1)
