"""Uformer's official network, transcribed from the specification (shared/specs/uformer.md
sections 3-4) as the official modules run it, op for op, on a plain state dict.

Independent of :mod:`restore.methods.uformer.arch` and :mod:`restore.archs.window_attention`:
features travel as ``(B, L, C)`` tokens (square maps only, side ``sqrt(L)``); every change to a
``(B, C, H, W)`` map for a convolution is a transpose (made contiguous where the official input,
down- and up-sampling projections make it so); each shifted block rebuilds its label image with
slice assignments, windows it and turns label differences into the -100 mask; attention is
``(q * scale) @ k^T`` plus the gathered relative-position bias (and the mask, through a
``(B, nW, heads, N, N)`` view), softmax, ``@ v``. The tests prove restore's network equal to it;
``benchmarks/`` times it as "the official time".
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

State = dict[str, Tensor]
STAGES = [f"encoderlayer_{i}" for i in range(4)] + ["conv"] + [f"decoderlayer_{i}" for i in range(4)]
LEVELS = [0, 1, 2, 3, 4, 3, 2, 1, 0]


def depth(state: State, stage: str) -> int:
    """Blocks in a stage, counted from the state dict's keys."""
    return len({k.split(".")[2] for k in state if k.startswith(stage + ".blocks.")})


def to_map(x: Tensor) -> Tensor:
    """(B, L, C) tokens -> contiguous (B, C, S, S) map (the official down/up-sampling input)."""
    b, n, c = x.shape
    s = math.isqrt(n)
    return x.transpose(1, 2).contiguous().view(b, c, s, s)


def to_tokens(x: Tensor) -> Tensor:
    """(B, C, S, S) map -> contiguous (B, L, C) tokens."""
    return x.flatten(2).transpose(1, 2).contiguous()


