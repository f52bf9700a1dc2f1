"""IPT, the Image Processing Transformer (Chen et al., CVPR 2021), as in the official release.

One transformer body shared by several tasks, each with its own convolutional head, tail and
row of the task-query table (``shared/specs/ipt.md``):

    x (B, 3, 48, 48) in [0, 1]
      -> x * rgb_range -> sub_mean -> head[t]            (B, F, 48, 48)
      -> body: 3x3 patches as 256 tokens of F*9 = 576 dims, 12 encoder + 12 decoder layers
         (pre-norm; the decoder adds query row t to its queries) -> folded back, + head output
      -> tail[t] (x s pixel-shuffle up-sampler, conv) -> add_mean -> / rgb_range
    out (B, 3, 48s, 48s), s = scale[t], not clamped.

The body only accepts ``patch_size`` x ``patch_size`` inputs (its token count is fixed), so whole
images go through :meth:`IPT.forward_any_size`, the official patch-wise rule of
:mod:`restore.methods.ipt.patches`; the engine calls it for validation, ``restore test`` and
``restore infer``. Training runs on 48x48 crops (``crop_size: 48``).

Layouts (``scale`` list, ``num_queries``) and parameter counts of the released files:

    six-task pre-training  scale [2, 3, 4, 1, 1, 1], num_queries 6   118,892,394  (IPT_pretrain.pt)
    single task x2 / x3 / x4                                          115,460,443 / 115,645,083 / 115,608,155
    single task x1 (denoise30, denoise50, derain)                     115,312,731

State-dict keys and shapes equal the official ones, including the frozen MeanShift convolutions
and the persistent ``body.position_encoding.position_ids`` buffer. Attention keeps the
parameter names of ``nn.MultiheadAttention(bias=False)`` (``in_proj_weight``, ``out_proj``) but
runs through ``F.scaled_dot_product_attention``.

Task selection: ``task`` (index or name) picks the head, tail and query row that ``forward``
uses; ``forward(x, task=...)`` overrides it per call, ``forward_features`` also returns the body
tokens (the official contrastive-loss features) for multi-task pre-training.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restore.errors import ConfigError
from restore.methods.ipt.patches import forward_chop

#: Official MeanShift mean (DIV2K RGB mean); std is 1.
RGB_MEAN = (0.4488, 0.4371, 0.4040)
#: The pre-training layout: task names (as in keys/ipt.json) and their scales, in head order.
PRETRAIN_TASKS = ("sr_x2", "sr_x3", "sr_x4", "denoise_sigma30", "denoise_sigma50", "derain")
PRETRAIN_SCALES = (2, 3, 4, 1, 1, 1)


def _conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2)


class MeanShift(nn.Conv2d):
    """Frozen 1x1 conv adding ``sign * rgb_range * mean`` (weights kept in the state_dict, as officially)."""

    def __init__(self, rgb_range: float, sign: int) -> None:
        super().__init__(3, 3, 1)
        with torch.no_grad():
            self.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.bias.copy_(sign * rgb_range * torch.tensor(RGB_MEAN))
        self.requires_grad_(False)


class ResBlock(nn.Module):
    """conv 5x5 -> ReLU -> conv 5x5, plus the input (keys ``body.0``, ``body.2``)."""

    def __init__(self, channels: int, kernel: int = 5) -> None:
        super().__init__()
        conv = _conv(channels, channels, kernel)
        self.body = nn.Sequential(conv, nn.ReLU(inplace=True), _conv(channels, channels, kernel))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + x


def upsampler(scale: int, channels: int) -> nn.Sequential:
    """x2^n: n x (conv F->4F, PixelShuffle 2); x3: conv F->9F, PixelShuffle 3; x1: empty."""
    layers: list[nn.Module] = []
    if scale & (scale - 1) == 0:
        for _ in range(int(math.log2(scale))):
            layers += [_conv(channels, 4 * channels), nn.PixelShuffle(2)]
    elif scale == 3:
        layers += [_conv(channels, 9 * channels), nn.PixelShuffle(3)]
    else:
        raise ConfigError(f"IPT scale must be 1, 3 or a power of 2, got {scale}")
    return nn.Sequential(*layers)


class Attention(nn.Module):
    """Multi-head attention with ``nn.MultiheadAttention(dim, heads, bias=False)``'s parameters.

    Inputs are batch-first ``(B, L, D)``; ``in_proj_weight`` stacks Wq, Wk, Wv. When query and
    key (or key and value) are the same tensor their projections are one matmul. ``out_bias``:
    an ``out_proj.bias``, which ``nn.MultiheadAttention(bias=False)`` of old PyTorch (1.4) still had.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, out_bias: bool = False) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.out_proj = nn.Linear(dim, dim, bias=out_bias)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
        w, d = self.in_proj_weight, self.in_proj_weight.shape[1]
        if query is key and key is value:
            q, k, v = F.linear(query, w).chunk(3, dim=-1)
        elif query is key:
            q, k = F.linear(query, w[: 2 * d]).chunk(2, dim=-1)
            v = F.linear(value, w[2 * d :])
        elif key is value:
            q = F.linear(query, w[:d])
            k, v = F.linear(key, w[d:]).chunk(2, dim=-1)
        else:
            q, k, v = F.linear(query, w[:d]), F.linear(key, w[d : 2 * d]), F.linear(value, w[2 * d :])
        b, n, _ = q.shape

        def split(t: Tensor) -> Tensor:  # (B, L, D) -> (B, heads, L, D / heads)
            return t.reshape(b, -1, self.heads, d // self.heads).transpose(1, 2)

        dropout = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(split(q), split(k), split(v), dropout_p=dropout)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, d))


