"""Locally-enhanced window attention blocks, shared by Uformer and TAPE-R.

Features travel as ``(B, H, W, C)`` maps. A LeWin block is LayerNorm -> multi-head attention
inside non-overlapping ``m x m`` windows (optionally shifted by ``m/2``, with a relative position
bias and an optional learned per-window-position "modulator") -> LayerNorm -> LeFF (linear,
depthwise 3x3 conv on the whole map, linear). :class:`Stage` stacks them. Parameter names and
buffers follow the official Uformer release, so its checkpoints (and TAPE-R's, built from the
same blocks) load strictly; see ``docs/uformer.md``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from timm.layers import DropPath, trunc_normal_
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from restore.archs import fused_cpu


def window_partition(x: Tensor, m: int) -> Tensor:
    """(B, H, W, C) -> (B * nW, m*m, C): m x m windows, batch-major then row-major."""
    return rearrange(x, "b (nh m1) (nw m2) c -> (b nh nw) (m1 m2) c", m1=m, m2=m)


def window_merge(windows: Tensor, m: int, h: int, w: int) -> Tensor:
    """Inverse of :func:`window_partition`: (B * nW, m*m, C) -> (B, H, W, C)."""
    return rearrange(windows, "(b nh nw) (m1 m2) c -> b (nh m1) (nw m2) c", nh=h // m, nw=w // m, m1=m)


def relative_position_index(m: int) -> Tensor:
    """(m*m, m*m) int64: row of the bias table for token pair (i, j) of an m x m window."""
    rows, cols = torch.meshgrid(torch.arange(m), torch.arange(m), indexing="ij")
    r, c = rows.flatten(), cols.flatten()
    return (r[:, None] - r[None, :] + m - 1) * (2 * m - 1) + (c[:, None] - c[None, :] + m - 1)


#: In CPU inference, the largest masked attention bias (windows x heads x N x N) or LeFF hidden band
#: (B x rows x W x hidden) built at once: big maps run in pieces of about this size, with the
#: same result. It bounds the memory of a large image (a 2048 x 2048 map's LeFF hidden layer is
#: 2 GiB in one piece) and keeps each piece below glibc's 32 MiB mmap threshold.
PIECE_BYTES = 8 * 2**20


def shift_regions(h: int, w: int, m: int, shift: int, device: torch.device | None = None) -> Tensor:
    """(nW, N) int64: which of the 9 image regions each token of each shifted window came from.
    Tokens of different regions, which the cyclic roll brought together, get -100 added to their
    logits (the official additive mask's value)."""
    def bands(n: int) -> Tensor:
        band = torch.zeros(n, dtype=torch.long, device=device)
        band[n - m : n - shift] = 1
        band[n - shift :] = 2
        return band

    labels = (3 * bands(h)[:, None] + bands(w)[None, :]).view(1, h, w, 1)
    return window_partition(labels, m).squeeze(-1)


def _may_split(x: Tensor) -> bool:
    """Whether a computation on ``x`` may run in pieces: eager CPU inference only. A traced or
    compiled graph must not bake one input size's piece loop into a graph meant for every size,
    and on a GPU the pieces' extra kernel launches were never measured against their gain."""
    return x.device.type == "cpu" and not (torch.is_grad_enabled() or fused_cpu.tracing_or_compiling())


def _masked_bias(bias: Tensor, regions: Tensor) -> Tensor:
    """(1, heads, N, N) bias and (n, N) regions -> (n, heads, N, N): -100 between regions."""
    differs = (regions[:, :, None] != regions[:, None, :]).unsqueeze(1)
    return torch.where(differs, bias - 100.0, bias)


class LinearProjection(nn.Module):
    """q from ``to_q``, k and v from ``to_kv`` (first half k, second half v); (Bw, heads, N, d) each."""

    def __init__(self, dim: int, heads: int, bias: bool = True) -> None:
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=bias)
        self.to_kv = nn.Linear(dim, 2 * dim, bias=bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        bw, n, c = x.shape
        q = fused_cpu.linear(x, self.to_q).view(bw, n, self.heads, c // self.heads).transpose(1, 2)
        k, v = fused_cpu.linear(x, self.to_kv).view(bw, n, 2, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        return q, k, v


class SepConv2d(nn.Module):
    """Depthwise 3x3 -> ReLU -> pointwise 1x1 (the 'conv' token projection)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin)
        self.pointwise = nn.Conv2d(cin, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(F.relu(self.depthwise(x)))


class ConvProjection(nn.Module):
    """q, k, v from separable convs over each window seen as an m x m image (zero-padded)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_q, self.to_k, self.to_v = SepConv2d(dim, dim), SepConv2d(dim, dim), SepConv2d(dim, dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        bw, n, c = x.shape
        m = math.isqrt(n)
        img = x.transpose(1, 2).reshape(bw, c, m, m)

        def heads(t: Tensor) -> Tensor:
            return t.reshape(bw, self.heads, c // self.heads, n).transpose(2, 3)

        return heads(self.to_q(img)), heads(self.to_k(img)), heads(self.to_v(img))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a learned relative position bias.

    (B * nW, N, C) -> same; ``regions`` (nW, N) from :func:`shift_regions`: window i of every
    image gets -100 on the logits between its tokens of different regions.
    """

    def __init__(self, dim: int, win_size: int, heads: int, token_projection: str = "linear", qkv_bias: bool = True,
                 qk_scale: float | None = None, attn_drop: float = 0.0, proj_drop: float = 0.0) -> None:
        super().__init__()
        self.heads, self.win_size, self.attn_drop = heads, win_size, attn_drop
        self.scale = qk_scale or (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * win_size - 1) ** 2, heads))
        self.register_buffer("relative_position_index", relative_position_index(win_size))
        trunc_normal_(self.relative_position_bias_table, std=0.02)
        linear = token_projection == "linear"
        self.qkv = LinearProjection(dim, heads, qkv_bias) if linear else ConvProjection(dim, heads)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor, regions: Tensor | None = None) -> Tensor:
        bw, n, c = x.shape
        q, k, v = self.qkv(x)
        q = q * self.scale  # the official code scales q before the product; SDPA then runs with scale 1
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        # SDPA's fused CPU kernel wants a 4-D mask: (1, heads, N, N) broadcasts over all windows.
        # Contiguous, so that the masked bias is a contiguous (nW, heads, N, N) tensor rather than
        # one in the permuted strides, which SDPA would copy again.
        bias = bias.view(n, n, self.heads).permute(2, 0, 1).contiguous().unsqueeze(0)
        if regions is None:
            out = self._attend(q, k, v, bias)
        elif bw * self.heads * n * n * q.element_size() <= PIECE_BYTES or not _may_split(q):
            bias = _masked_bias(bias, regions)
            out = self._attend(q, k, v, bias.repeat(bw // regions.shape[0], 1, 1, 1) if bw > len(bias) else bias)
        else:
            out = self._attend_in_pieces(q, k, v, bias, regions)
        return self.proj_drop(fused_cpu.linear(out, self.proj))

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, bias: Tensor) -> Tensor:
        """(Bw, heads, N, d) each and a bias broadcasting to (Bw, heads, N, N) -> (Bw, N, heads * d)."""
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), scale=1.0,
                                             dropout_p=self.attn_drop if self.training else 0.0)
        bw, heads, n, d = out.shape
        return out.transpose(1, 2).reshape(bw, n, heads * d)

    def _attend_in_pieces(self, q: Tensor, k: Tensor, v: Tensor, bias: Tensor, regions: Tensor) -> Tensor:
        """:meth:`_attend` with shift regions, for groups of windows whose masked bias fits
        :data:`PIECE_BYTES` (inference only)."""
        bw, heads, n, d = q.shape
        step = max(1, PIECE_BYTES // (heads * n * n * q.element_size()))
        out = q.new_empty(bw, n, heads, d)
        for start in range(0, bw, step):
            stop = min(start + step, bw)
            windows = torch.arange(start, stop, device=regions.device) % regions.shape[0]  # window of its image
            piece = F.scaled_dot_product_attention(q[start:stop], k[start:stop], v[start:stop], scale=1.0,
                                                   attn_mask=_masked_bias(bias, regions[windows]).to(q.dtype))
            out[start:stop] = piece.transpose(1, 2)
        return out.view(bw, n, heads * d)


class LeFF(nn.Module):
    """Locally-enhanced feed-forward on (B, H, W, C): linear, GELU, depthwise 3x3 over the whole map, GELU, linear."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.linear1 = nn.Sequential(nn.Linear(dim, hidden), nn.GELU())
        self.dwconv = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden), nn.GELU())
        self.linear2 = nn.Sequential(nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, _ = x.shape
        hidden = self.linear1[0].out_features
        rows = max(1, PIECE_BYTES // (b * w * hidden * x.element_size()))
        if rows >= h or not _may_split(x):
            return self._band(x, 0, h)
        out = x.new_empty(b, h, w, self.linear2[0].out_features)
        for top in range(0, h, rows):
            out[:, top : top + rows] = self._band(x, top, min(top + rows, h))
        return out

    def _band(self, x: Tensor, top: int, bottom: int) -> Tensor:
        """Output rows [top, bottom) of (B, H, W, C) ``x``: the depthwise conv reads one row beyond
        each side of the band (zeros only at the image's own border), so bands join seamlessly."""
        lo, hi = max(top - 1, 0), min(bottom + 1, x.shape[1])
        # The Sequentials keep the official keys; their layers run through fused_cpu, which fuses
        # bias and GELU into the products in CPU inference and is the plain Sequential otherwise.
        t = fused_cpu.linear(x[:, lo:hi], *self.linear1).permute(0, 3, 1, 2)
        t = fused_cpu.conv2d(t, *self.dwconv)[:, :, top - lo : bottom - lo].permute(0, 2, 3, 1)
        return fused_cpu.linear(t, self.linear2[0])


class Mlp(nn.Module):
    """Plain two-layer feed-forward (``token_mlp`` 'ffn' / 'mlp')."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))
        return fused_cpu.linear(fused_cpu.linear(x, self.fc1, self.act), self.fc2)


class LeWinBlock(nn.Module):
    """One LeWin transformer block on (B, H, W, C).

    ``resolution`` is the block's nominal input size (``img_size / 2**level``); at or below
    ``win_size`` the official model drops the shift and shrinks the window to it.
    """

    def __init__(self, dim: int, resolution: int, heads: int, win_size: int, shift: bool, mlp_ratio: float,
                 qkv_bias: bool, qk_scale: float | None, drop: float, attn_drop: float, drop_path: float,
                 token_projection: str, token_mlp: str, modulator: bool) -> None:
        super().__init__()
        if resolution <= win_size:
            shift, win_size = False, resolution
        self.win_size, self.shift_size = win_size, win_size // 2 if shift else 0
        self.modulator = nn.Embedding(win_size * win_size, dim) if modulator else None
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, win_size, heads, token_projection, qkv_bias, qk_scale, attn_drop, drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = LeFF(dim, hidden) if token_mlp == "leff" else Mlp(dim, hidden, drop)

    def forward(self, x: Tensor) -> Tensor:
        _, h, w, c = x.shape
        m, s = self.win_size, self.shift_size
        t = self.norm1(x)
        if s:
            t = torch.roll(t, (-s, -s), dims=(1, 2))
        windows = window_partition(t, m)
        if self.modulator is not None:
            windows = windows + self.modulator.weight
        regions = shift_regions(h, w, m, s, x.device) if s else None
        t = window_merge(self.attn(windows, regions), m, h, w)
        if s:
            t = torch.roll(t, (s, s), dims=(1, 2))
        if self.training or torch.is_grad_enabled():
            x = x + self.drop_path(t)
            return x + self.drop_path(self.mlp(self.norm2(x)))
        # inference: the residual sums go into the fresh branch outputs (x + t == t + x exactly),
        # which saves two allocations of the block's size per block
        x = t.add_(x)
        return self.mlp(self.norm2(x)).add_(x)


class Stage(nn.Module):
    """A stack of LeWin blocks (``BasicUformerLayer``); odd-indexed blocks shift when allowed."""

    def __init__(self, depth: int, drop_path: list[float], shift_flag: bool, use_checkpoint: bool,
                 **block: Any) -> None:
        super().__init__()
        self.use_checkpoint = use_checkpoint
        self.blocks = nn.ModuleList(
            LeWinBlock(shift=shift_flag and i % 2 == 1, drop_path=drop_path[i], **block) for i in range(depth)
        )

    def forward(self, x: Tensor) -> Tensor:
        for blk in self.blocks:
            x = checkpoint(blk, x, use_reentrant=False) if self.use_checkpoint and self.training else blk(x)
        return x


def init_transformer_weights(m: nn.Module) -> None:
    """The official init: truncated-normal (std 0.02) linears with zero bias, unit LayerNorms."""
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
