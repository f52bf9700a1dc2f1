"""TAPE-R: a reconstruction of TAPE (Liu et al., "Task-Agnostic Prior Embedding for Image
Restoration", ECCV 2022), registry names ``tape_r`` (C=16, about 1.07 M parameters) and
``tape_r_base`` (C=32, about 4.2 M).

The paper's full text and code were not available (see specs/tape.md), so the network is a
reconstruction and is called TAPE-R wherever results are printed. Evidence levels:

* [V] verified: two stages (task-agnostic pre-training, task-specific fine-tuning), a
  transformer, 1.07 M parameters (the size reported by IDR, CVPR 2023).
* [I] inferred: one shared head and tail, no task token or task routing; a small Uformer-family
  U-shaped window-attention transformer (same group, published just before).
* [R] reconstructed, each one a constructor option with the spec's default: width, depths,
  heads, window, FFN ratio, drop path, shifted windows, the 1x1 reduction after each skip
  concatenation, the global residual, the Prior Embedding Module (PEM) and its sizes, and the
  projection head of the prior-consistency loss.

Layout (L = ``len(depths_enc)`` levels, d_l = C * 2**l, d_m = C * 2**L)::

    head   Conv3x3(in_nc -> C) + LeakyReLU(0.2)                       (B, C, H, W)
    enc l  LeWin blocks at d_l, keep skip, Conv4x4/2 (d_l -> 2 d_l)
    mid    PEM (optional) then LeWin blocks at d_m                    (B, H/2^L, W/2^L, d_m)
    dec l  ConvT2x2/2 (-> d_l), concat skip (2 d_l), Linear (2 d_l -> d_l), LeWin blocks
    tail   Conv3x3(C -> out_nc), plus the input (global residual)

The LeWin block is Uformer's (:class:`restore.methods.uformer.arch.LeWinBlock`: window attention with
a relative position bias, shifted windows on every second block, LeFF), always with full
windows (no Uformer ``img_size`` rule). Tokens are feature-map pixels (patch size 1). H and W
must be multiples of ``size_multiple = win_size * 2**L`` (64 by default); the engine pads any
other size by reflection and crops back.

PEM [R]: a learned bank P (K x d_m, init N(0, 0.02^2)) that the bottleneck tokens read by
cross-attention, ``Z <- Z + MHA(LN(Z), LN(P), LN(P))`` then ``Z <- Z + FFN(LN(Z))``: the shared
"task-agnostic prior" learned in stage 1 and reused per task in stage 2.

``prior_loss=True`` adds ``prior_proj`` (Linear d_m -> d_m) for the stage-1 prior-consistency
loss (:mod:`restore.methods.tape.step`); stage 2 builds the network without it.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor, nn

from restore.archs.window_attention import Stage, init_transformer_weights
from restore.errors import ConfigError


class PriorEmbedding(nn.Module):
    """PEM [R]: tokens (B, N, d) consult a learned bank of ``tokens`` priors -> (B, N, d)."""

    def __init__(self, dim: int, tokens: int = 64, heads: int = 8, ffn_ratio: float = 2.0,
                 trainable: bool = True) -> None:
        super().__init__()
        self.prior = nn.Parameter(torch.randn(tokens, dim) * 0.02, requires_grad=trainable)
        self.norm_q, self.norm_p, self.norm_ffn = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        hidden = int(dim * ffn_ratio)
        self.ffn = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, z: Tensor) -> Tensor:
        p = self.norm_p(self.prior).unsqueeze(0).expand(z.shape[0], -1, -1)
        z = z + self.attn(self.norm_q(z), p, p, need_weights=False)[0]
        return z + self.ffn(self.norm_ffn(z))


def _nchw(module: nn.Module, x: Tensor) -> Tensor:
    """Apply a conv to a (B, H, W, C) map, returning (B, H', W', C')."""
    return module(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class TAPER(nn.Module):
    """TAPE-R on (B, in_nc, H, W) -> (B, out_nc, H, W); H, W multiples of ``size_multiple``.

    Args (all [R] unless noted; defaults are specs/tape.md's):
        in_nc, out_nc: image channels ([I] RGB).
        embed_dim: C, the width of level 0 (16: about 1.07 M parameters; 32: ``tape_r_base``).
        depths_enc / depths_dec: LeWin blocks per encoder / decoder level (level 0 first); their
            length is the number of levels L.
        depth_mid: LeWin blocks at the bottleneck.
        heads: attention heads per level (decoder levels use the same); heads_mid: at the bottleneck.
        win_size: attention window; mlp_ratio: LeFF expansion; drop_path_rate: stochastic depth
            (rising over the encoder, constant at the bottleneck, falling over the decoder).
        shift_windows: shift every second block's windows by ``win_size // 2``.
        decoder_reduce: a Linear 2 d_l -> d_l after each skip concatenation (false: Uformer's way,
            decoder blocks at 2 d_l, tail from 2C).
        global_residual: output = input + tail(features).
        pem, prior_tokens, pem_heads, pem_ffn_ratio: the Prior Embedding Module and its sizes.
        prior_trainable: false freezes the prior bank (``requires_grad`` off; the key stays).
        prior_loss: build ``prior_proj`` for the stage-1 prior-consistency loss.
        qkv_bias: biases of the attention projections.
    """

    channels_last = True  # NHWC inference: 0.92x the CPU time at 256x256 (interleaved A/B, 1 thread)

    pad_mode = "reflect"
    display_name = "TAPE-R (reconstruction)"  # the label results must carry (specs/tape.md 10)

    def __init__(
        self,
        in_nc: int = 3,
        out_nc: int = 3,
        embed_dim: int = 16,
        depths_enc: list[int] = (2, 2, 2),
        depth_mid: int = 2,
        depths_dec: list[int] = (2, 2, 2),
        heads: list[int] = (1, 2, 4),
        heads_mid: int = 8,
        win_size: int = 8,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.1,
        shift_windows: bool = True,
        decoder_reduce: bool = True,
        global_residual: bool = True,
        pem: bool = True,
        prior_tokens: int = 64,
        pem_heads: int = 8,
        pem_ffn_ratio: float = 2.0,
        prior_trainable: bool = True,
        prior_loss: bool = False,
        qkv_bias: bool = True,
    ) -> None:
        super().__init__()
        depths_enc, depths_dec, heads = list(depths_enc), list(depths_dec), list(heads)
        levels = len(depths_enc)
        c = embed_dim
        mid_dim = c * 2**levels
        self._check(in_nc, out_nc, c, depths_enc, depths_dec, heads, heads_mid, win_size, global_residual, pem,
                    prior_tokens, pem_heads, decoder_reduce, mid_dim)
        self.in_nc, self.out_nc, self.levels = in_nc, out_nc, levels
        self.global_residual = global_residual
        self.size_multiple = win_size * 2**levels

        enc_dpr = torch.linspace(0, drop_path_rate, max(sum(depths_enc), 1)).tolist()
        dec_dpr = torch.linspace(0, drop_path_rate, max(sum(depths_dec), 1)).tolist()[::-1]
        # resolution > win_size: every block keeps full windows and its shift (see the module doc).
        block = dict(resolution=2 * win_size, win_size=win_size, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                     qk_scale=None, drop=0.0, attn_drop=0.0, token_projection="linear", token_mlp="leff",
                     modulator=False)

        def stage(depth: int, dim: int, n_heads: int, dpr: list[float]) -> Stage:
            return Stage(depth, dpr[:depth], shift_windows, False, dim=dim, heads=n_heads, **block)

        self.head = nn.Sequential(nn.Conv2d(in_nc, c, 3, padding=1), nn.LeakyReLU(0.2, inplace=True))
        self.encoders, self.downs = nn.ModuleList(), nn.ModuleList()
        for lvl in range(levels):
            d, start = c * 2**lvl, sum(depths_enc[:lvl])
            self.encoders.append(stage(depths_enc[lvl], d, heads[lvl], enc_dpr[start:]))
            self.downs.append(nn.Conv2d(d, 2 * d, 4, stride=2, padding=1))
        self.pem = PriorEmbedding(mid_dim, prior_tokens, pem_heads, pem_ffn_ratio, prior_trainable) if pem else None
        self.mid = stage(depth_mid, mid_dim, heads_mid, [drop_path_rate] * depth_mid)
        self.ups, self.reduces, self.decoders = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        cin = mid_dim
        for lvl in reversed(range(levels)):
            d, start = c * 2**lvl, sum(depths_dec[lvl + 1:])
            self.ups.append(nn.ConvTranspose2d(cin, d, 2, stride=2))
            self.reduces.append(nn.Linear(2 * d, d) if decoder_reduce else nn.Identity())
            width = d if decoder_reduce else 2 * d
            n_heads = heads[lvl] if decoder_reduce else 2 * heads[lvl]
            self.decoders.append(stage(depths_dec[lvl], width, n_heads, dec_dpr[start:]))
            cin = width
        self.tail = nn.Conv2d(cin, out_nc, 3, padding=1)
        self.prior_proj = nn.Linear(mid_dim, mid_dim) if prior_loss else None
        self.apply(init_transformer_weights)

    @staticmethod
    def _check(in_nc: int, out_nc: int, c: int, depths_enc: list[int], depths_dec: list[int], heads: list[int],
               heads_mid: int, win_size: int, residual: bool, pem: bool, tokens: int, pem_heads: int,
               reduce: bool, mid_dim: int) -> None:
        if not depths_enc or len(depths_dec) != len(depths_enc) or len(heads) != len(depths_enc):
            raise ConfigError(f"TAPE-R depths_enc, depths_dec and heads need one entry per level, got "
                              f"{len(depths_enc)}, {len(depths_dec)} and {len(heads)}")
        if min(in_nc, out_nc, c, win_size, heads_mid, *heads) < 1 or min(*depths_enc, *depths_dec) < 0:
            raise ConfigError("TAPE-R channels, embed_dim, win_size and heads must be positive, depths non-negative")
        for lvl, h in enumerate(heads):
            if (c * 2**lvl) % h:
                raise ConfigError(f"TAPE-R level {lvl} width {c * 2**lvl} is not divisible by heads {h}")
        if mid_dim % heads_mid:
            raise ConfigError(f"TAPE-R bottleneck width {mid_dim} is not divisible by heads_mid {heads_mid}")
        if pem and (tokens < 1 or pem_heads < 1 or mid_dim % pem_heads):
            raise ConfigError(f"TAPE-R PEM needs prior_tokens >= 1 and pem_heads dividing {mid_dim}, "
                              f"got {tokens} and {pem_heads}")
        if residual and in_nc != out_nc:
            raise ConfigError(f"TAPE-R global_residual needs in_nc == out_nc, got {in_nc} and {out_nc}")

    def encode(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """(B, in_nc, H, W) -> bottleneck map (B, H/2^L, W/2^L, d_m) before the PEM, and the skips."""
        h, w = x.shape[-2:]
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(f"TAPE-R needs H and W divisible by {self.size_multiple}, got {h}x{w} "
                             "(the engine pads other sizes)")
        f = self.head(x).permute(0, 2, 3, 1)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            f = encoder(f)
            skips.append(f)
            f = _nchw(down, f)
        return f, skips

    def embed_prior(self, f: Tensor) -> Tensor:
        """The PEM on a bottleneck map (B, h, w, d_m) -> same (identity without PEM)."""
        if self.pem is None:
            return f
        b, h, w, d = f.shape
        return self.pem(f.reshape(b, h * w, d)).view(b, h, w, d)

    def forward_features(self, x: Tensor, through_prior: bool = False) -> Tensor:
        """Bottleneck tokens (B, N = H*W / 4^L, d_m) of the encoder (after the PEM if asked)."""
        f, _ = self.encode(x)
        if through_prior:
            f = self.embed_prior(f)
        return f.flatten(1, 2)

    def forward(self, x: Tensor, return_prior: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """(B, in_nc, H, W) -> (B, out_nc, H, W); with ``return_prior`` also
        ``prior_proj(PEM output)`` as (B, N, d_m) tokens for the stage-1 loss."""
        f, skips = self.encode(x)
        z = self.embed_prior(f)
        f = self.mid(z)
        for up, reduce, decoder, skip in zip(self.ups, self.reduces, self.decoders, reversed(skips)):
            f = reduce(torch.cat([_nchw(up, f), skip], dim=-1))
            f = decoder(f)
        out = self.tail(f.permute(0, 3, 1, 2))
        if self.global_residual:
            out = out + x
        if not return_prior:
            return out
        if self.prior_proj is None:
            raise ConfigError("this TAPE-R has no prior_proj: build it with prior_loss: true for the prior loss")
        return out, self.prior_proj(z.flatten(1, 2))


class TAPERBase(TAPER):
    """TAPE-R with C = 32 (``tape_r_base``, about 4.2 M parameters) for runs that need no size match."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("embed_dim", 32)
        super().__init__(**kwargs)


# Give tape_r_base TAPE-R's signature (embed_dim defaulting to 32) so option files are checked key by key.
_signature = inspect.signature(TAPER.__init__)
TAPERBase.__init__.__signature__ = _signature.replace(  # type: ignore[attr-defined]
    parameters=[p.replace(default=32) if p.name == "embed_dim" else p for p in _signature.parameters.values()]
)
TAPERBase.__init__.__annotations__ = dict(TAPER.__init__.__annotations__)
