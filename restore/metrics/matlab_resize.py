"""MATLAB ``imresize`` (bicubic) emulation, batched torch (needed by shadow protocol A, §4.4).

What MATLAB does, and this module reproduces:

* Keys cubic kernel with a = -0.5; when shrinking (scale < 1) the kernel is stretched by 1/scale
  (antialiasing) and scaled by ``scale``.
* Separate scale per axis, ``scale = out / in`` when an output size is given, so a 480x640 image
  goes to 256x256 with two different factors (BasicSR's port supports one isotropic scale only).
* Output pixel ``u`` (1-based) maps to ``x = u/scale + 0.5 (1 - 1/scale)``; taps
  ``floor(x - width/2) + (0 .. ceil(width) + 1)``, weights normalised to sum 1, out-of-range taps
  mirrored symmetrically (``[1..n, n..1]``, edge repeated).
* Axes are processed in order of increasing scale (the strongest shrink first; rows first on a
  tie), and for uint8 input every pass returns uint8 (rounded half away from zero, saturated),
  so a uint8 mask is rounded between the two passes.

Per axis the weights are a dense ``(out, in)`` matrix, so each pass is one float64 matmul.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from restore.metrics.color import round_half_away


def cubic(x: Tensor) -> Tensor:
    """Keys cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = x.abs()
    ax2 = ax * ax
    ax3 = ax2 * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def box(x: Tensor) -> Tensor:
    """MATLAB's ``box`` kernel (nearest neighbour): 1 on [-0.5, 0.5)."""
    return ((x >= -0.5) & (x < 0.5)).to(x.dtype)


def resize_matrix(
    in_len: int,
    out_len: int,
    *,
    scale: float | None = None,
    antialias: bool = True,
    method: str = "bicubic",
) -> Tensor:
    """Dense ``(out_len, in_len)`` float64 matrix of MATLAB's weights along one axis.

    ``scale`` defaults to ``out_len / in_len`` (MATLAB when an output size is given).
    ``method``: 'bicubic' (antialiased when shrinking unless ``antialias=False``) or 'nearest'
    (MATLAB's box kernel, never antialiased). Rows sum to 1; symmetric edge handling is folded
    into the matrix.
    """
    if in_len < 1 or out_len < 1:
        raise ValueError(f"sizes must be positive, got {in_len} -> {out_len}")
    s = out_len / in_len if scale is None else float(scale)
    if method == "nearest":
        kernel, width, antialias = box, 1.0, False
    elif method == "bicubic":
        kernel, width = cubic, 4.0
    else:
        raise ValueError(f"unknown resize method {method!r}; use 'bicubic' or 'nearest'")
    if s < 1 and antialias:
        width = width / s

        def kernel(t: Tensor, _k=kernel) -> Tensor:
            return s * _k(s * t)
    u = torch.arange(1, out_len + 1, dtype=torch.float64)
    x = u / s + 0.5 * (1.0 - 1.0 / s)
    left = torch.floor(x - width / 2.0)
    taps = math.ceil(width) + 2
    idx = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]  # 1-based
    w = kernel(x[:, None] - idx)
    w = w / w.sum(dim=1, keepdim=True)
    # symmetric mirroring: aux = [1..n, n..1], index = aux[(idx - 1) mod 2n]
    period = 2 * in_len
    m = torch.remainder(idx.long() - 1, period)
    m = torch.where(m < in_len, m, period - 1 - m)
    mat = torch.zeros(out_len, in_len, dtype=torch.float64)
    mat.scatter_add_(1, m, w)
    return mat


def imresize(
    x: Tensor,
    size: tuple[int, int] | None = None,
    *,
    scale: float | None = None,
    antialias: bool = True,
    method: str = "bicubic",
) -> Tensor:
    """MATLAB ``imresize(x, [h w])`` (or ``imresize(x, scale)``) on ``(B, C, H, W)``.

    ``method`` is 'bicubic' (MATLAB's default) or 'nearest'.
    Float input is computed and returned in float64 without clipping (bicubic may overshoot
    [0, 1], as in MATLAB on doubles). uint8 input follows MATLAB's uint8 path: each axis pass is
    rounded half away from zero and saturated to [0, 255]; the result is uint8.
    """
    if x.ndim != 4:
        raise ValueError(f"expected (B, C, H, W), got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if size is None:
        if scale is None:
            raise ValueError("give either size or scale")
        out = (math.ceil(scale * h), math.ceil(scale * w))
        scales = [float(scale), float(scale)]
    else:
        out = (int(size[0]), int(size[1]))
        scales = [out[0] / h, out[1] / w]
    is_uint8 = x.dtype == torch.uint8
    y = x.to(torch.float64)
    order = sorted(range(2), key=lambda d: scales[d])  # stable: rows first on a tie
    for d in order:
        in_len = y.shape[-2 + d]
        if in_len == out[d]:
            continue  # scale 1: MATLAB's weights are the identity
        mat = resize_matrix(in_len, out[d], scale=scales[d] if size is None else None, antialias=antialias, method=method)
        mat = mat.to(y.device)
        y = mat @ y if d == 0 else y @ mat.T
        if is_uint8:
            y = round_half_away(y).clamp_(0, 255)
    return y.to(torch.uint8) if is_uint8 else y
