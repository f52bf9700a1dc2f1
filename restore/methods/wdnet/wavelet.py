"""Haar wavelet packet transform of WDNet, generated from its definition (no pickled filters).

WDNet (Liu et al., ECCV 2020) loads its filters from ``wavelet_weights_c2.pkl`` of another
project; that file holds exactly the *full* 2-level Haar wavelet packet (specs/wdnet.md §2): the
stride-2 Haar split applied to the image, then again to each of its four outputs, giving 16
orthonormal 4x4 filters (entries +-1/4). Filter ``s = 4 f + c`` is ``kron(g_c, g_f)``: ``f`` the
band of the first (fine) split, ``c`` the band of the second (coarse) one, with the level-1
filters ``g0`` (LL), ``g1`` (difference along W), ``g2`` (along H), ``g3`` (diagonal).

Channel layout is *band-major*: band ``s`` of colour ``k`` is channel ``C s + k``, so channels
``0..C-1`` are the LL-LL (4 x block mean) of every colour and the rest are the detail bands, one
colour group after another. The inverse is the transposed convolution with the same filters,
exact because the basis is orthonormal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Level-1 2x2 Haar filters g0..g3 (LL, difference along W, along H, diagonal), entries +-1/2.
HAAR_2X2 = (
    ((1.0, 1.0), (1.0, 1.0)),
    ((1.0, -1.0), (1.0, -1.0)),
    ((1.0, 1.0), (-1.0, -1.0)),
    ((1.0, -1.0), (-1.0, 1.0)),
)


def haar_packet_filters(levels: int = 2, dtype: torch.dtype = torch.float32) -> Tensor:
    """The ``4**levels`` packet filters, shape ``(4**L, 2**L, 2**L)``, in WDNet's band order.

    Recursively ``F_L[4 f + c] = kron(g_c, F_{L-1}[f])``: the children of band ``f`` are bands
    ``4f .. 4f+3``. For ``levels=2`` this equals the official ``rec4`` filters exactly (spec §2);
    other depths follow the same rule but have no official counterpart.
    """
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    g = torch.tensor(HAAR_2X2, dtype=torch.float64) / 2
    filters = g
    for _ in range(levels - 1):
        filters = torch.stack([torch.kron(g[c], f) for f in filters for c in range(4)])
    return filters.to(dtype)


class HaarPacket(nn.Module):
    """Forward (:meth:`forward`) and inverse (:meth:`inverse`) L-level Haar packet transform.

    ``forward``: ``(B, C, H, W)`` -> ``(B, 4**L * C, H / 2**L, W / 2**L)``, band-major; H and W
    must be multiples of ``2**L`` (WDNet: 4). ``inverse`` undoes it. The filters are a
    non-persistent buffer: they follow ``.to(device)`` but never appear in a state_dict.
    """

    def __init__(self, levels: int = 2, channels: int = 3) -> None:
        super().__init__()
        self.levels, self.channels = levels, channels
        self.bands = 4**levels
        self.stride = 2**levels
        weight = haar_packet_filters(levels)[:, None].repeat(channels, 1, 1, 1)  # (C*bands, 1, k, k)
        self.register_buffer("weight", weight, persistent=False)

    def _check(self, x: Tensor, what: str) -> None:
        if x.ndim != 4:
            raise ValueError(f"{what} expects (B, C, H, W), got shape {tuple(x.shape)}")

    def forward(self, x: Tensor) -> Tensor:
        self._check(x, "HaarPacket.forward")
        b, c, h, w = x.shape
        if c != self.channels:
            raise ValueError(f"HaarPacket built for {self.channels} channels, got {c}")
        if h % self.stride or w % self.stride:
            raise ValueError(f"HaarPacket needs H and W multiples of {self.stride}, got {h}x{w}")
        y = F.conv2d(x, self.weight.to(x.dtype), stride=self.stride, groups=c)  # colour-major
        hh, ww = y.shape[-2:]
        return y.view(b, c, self.bands, hh, ww).transpose(1, 2).reshape(b, self.bands * c, hh, ww)

    def inverse(self, y: Tensor) -> Tensor:
        self._check(y, "HaarPacket.inverse")
        b, n, hh, ww = y.shape
        c = self.channels
        if n != self.bands * c:
            raise ValueError(f"HaarPacket.inverse expects {self.bands * c} channels, got {n}")
        y = y.view(b, self.bands, c, hh, ww).transpose(1, 2).reshape(b, n, hh, ww)
        return F.conv_transpose2d(y, self.weight.to(y.dtype), stride=self.stride, groups=c)