def _norm(dim: int, enabled: bool) -> nn.Module:
    return nn.LayerNorm(dim) if enabled else nn.Identity()


def _plus(x: Tensor, pos: Tensor | None) -> Tensor:
    return x if pos is None else x + pos


class EncoderLayer(nn.Module):
    """Pre-norm: ``z += MHA(LN1 z (+pos), LN1 z (+pos), LN1 z)``; ``z += FFN(LN2 z)``. (B, L, D) -> same."""

    def __init__(self, dim: int, heads: int, hidden: int, dropout: float, norm: bool, out_bias: bool) -> None:
        super().__init__()
        self.self_attn = Attention(dim, heads, dropout, out_bias)
        self.linear1 = nn.Linear(dim, hidden)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(hidden, dim)
        self.norm1, self.norm2 = _norm(dim, norm), _norm(dim, norm)
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, z: Tensor, pos: Tensor | None = None) -> Tensor:
        u = self.norm1(z)
        qk = _plus(u, pos)
        z = z + self.dropout1(self.self_attn(qk, qk, u))
        u = self.norm2(z)
        return z + self.dropout2(self.linear2(self.dropout(F.relu(self.linear1(u)))))


class DecoderLayer(nn.Module):
    """Pre-norm self-attention (queries/keys + task query), cross-attention on the memory, FFN."""

    def __init__(self, dim: int, heads: int, hidden: int, dropout: float, norm: bool, out_bias: bool) -> None:
        super().__init__()
        self.self_attn = Attention(dim, heads, dropout, out_bias)
        self.multihead_attn = Attention(dim, heads, dropout, out_bias)
        self.linear1 = nn.Linear(dim, hidden)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(hidden, dim)
        self.norm1, self.norm2, self.norm3 = _norm(dim, norm), _norm(dim, norm), _norm(dim, norm)
        self.dropout1, self.dropout2, self.dropout3 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, y: Tensor, memory: Tensor, pos: Tensor | None = None, query: Tensor | None = None) -> Tensor:
        u = self.norm1(y)
        qk = _plus(u, query)
        y = y + self.dropout1(self.self_attn(qk, qk, u))
        u = self.norm2(y)
        y = y + self.dropout2(self.multihead_attn(_plus(u, query), _plus(memory, pos), memory))
        u = self.norm3(y)
        return y + self.dropout3(self.linear2(self.dropout(F.relu(self.linear1(u)))))


