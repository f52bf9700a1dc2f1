"""LAB-Net's local spatial attention: shadow positions attend to the ring just outside the shadow.

For each sample, with S the shadow and R the ring positions (bool ``(N,)`` masks over the
flattened working-resolution grid) and ``q``, ``k`` of shape ``(C, N)``::

    k[:, S] = (softmax(q[:, S]^T k[:, R] / sqrt(C)) k[:, R]^T)^T      (keys and values are both k)

Other columns are kept. The official code builds the full |S| x |R| matrix with boolean
indexing, and its edge cases follow from that: no shadow -> nothing changes; no ring -> the
shadow columns become 0 (a softmax over nothing, times nothing).

Both formulations here avoid Python branches on the data, so a traced graph (ONNX) holds for
every mask. An empty ring is handled by one extra *sink* key with value 0 and logit
``finfo.min``: next to any real key its weight is exactly 0 (``exp(min - max) == 0``); alone, it
takes all the weight and yields 0, as the official code does.

* :func:`attention_per_sample` (eager, training and inference): per sample, gather S and R and
  run ``scaled_dot_product_attention``, whose flash kernels never materialise |S| x |R|.
* :func:`attention_batched` (export / tracing): all samples at once with a matrix product and a
  softmax, cross-sample pairs masked out; no loop over the batch, so the graph serves any batch.
  It materialises |S| x |R| (about 150 MB for a realistic 640x480 shadow at 256x256), which a
  graph runtime may plan; the eager path never does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def _is_traced() -> bool:
    """True while a graph is being captured (TorchScript tracing for ONNX, torch.export/compile)."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


def local_spatial_attention(q: Tensor, k: Tensor, shadow: Tensor, ring: Tensor) -> Tensor:
    """``q``, ``k``: ``(B, C, N)``; ``shadow``, ``ring``: bool ``(B, N)`` -> ``k`` with the shadow
    columns of each sample replaced by attention over its ring (see the module docstring)."""
    if _is_traced():
        return attention_batched(q, k, shadow, ring)
    return attention_per_sample(q, k, shadow, ring)


def _with_sink(keys: Tensor, real: int) -> tuple[Tensor, Tensor]:
    """``keys`` (R, C) -> (R + 1, C) with a zero sink row, and the additive logit bias (1, R + 1)."""
    sink = keys.new_zeros(1, keys.shape[1])
    bias = torch.cat([keys.new_zeros(1, real), keys.new_full((1, 1), torch.finfo(keys.dtype).min)], dim=1)
    return torch.cat([keys, sink]), bias


def attention_per_sample(q: Tensor, k: Tensor, shadow: Tensor, ring: Tensor) -> Tensor:
    """Eager formulation: per sample, ``scaled_dot_product_attention`` over the gathered sets."""
    scale = 1.0 / math.sqrt(k.shape[1])
    out = []
    for qi, ki, s, r in zip(q, k, shadow, ring):
        s_idx, r_idx = s.nonzero().squeeze(1), r.nonzero().squeeze(1)
        kt = ki.t()
        keys, bias = _with_sink(kt.index_select(0, r_idx), r_idx.shape[0])
        queries = qi.t().index_select(0, s_idx)  # (|S|, C)
        values = F.scaled_dot_product_attention(
            queries[None, None], keys[None, None], keys[None, None], attn_mask=bias.to(queries.dtype), scale=scale
        )[0, 0]
        out.append(ki.index_copy(1, s_idx, values.t().to(ki.dtype)))
    return torch.stack(out)


def attention_batched(q: Tensor, k: Tensor, shadow: Tensor, ring: Tensor) -> Tensor:
    """Graph formulation: one softmax over all (shadow, ring) pairs of the batch, pairs of different
    samples masked out; ``(B, C, N)`` in and out."""
    b, c, n = k.shape
    flat_k = k.transpose(1, 2).reshape(b * n, c)
    flat_q = q.transpose(1, 2).reshape(b * n, c)
    s_idx, r_idx = shadow.reshape(-1).nonzero().squeeze(1), ring.reshape(-1).nonzero().squeeze(1)
    queries, keys = flat_q.index_select(0, s_idx), flat_k.index_select(0, r_idx)
    keys, bias = _with_sink(keys, r_idx.shape[0])
    # Keys of another sample get -inf (weight exactly 0, below the sink's finite logit, so a
    # sample without ring still gets 0 and not an average of the others' rings).
    other_sample = (s_idx // n)[:, None] != (r_idx // n)[None, :]  # (|S|, |R|)
    other_sample = torch.cat([other_sample, other_sample.new_zeros(s_idx.shape[0], 1)], dim=1)
    logits = ((queries @ keys.t()) * (1.0 / math.sqrt(c)) + bias).masked_fill(other_sample, -math.inf)
    values = torch.softmax(logits, dim=-1) @ keys
    return flat_k.index_copy(0, s_idx, values).view(b, n, c).transpose(1, 2).contiguous()