def partition(x: Tensor, m: int) -> Tensor:
    """(B, S, S, C) -> (B * nW, m, m, C), windows batch-major then row-major."""
    b, h, w, c = x.shape
    x = x.view(b, h // m, m, w // m, m, c)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, m, m, c)


def reverse(windows: Tensor, m: int, h: int, w: int) -> Tensor:
    """Inverse of :func:`partition`: (B * nW, m, m, C) -> (B, S, S, C)."""
    b = windows.shape[0] // (h * w // m // m)
    x = windows.view(b, h // m, w // m, m, m, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(b, h, w, -1)


def shift_attention_mask(x: Tensor, s_: int, m: int, shift: int) -> Tensor:
    """The -100/0 mask of shifted windows, rebuilt from the label image as the official block does."""
    labels = torch.zeros((1, s_, s_, 1)).type_as(x)
    bands = (slice(0, -m), slice(-m, -shift), slice(-shift, None))
    count = 0
    for rows in bands:
        for cols in bands:
            labels[:, rows, cols, :] = count
            count += 1
    windows = partition(labels, m).view(-1, m * m)
    diff = windows.unsqueeze(1) - windows.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


def attention(state: State, p: str, x: Tensor, heads: int, mask: Tensor | None) -> Tensor:
    """Official ``WindowAttention`` on (B * nW, N, C) windows."""
    b_, n, c = x.shape
    d = c // heads
    q = F.linear(x, state[p + "qkv.to_q.weight"], state[p + "qkv.to_q.bias"])
    q = q.reshape(b_, n, 1, heads, d).permute(2, 0, 3, 1, 4)[0]
    kv = F.linear(x, state[p + "qkv.to_kv.weight"], state[p + "qkv.to_kv.bias"])
    kv = kv.reshape(b_, n, 2, heads, d).permute(2, 0, 3, 1, 4)
    k, v = kv[0], kv[1]
    logits = (q * d**-0.5) @ k.transpose(-2, -1)
    table, index = state[p + "relative_position_bias_table"], state[p + "relative_position_index"]
    bias = table[index.view(-1)].view(n, n, -1).permute(2, 0, 1).contiguous()
    logits = logits + bias.unsqueeze(0)
    if mask is not None:
        nw = mask.shape[0]
        logits = logits.view(b_ // nw, nw, heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
        logits = logits.view(-1, heads, n, n)
    out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(b_, n, c)
    return F.linear(out, state[p + "proj.weight"], state[p + "proj.bias"])


def leff(state: State, p: str, x: Tensor) -> Tensor:
    """Official ``LeFF``: linear, GELU, depthwise 3x3 over the whole map, GELU, linear."""
    b, n, _ = x.shape
    s = math.isqrt(n)
    x = F.gelu(F.linear(x, state[p + "linear1.0.weight"], state[p + "linear1.0.bias"]))
    x = x.view(b, s, s, -1).permute(0, 3, 1, 2)  # einops 'b (h w) c -> b c h w': a view
    weight = state[p + "dwconv.0.weight"]
    x = F.gelu(F.conv2d(x, weight, state[p + "dwconv.0.bias"], padding=1, groups=weight.shape[0]))
    x = x.flatten(2).transpose(1, 2)  # 'b c h w -> b (h w) c': a view
    return F.linear(x, state[p + "linear2.0.weight"], state[p + "linear2.0.bias"])


def block(state: State, p: str, x: Tensor, m: int, shift: int) -> Tensor:
    """Official ``LeWinTransformerBlock`` on (B, L, C) tokens."""
    b, n, c = x.shape
    s_ = math.isqrt(n)
    heads = state[p + "attn.relative_position_bias_table"].shape[1]
    mask = shift_attention_mask(x, s_, m, shift) if shift else None
    t = F.layer_norm(x, (c,), state[p + "norm1.weight"], state[p + "norm1.bias"], 1e-5).view(b, s_, s_, c)
    if shift:
        t = torch.roll(t, shifts=(-shift, -shift), dims=(1, 2))
    windows = partition(t, m).view(-1, m * m, c)
    if p + "modulator.weight" in state:
        windows = windows + state[p + "modulator.weight"]
    out = attention(state, p + "attn.", windows, heads, mask).view(-1, m, m, c)
    t = reverse(out, m, s_, s_)
    if shift:
        t = torch.roll(t, shifts=(shift, shift), dims=(1, 2))
    x = x + t.view(b, n, c)
    return x + leff(state, p + "mlp.", F.layer_norm(x, (c,), state[p + "norm2.weight"], state[p + "norm2.bias"], 1e-5))


def stage(state: State, name: str, x: Tensor, level: int, img_size: int, shift_flag: bool = True) -> Tensor:
    """A stage's blocks; window and shift from the nominal resolution ``img_size / 2**level`` (spec 4.3)."""
    m = math.isqrt(state[f"{name}.blocks.0.attn.relative_position_index"].shape[0])
    nominal = img_size // 2**level
    for i in range(depth(state, name)):
        shift = m // 2 if shift_flag and i % 2 == 1 and nominal > m else 0
        x = block(state, f"{name}.blocks.{i}.", x, m, shift)
    return x


def official_uformer(state: State, x: Tensor, img_size: int = 128) -> Tensor:
    """The official ``Uformer.forward`` on a square (B, dd_in, S, S) input, S a multiple of 128."""
    y = F.leaky_relu(F.conv2d(x, state["input_proj.proj.0.weight"], state["input_proj.proj.0.bias"], padding=1), 0.01)
    y = to_tokens(y)
    skips = []
    for i in range(4):
        y = stage(state, STAGES[i], y, i, img_size)
        skips.append(y)
        y = to_tokens(F.conv2d(to_map(y), state[f"dowsample_{i}.conv.0.weight"], state[f"dowsample_{i}.conv.0.bias"],
                               stride=2, padding=1))
    y = stage(state, "conv", y, 4, img_size)
    for i in range(4):
        up = F.conv_transpose2d(to_map(y), state[f"upsample_{i}.deconv.0.weight"],
                                state[f"upsample_{i}.deconv.0.bias"], stride=2)
        y = stage(state, STAGES[5 + i], torch.cat([to_tokens(up), skips[3 - i]], -1), LEVELS[5 + i], img_size)
    b, n, c = y.shape
    s_ = math.isqrt(n)
    out = F.conv2d(y.transpose(1, 2).view(b, c, s_, s_), state["output_proj.proj.0.weight"],
                   state["output_proj.proj.0.bias"], padding=1)
    return x + out if x.shape[1] == 3 else out


def expand2square(x: Tensor, factor: int = 128) -> tuple[Tensor, Tensor]:
    """The official test scripts' ``expand2square``: the (1, C, H, W) image centred on a zero
    (1, C, X, X) canvas, X = ceil(max(H, W) / factor) * factor, and a (1, 1, X, X) mask of it."""
    _, c, h, w = x.shape
    side = math.ceil(max(h, w) / factor) * factor
    canvas = torch.zeros(1, c, side, side, dtype=x.dtype)
    mask = torch.zeros(1, 1, side, side, dtype=x.dtype)
    top, left = (side - h) // 2, (side - w) // 2
    canvas[:, :, top : top + h, left : left + w] = x
    mask[:, :, top : top + h, left : left + w] = 1
    return canvas, mask


def official_test(network: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """The official test scripts on one (1, 3, H, W) image in [0, 1] around ``network`` (restore's
    model, or :func:`official_uformer` on a state dict): ``expand2square``, the network,
    ``masked_select`` back to H x W, clamp."""
    h, w = x.shape[-2:]
    canvas, mask = expand2square(x)
    with torch.no_grad():
        out = network(canvas)
    return torch.masked_select(out, mask.bool()).reshape(1, 3, h, w).clamp(0, 1)
