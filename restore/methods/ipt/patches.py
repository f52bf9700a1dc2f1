"""IPT's official patch-wise inference (``forward_chop`` of the official wrapper; ``shared/specs/ipt.md`` §4).

The IPT body only takes P x P inputs (P = ``patch_size`` = 48), so every image is cut into tiles
with stride T = P/4 = 12 and put back together by fixed rules (s = output scale, m = T*s). With
hc = (h - P) mod T, H' = h - hc (likewise wc, W'):

* **core**: tiles at every (T*i, T*j) inside [0, H') x [0, W'). Along each axis a pixel takes the
  mean of the central 2m (of P*s) of the tiles covering it, except the first and last m, which
  come from the first / last tile alone; the 2-D mean is the product of the two axes' rules.
  One official quirk: rows [0, m) x columns [m, P*s) come from the top-left tile alone.
* **bottom strip** (input rows h-P..h, the core's columns) and **right strip** (input columns
  w-P..w, the core's rows): the same rule along their long axis, all P*s lines across;
  plus the **bottom-right corner** tile.
* **stitch**: with a = (P - hc)*s/2, the core's rows [0, H's - floor(a)) then the bottom strip's
  rows [floor(a + 1/2), P*s); the same with the right strip over the corner tile; then columns
  likewise with b = (P - wc)*s/2. The result is (h*s) x (w*s).

The official code sums overlaps with ``F.fold`` and divides by a fold of ones; here each tile's
output is accumulated with separable weights 1/count, so the result agrees with it to float
rounding (not bit for bit). Tiles shared by several regions (the core's last row is the bottom
strip when hc = 0, ...) run once. Tiles run ``batch`` at a time, outputs go straight into the
canvases, so memory is one batch of tiles plus the output.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def tile_origins(length: int, patch: int, step: int) -> list[int]:
    """Tile starts 0, step, 2*step, ... up to ``length - patch`` (the last one within reach)."""
    return list(range(0, length - patch + 1, step))


def axis_weights(count: int, patch: int, step: int, scale: int) -> Tensor:
    """Weights ``(count, scale*patch)`` of ``count`` tiles ``step`` apart along one axis (output pixels).

    Each tile's central ``scale*(patch - 2*step)`` pixels weigh 1/(number of centres covering the
    pixel); the first tile also owns its first ``scale*step`` pixels, the last its last ones.
    Summed at their places the weights are 1 everywhere.
    """
    p, m = scale * patch, scale * step
    length = m * (count - 1) + p
    covered = torch.zeros(length, dtype=torch.float64)
    for k in range(count):
        covered[k * m + m : k * m + p - m] += 1
    weights = torch.zeros(count, p, dtype=torch.float64)
    for k in range(count):
        weights[k, m : p - m] = 1.0 / covered[k * m + m : k * m + p - m]
    weights[0, :m] = 1.0
    weights[-1, p - m :] = 1.0
    return weights.float()


def _pad_to(x: Tensor, patch: int) -> Tensor:
    """Pad the bottom/right of an image smaller than a tile up to ``patch`` (reflect, else replicate)."""
    ph, pw = max(patch - x.shape[-2], 0), max(patch - x.shape[-1], 0)
    if ph < x.shape[-2] and pw < x.shape[-1]:
        return F.pad(x, (0, pw, 0, ph), mode="reflect")
    return F.pad(x, (0, pw, 0, ph), mode="replicate")


def forward_chop(run: Callable[[Tensor], Tensor], x: Tensor, patch: int, scale: int, batch: int = 64) -> Tensor:
    """Run ``run`` ((N, C, P, P) -> (N, C', sP, sP)) over ``x`` (B, C, H, W) tile by tile -> (B, C', sH, sW).

    ``batch`` tiles (of one image; fewer per image when B > 1) go through ``run`` at a time.
    Images smaller than a tile are padded first and the output cropped (not in the official code).
    """
    b, _, h, w = x.shape
    if h < patch or w < patch:
        return forward_chop(run, _pad_to(x, patch), patch, scale, batch)[..., : scale * h, : scale * w]
    s, step, p = scale, patch // 4, scale * patch
    ys, xs = tile_origins(h, patch, step), tile_origins(w, patch, step)
    core_h, core_w = ys[-1] + patch, xs[-1] + patch  # H', W'
    wy, wx = axis_weights(len(ys), patch, step, s).to(x.device), axis_weights(len(xs), patch, step, s).to(x.device)
    ones = torch.ones(p, device=x.device)
    last_y, last_x = h - patch, w - patch

    # Where each tile's output goes: canvas name, output offset, and its weights along y and x.
    jobs: dict[tuple[int, int], list[tuple[str, int, int, Tensor, Tensor]]] = {}
    for i, y0 in enumerate(ys):
        for j, x0 in enumerate(xs):
            jobs.setdefault((y0, x0), []).append(("core", s * y0, s * x0, wy[i], wx[j]))
    for j, x0 in enumerate(xs):
        jobs.setdefault((last_y, x0), []).append(("bottom", 0, s * x0, ones, wx[j]))
    for i, y0 in enumerate(ys):
        jobs.setdefault((y0, last_x), []).append(("right", s * y0, 0, wy[i], ones))
    jobs.setdefault((last_y, last_x), []).append(("corner", 0, 0, ones, ones))
    sizes = {"core": (s * core_h, s * core_w), "bottom": (p, s * core_w), "right": (s * core_h, p), "corner": (p, p)}

    canvas: dict[str, Tensor] = {}
    first_tile: Tensor | None = None
    origins = list(jobs)
    per_run = max(1, batch // b)
    for start in range(0, len(origins), per_run):
        group = origins[start : start + per_run]
        tiles = torch.cat([x[..., y0 : y0 + patch, x0 : x0 + patch] for y0, x0 in group])
        out = run(tiles).float()
        if not canvas:
            canvas = {k: out.new_zeros(b, out.shape[1], *hw) for k, hw in sizes.items()}
        for n, origin in enumerate(group):
            y = out[n * b : (n + 1) * b]
            if origin == (0, 0):
                first_tile = y
            for name, oy, ox, wgt_y, wgt_x in jobs[origin]:
                canvas[name][..., oy : oy + p, ox : ox + p].addcmul_(y, wgt_y[:, None] * wgt_x[None, :])
    assert first_tile is not None
    m = s * step
    canvas["core"][..., :m, m:p] = first_tile[..., :m, m:p]  # the official left strip wins there

    cut_a, cut_b = (patch - (h - core_h)) * s, (patch - (w - core_w)) * s  # 2a, 2b
    keep_h, keep_w = s * core_h - cut_a // 2, s * core_w - cut_b // 2
    left = torch.cat([canvas["core"][..., :keep_h, :], canvas["bottom"][..., (cut_a + 1) // 2 :, :]], dim=-2)
    right = torch.cat([canvas["right"][..., :keep_h, :], canvas["corner"][..., (cut_a + 1) // 2 :, :]], dim=-2)
    return torch.cat([left[..., :keep_w], right[..., (cut_b + 1) // 2 :]], dim=-1)
