"""Colour conversions used by the metric protocols (batched torch, float64).

* :func:`rgb_to_y` -- BT.601 luma exactly as MATLAB ``rgb2ycbcr`` (Y in [16, 235]/255),
  optionally rounded to the uint8 grid the way MATLAB does for uint8 input (deraining scripts).
* :func:`rgb_to_y_edsr` -- EDSR/IPT luma weights ``[65.738, 129.057, 25.064]/256`` (no offset;
  only ever used on differences, where it equals BT.601 to ~1e-5 relative).
* :func:`srgb_to_lab` -- sRGB -> CIELAB the way MATLAB ``makecform('srgb2lab')`` does it:
  D65 sRGB decoded to XYZ, Bradford-adapted to the ICC D50 white, Lab relative to that white
  (metrics.md §4.4 "Python recipe"). Not OpenCV's, not skimage's D65 ``rgb2lab``.

All functions take ``(B, 3, H, W)`` RGB tensors (any float dtype; computed in float64) and never
change global state.
"""

from __future__ import annotations

import torch
from torch import Tensor

from restore.utils.matlab_resize import round_half_away

# MATLAB rgb2ycbcr (ITU-R BT.601, studio swing): Y = 16 + (65.481 R + 128.553 G + 24.966 B) with
# R, G, B in [0, 1] and Y in [0, 255].
BT601_Y = (65.481, 128.553, 24.966)
BT601_OFFSET = 16.0
EDSR_Y = (65.738, 129.057, 25.064)

# sRGB (D65) linear RGB -> XYZ (Lindbloom's matrix; reproduces metrics.md's check value).
SRGB_TO_XYZ = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)
D65_WHITE = (0.95047, 1.0, 1.08883)
# ICC D50 as used by MATLAB's srgb2lab cform (metrics.md §4.4).
D50_WHITE = (0.9642, 1.0, 0.8249)
BRADFORD = (
    (0.8951, 0.2664, -0.1614),
    (-0.7502, 1.7135, 0.0367),
    (0.0389, -0.0685, 1.0296),
)


def _check_rgb(x: Tensor) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected an RGB batch of shape (B, 3, H, W), got {tuple(x.shape)}")


def rgb_to_y(x: Tensor, *, data_range: float = 1.0, round_uint8: bool = False) -> Tensor:
    """BT.601 luma of an RGB batch, MATLAB ``rgb2ycbcr`` constants.

    ``x``: ``(B, 3, H, W)`` RGB in ``[0, data_range]``. Returns ``(B, 1, H, W)`` float64 luma on the
    same scale, i.e. ``Y/255 * data_range`` with ``Y`` in [16, 235] (the offset is kept: it cancels
    in PSNR but not in SSIM's luminance term). ``round_uint8=True`` rounds ``Y`` to integers half
    away from zero, as MATLAB returns uint8 luma for uint8 input.
    """
    _check_rgb(x)
    x = x.to(torch.float64) / data_range  # [0, 1]
    w = torch.tensor(BT601_Y, dtype=torch.float64, device=x.device).view(1, 3, 1, 1)
    y = BT601_OFFSET + (x * w).sum(dim=1, keepdim=True)  # [16, 235]
    if round_uint8:
        y = round_half_away(y).clamp_(0, 255)
    return y * (data_range / 255.0)


def rgb_to_y_edsr(x: Tensor) -> Tensor:
    """EDSR/IPT luma ``(65.738 R + 129.057 G + 25.064 B) / 256`` without offset, float64.

    Meant for differences of RGB images (IPT's ``calc_psnr``); the scale of ``x`` is preserved.
    ``(B, 3, H, W) -> (B, 1, H, W)``.
    """
    _check_rgb(x)
    w = torch.tensor(EDSR_Y, dtype=torch.float64, device=x.device).view(1, 3, 1, 1) / 256.0
    return (x.to(torch.float64) * w).sum(dim=1, keepdim=True)


def rgb_to_gray_matlab(x: Tensor, *, round_uint8: bool = False) -> Tensor:
    """MATLAB ``rgb2gray``: ``0.2989 R + 0.5870 G + 0.1140 B``; ``(B,3,H,W) -> (B,1,H,W)``.

    ``round_uint8`` mimics uint8 input (result rounded half away from zero).
    """
    _check_rgb(x)
    w = torch.tensor((0.298936021293775, 0.587043074451121, 0.114020904255103),
                     dtype=torch.float64, device=x.device).view(1, 3, 1, 1)
    g = (x.to(torch.float64) * w).sum(dim=1, keepdim=True)
    return round_half_away(g) if round_uint8 else g


def srgb_to_linear(x: Tensor) -> Tensor:
    """sRGB decoding (IEC 61966-2-1) on [0, 1] values; values outside are extended, not clipped."""
    x = x.to(torch.float64)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055).clamp(min=0) ** 2.4)


def _lab_f(t: Tensor) -> Tensor:
    eps = (6.0 / 29.0) ** 3
    return torch.where(t > eps, t.clamp(min=eps) ** (1.0 / 3.0), t / (3 * (6.0 / 29.0) ** 2) + 4.0 / 29.0)


def bradford_matrix(src: tuple[float, float, float], dst: tuple[float, float, float]) -> Tensor:
    """3x3 float64 Bradford chromatic adaptation matrix mapping XYZ under ``src`` to ``dst``."""
    b = torch.tensor(BRADFORD, dtype=torch.float64)
    s = b @ torch.tensor(src, dtype=torch.float64)
    d = b @ torch.tensor(dst, dtype=torch.float64)
    return torch.linalg.inv(b) @ torch.diag(d / s) @ b


def srgb_to_lab(x: Tensor, *, white: tuple[float, float, float] = D50_WHITE) -> Tensor:
    """sRGB in [0, 1] -> CIELAB (L in [0, 100]) as MATLAB ``makecform('srgb2lab')``.

    Linearise, XYZ with the D65 sRGB matrix, Bradford-adapt D65 -> ``white`` and compute Lab
    relative to ``white`` (default ICC D50 ``(0.9642, 1, 0.8249)``). ``(B,3,H,W) -> (B,3,H,W)``
    float64 with channels (L, a, b). Inputs are not clipped (bicubic overshoot passes through).
    """
    _check_rgb(x)
    lin = srgb_to_linear(x)
    m = bradford_matrix(D65_WHITE, white) @ torch.tensor(SRGB_TO_XYZ, dtype=torch.float64)
    m = m / torch.tensor(white, dtype=torch.float64).view(3, 1)  # XYZ / white in one step
    t = torch.einsum("ij,bjhw->bihw", m.to(lin.device), lin)
    f = _lab_f(t)
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=1)
