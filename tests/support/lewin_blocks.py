"""A small LeWin block with weights away from their init, for the block-level tests."""

from __future__ import annotations

import torch

from restore.archs.window_attention import LeWinBlock


def small_lewin_block(shift: bool, seed: int, modulator: bool = True) -> LeWinBlock:
    """dim 8, 2 heads, 4x4 windows (shift 2 when ``shift``), LeFF hidden 32, eval mode; every
    parameter (LayerNorms, biases, bias table) moved by N(0, 0.3) so each term shows."""
    torch.manual_seed(seed)
    blk = LeWinBlock(dim=8, resolution=64, heads=2, win_size=4, shift=shift, mlp_ratio=4.0, qkv_bias=True,
                     qk_scale=None, drop=0.0, attn_drop=0.0, drop_path=0.0, token_projection="linear",
                     token_mlp="leff", modulator=modulator).eval()
    with torch.no_grad():
        for p in blk.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return blk