class _Layers(nn.Module):
    """A stack of layers under the official key ``layers.{i}`` (no final norm)."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)


class PositionEncoding(nn.Module):
    """Learned position embedding; ``position_ids`` is a persistent buffer, as officially."""

    def __init__(self, length: int, dim: int) -> None:
        super().__init__()
        self.pe = nn.Embedding(length, dim)
        self.register_buffer("position_ids", torch.arange(length).unsqueeze(0))

    def forward(self) -> Tensor:
        return self.pe(self.position_ids)  # (1, L, D)


class Body(nn.Module):
    """The official ``VisionTransformer``: (B, F, P, P) -> (B, F, P, P) features, and its tokens (B, L, D).

    ``mlp`` (the official ``no_mlp`` inverted) adds ``linear_encoding``, ``mlp_head`` and the
    task-query table; ``pos``: "once" (added at the input), "every" (in every attention), "none".
    """

    def __init__(
        self, channels: int, patch_size: int, patch_dim: int, heads: int, layers: int, queries: int,
        dropout: float, mlp: bool, pos: str, norm: bool, out_bias: bool = False,
    ) -> None:
        super().__init__()
        self.patch_size, self.patch_dim, self.pos = patch_size, patch_dim, pos
        dim, length = channels * patch_dim**2, (patch_size // patch_dim) ** 2
        self.length, self.dim = length, dim
        self.mlp = mlp
        if mlp:
            self.linear_encoding = nn.Linear(dim, dim)
            self.mlp_head = nn.Sequential(
                nn.Linear(dim, 4 * dim), nn.Dropout(dropout), nn.ReLU(), nn.Linear(4 * dim, dim), nn.Dropout(dropout)
            )
            self.query_embed = nn.Embedding(queries, dim * length)
        self.encoder = _Layers([EncoderLayer(dim, heads, 4 * dim, dropout, norm, out_bias) for _ in range(layers)])
        self.decoder = _Layers([DecoderLayer(dim, heads, 4 * dim, dropout, norm, out_bias) for _ in range(layers)])
        if pos != "none":
            self.position_encoding = PositionEncoding(length, dim)
        self.dropout_layer1 = nn.Dropout(dropout)
        if not norm:  # the official no_norm initialisation
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, std=1 / m.weight.shape[1])

    def forward(self, x: Tensor, query_index: int) -> tuple[Tensor, Tensor]:
        p = self.patch_dim
        z = F.unfold(x, p, stride=p).transpose(1, 2)  # (B, L, D), element c*p*p + ky*p + kx
        query = None
        if self.mlp:
            z = self.dropout_layer1(self.linear_encoding(z)) + z
            query = self.query_embed.weight[query_index].view(1, self.length, self.dim)
        pos = self.position_encoding() if self.pos != "none" else None
        if self.pos == "every":
            for layer in self.encoder.layers:
                z = layer(z, pos)
            memory = z
            for layer in self.decoder.layers:
                z = layer(z, memory, pos, query)
        else:
            z = _plus(z, pos)
            for layer in self.encoder.layers:
                z = layer(z)
            memory = z
            for layer in self.decoder.layers:
                z = layer(z, memory, None, query)
        if self.mlp:
            z = self.mlp_head(z) + z
        return F.fold(z.transpose(1, 2), (self.patch_size,) * 2, p, stride=p), z


class IPT(nn.Module):
    """IPT with one head/tail per entry of ``scale`` and a shared transformer body.

    Args (official ``option.py`` names and defaults):
        scale: one up-scaling factor per task (1, 3 or a power of 2); an int means one task.
            The official single-task files use [1] (denoise30/50, derain), [2], [3], [4]; the
            pre-training file [2, 3, 4, 1, 1, 1] with ``num_queries: 6``.
        task: the task ``forward`` runs, an index into ``scale`` or a name of ``task_names``.
        num_queries: rows of the task-query table (task ``t`` uses row ``t``).
        task_names: a name per task; defaults to :data:`PRETRAIN_TASKS` for the pre-training
            layout, else none (tasks are then chosen by index).
        n_feats, patch_size, patch_dim, num_heads, num_layers, dropout_rate, rgb_range: as
            officially (64, 48, 3, 12, 12, 0, 255). Inputs/outputs are in [0, 1]; ``rgb_range``
            is the range inside the model.
        no_mlp, pos_every, no_pos, no_norm: the official ablation switches.
        attn_out_bias: give every attention an ``out_proj.bias``. Off: current PyTorch builds
            ``nn.MultiheadAttention(bias=False)`` without it and the key listings lack it; PyTorch
            1.4, which the release targets, had one. Turn it on if a file carries those keys
            (:meth:`layout_of` tells); the spec leaves this to be confirmed on the real files.
        crop_batch_size: tiles per forward in :meth:`forward_any_size` (official 64).
        freeze_other_tasks: make the heads and tails of the tasks other than ``task`` frozen
            (not official): fine-tuning one task of the pre-training layout then has no unused
            trainable parameters (which DistributedDataParallel rejects).
    """

    in_nc = 3  # RGB only: restore infer replicates a grey image into R = G = B

    def __init__(
        self,
        scale: int | list[int] = 4,
        task: int | str = 0,
        num_queries: int = 1,
        task_names: list[str] | None = None,
        n_feats: int = 64,
        patch_size: int = 48,
        patch_dim: int = 3,
        num_heads: int = 12,
        num_layers: int = 12,
        dropout_rate: float = 0.0,
        rgb_range: float = 255.0,
        no_mlp: bool = False,
        pos_every: bool = False,
        no_pos: bool = False,
        no_norm: bool = False,
        attn_out_bias: bool = False,
        crop_batch_size: int = 64,
        freeze_other_tasks: bool = False,
    ) -> None:
        super().__init__()
        scales = [scale] if isinstance(scale, int) else list(scale)
        if not scales or any(s < 1 for s in scales):
            raise ConfigError(f"IPT scale must be a non-empty list of factors >= 1, got {scale}")
        if patch_size % patch_dim or patch_size % 4:
            raise ConfigError(f"IPT patch_size ({patch_size}) must be a multiple of 4 and of patch_dim ({patch_dim})")
        if (n_feats * patch_dim**2) % num_heads:
            raise ConfigError(f"IPT num_heads ({num_heads}) must divide n_feats * patch_dim^2 = {n_feats * patch_dim**2}")
        if num_queries < 1 or crop_batch_size < 1:
            raise ConfigError("IPT num_queries and crop_batch_size must be at least 1")
        if task_names is None and tuple(scales) == PRETRAIN_SCALES:
            task_names = list(PRETRAIN_TASKS)
        if task_names is not None and len(task_names) != len(scales):
            raise ConfigError(f"IPT task_names has {len(task_names)} names for {len(scales)} scales")
        self.scales, self.task_names = scales, task_names
        self.num_queries, self.uses_queries = num_queries, not no_mlp
        self.patch_size, self.rgb_range, self.crop_batch_size = patch_size, float(rgb_range), crop_batch_size

        self.sub_mean = MeanShift(rgb_range, -1)
        self.add_mean = MeanShift(rgb_range, 1)
        self.head = nn.ModuleList(
            nn.Sequential(_conv(3, n_feats), ResBlock(n_feats), ResBlock(n_feats)) for _ in scales
        )
        pos = "none" if no_pos else "every" if pos_every else "once"
        self.body = Body(
            n_feats, patch_size, patch_dim, num_heads, num_layers, num_queries, dropout_rate, not no_mlp, pos, not no_norm,
            attn_out_bias,
        )
        self.tail = nn.ModuleList(nn.Sequential(upsampler(s, n_feats), _conv(n_feats, 3)) for s in scales)
        self.task = self.task_index(task)
        if freeze_other_tasks:
            for t in range(len(scales)):
                if t != self.task:
                    self.head[t].requires_grad_(False)
                    self.tail[t].requires_grad_(False)

    # ------------------------------------------------------------------ tasks

    def task_index(self, task: int | str) -> int:
        """The head/tail index of ``task`` (an index, or a name of ``task_names``); ConfigError if unknown."""
        if isinstance(task, str):
            if not self.task_names or task not in self.task_names:
                known = ", ".join(self.task_names) if self.task_names else "none: give an index"
                raise ConfigError(f"unknown IPT task {task!r} (task names: {known})")
            task = self.task_names.index(task)
        if not 0 <= task < len(self.scales):
            raise ConfigError(f"IPT task {task} out of range: this layout has {len(self.scales)} task(s)")
        if self.uses_queries and task >= self.num_queries:
            raise ConfigError(f"IPT task {task} needs query row {task}, but num_queries is {self.num_queries}")
        return task

    def set_task(self, task: int | str) -> None:
        """Make ``task`` the one ``forward``/``forward_any_size`` run (and ``scale`` report)."""
        self.task = self.task_index(task)

    @property
    def scale(self) -> int:
        """Output size / input size of the current task (read by the engine)."""
        return self.scales[self.task]

    # ------------------------------------------------------------------ forward

    def forward_features(self, x: Tensor, task: int | str | None = None) -> tuple[Tensor, Tensor]:
        """``(B, 3, P, P)`` in [0, 1] -> output ``(B, 3, sP, sP)`` and body tokens ``(B, L, D)``.

        The tokens are the decoder output after ``mlp_head`` (the official contrastive features).
        """
        t = self.task if task is None else self.task_index(task)
        p = self.patch_size
        if x.shape[-2:] != (p, p):
            raise ConfigError(
                f"IPT takes {p}x{p} inputs, got {x.shape[-2]}x{x.shape[-1]} (train with crop_size: {p}; "
                "whole images go through forward_any_size)"
            )
        h = self.head[t](self.sub_mean(x * self.rgb_range))
        features, tokens = self.body(h, t)
        y = self.add_mean(self.tail[t](features + h))
        return y / self.rgb_range, tokens

    def forward(self, x: Tensor, task: int | str | None = None) -> Tensor:
        """``(B, 3, P, P)`` in [0, 1] -> ``(B, 3, sP, sP)`` (unclamped) for ``task`` (default: ``self.task``)."""
        return self.forward_features(x, task)[0]

    def forward_any_size(self, x: Tensor) -> Tensor:
        """Whole images ``(B, 3, H, W)`` -> ``(B, 3, sH, sW)`` by the official patch-wise rule.

        See :func:`restore.methods.ipt.patches.forward_chop` (48x48 tiles, stride 12, centre
        averaging, strips along the bottom and right). Images smaller than a tile are padded
        (reflect) first, which the official code does not do (it fails on them).
        """
        return forward_chop(self.forward, x, self.patch_size, self.scale, self.crop_batch_size)

    # ------------------------------------------------------------------ weight files

    @staticmethod
    def layout_of(state: Mapping[str, Tensor]) -> dict[str, Any]:
        """The constructor arguments a state_dict was saved with (``scale``, ``num_queries``, ``n_feats``,
        ``attn_out_bias``).

        Scales are read from the tails: no up-sampler = 1, one conv of 9F rows = 3, n convs of
        4F rows = 2^n. ``num_queries`` is the row count of ``body.query_embed.weight``.
        """
        heads = sorted({int(k.split(".")[1]) for k in state if k.startswith("head.")})
        if not heads:
            raise ConfigError("not an IPT state_dict: it has no head.* keys")
        n_feats = int(state["head.0.0.weight"].shape[0])
        scales = []
        for t in heads:
            convs = [k for k in state if k.startswith(f"tail.{t}.0.") and k.endswith(".weight")]
            if not convs:
                scales.append(1)
            elif len(convs) == 1 and state[convs[0]].shape[0] == 9 * n_feats:
                scales.append(3)
            else:
                scales.append(2 ** len(convs))
        query = state.get("body.query_embed.weight")
        return {
            "scale": scales,
            "num_queries": int(query.shape[0]) if query is not None else 1,
            "n_feats": n_feats,
            "attn_out_bias": any(k.endswith("attn.out_proj.bias") for k in state),
        }

    @staticmethod
    def extract_task(state: Mapping[str, Tensor], task: int) -> dict[str, Tensor]:
        """A single-task state_dict (head/tail/query row ``task`` renamed to index 0) from a multi-task one.

        E.g. the denoise-sigma30 part of ``IPT_pretrain.pt`` (task 3) loads strictly into
        ``IPT(scale=1)``.
        """
        out: dict[str, Tensor] = {}
        for key, value in state.items():
            part, _, rest = key.partition(".")
            if part in ("head", "tail"):
                index, _, rest = rest.partition(".")
                if int(index) == task:
                    out[f"{part}.0.{rest}"] = value
            elif key == "body.query_embed.weight":
                out[key] = value[task : task + 1].clone()
            else:
                out[key] = value
        if not any(k.startswith("head.0.") for k in out):
            raise ConfigError(f"the state_dict has no task {task} (no head.{task}.* keys)")
        return out

