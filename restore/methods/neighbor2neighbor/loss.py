"""Neighbor2Neighbor's random neighbour sub-sampler and its loss (Huang et al., CVPR 2021).

Sub-sampler (``shared/specs/neighbor2neighbor.md`` §4). A ``(N, C, H, W)`` batch (H, W even)
is cut into 2x2 cells whose pixels are numbered 0 = top-left, 1 = top-right, 2 = bottom-left,
3 = bottom-right. Every cell draws one ordered pair from :data:`PAIRS` (the 8 horizontally or
vertically adjacent pairs, both orders, never a diagonal) with one ``randint(0, 8)`` per cell in
``(n, i, j)`` row-major order; ``g1`` takes the first pixel of the pair, ``g2`` the second, so
the two ``(N, C, H/2, W/2)`` sub-images never share a pixel. The same choice holds for every
channel and is reused on the network output within one step.

Loss (§6): with ``out = f(g1(y))``, ``tgt = g2(y)`` and ``f(y)`` computed without gradients,

    L = lambda1 * mean((out - tgt)^2) + lambda2 * gamma * mean((out - tgt - (g1(f(y)) - g2(f(y))))^2).
"""

from __future__ import annotations

import torch
from torch import Tensor

# Ordered (first, second) positions inside a 2x2 cell; index k ~ U{0..7} picks one.
PAIRS = ((0, 1), (0, 2), (1, 3), (2, 3), (1, 0), (2, 0), (3, 1), (3, 2))


def _cells(x: Tensor) -> Tensor:
    """``(N, C, H, W)`` -> ``(N, C, H/2, W/2, 4)``, the last axis being the cell positions 0..3."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)


class NeighborSubsampler:
    """One draw of the per-cell pair choice; call it on any tensors of the drawn size.

    ``choice`` is the ``(N, H/2, W/2)`` int64 index into :data:`PAIRS`. Draws come from
    ``generator`` (default: torch's global RNG of ``device``, saved with every checkpoint).
    """

    def __init__(self, n: int, h: int, w: int, *, device: torch.device | str = "cpu",
                 generator: torch.Generator | None = None) -> None:
        if h % 2 or w % 2:
            raise ValueError(f"the neighbour sub-sampler needs an even height and width, got {h}x{w}")
        self.shape = (n, h, w)
        draws = torch.randint(0, len(PAIRS), (n * (h // 2) * (w // 2),), generator=generator, device=device)
        self.choice = draws.reshape(n, h // 2, w // 2)
        table = torch.tensor(PAIRS, device=draws.device)
        picked = table[self.choice]  # (N, H/2, W/2, 2)
        self._first = picked[..., 0]
        self._second = picked[..., 1]

    @classmethod
    def like(cls, x: Tensor, generator: torch.Generator | None = None) -> NeighborSubsampler:
        n, _, h, w = x.shape
        return cls(n, h, w, device=x.device, generator=generator)

    def _take(self, x: Tensor, position: Tensor) -> Tensor:
        if (x.shape[0], *x.shape[2:]) != self.shape:
            raise ValueError(f"sub-sampler drawn for (N, H, W) = {self.shape}, applied to {tuple(x.shape)}")
        index = position[:, None, :, :, None].expand(-1, x.shape[1], -1, -1, 1)
        return _cells(x).gather(-1, index).squeeze(-1)

    def __call__(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(g1(x), g2(x))``, each ``(N, C, H/2, W/2)``."""
        return self._take(x, self._first), self._take(x, self._second)


def neighbor2neighbor_loss(out: Tensor, target: Tensor, exp_diff: Tensor, gamma: float,
                           lambda1: float = 1.0, lambda2: float = 1.0) -> tuple[Tensor, Tensor, Tensor]:
    """The paper's objective. ``out = f(g1(y))``, ``target = g2(y)``,
    ``exp_diff = g1(f(y)) - g2(f(y))`` (no gradient). Returns ``(total, reconstruction, regulariser)``,
    the last two unweighted."""
    diff = out - target
    rec = torch.mean(diff**2)
    reg = torch.mean((diff - exp_diff) ** 2)
    return lambda1 * rec + lambda2 * gamma * reg, rec, reg
