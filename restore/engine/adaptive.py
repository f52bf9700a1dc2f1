"""Adaptive inference: each tile runs at the width its degradation asks for (DDA routing).

``infer.adaptive: {score, widths, fractions | thresholds}`` (:class:`restore.config.schema.Adaptive`)
turns the tiler of :class:`restore.engine.inference.Restorer` into a router:

1. every tile of every image is scored with the tile score (:mod:`restore.metrics.tile_scores`;
   ``moire`` is DDA's prior) on its 8-bit input;
2. :func:`route` gives each tile a width: by **rank** within its image (``fractions``: the
   lowest-scoring share of the tiles to ``widths[0]``, ...; default equal shares, so with 6 tiles
   and 3 widths the 2 lowest run narrowest, as the reference does) or by **thresholds** on the
   score (``len(widths) - 1`` ascending boundaries, e.g. a DDA run's tercile boundaries);
3. the tiles of one width run together, ``tile_batch`` x images at a time, with the network
   switched to that width (:func:`restore.archs.slimmable.at_width`), and are blended exactly as
   non-adaptive tiles are (with every tile at width 1.0 the output is the non-adaptive one).

What it costs is counted, not estimated: :class:`FlopTally` adds, per forward, the FLOPs of one
tile at that width times the tiles run, and what the same tiles would have cost at full width.
FLOPs per (width, tile size) are measured once with ``torch.utils.flop_counter.FlopCounterMode``
on a copy of the network on the ``meta`` device (no arithmetic is done): matmuls and
convolutions (2 per multiply-add), the operations that scale with width; element-wise work and
the tile scoring are not counted. x8 self-ensemble counts 8 forwards per tile.

Only the torch backend routes: an exported ONNX/OpenVINO graph has one width
(``infer.backend: auto`` picks torch when ``infer.adaptive`` is set; an explicit other backend is
a one-line error).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from restore.archs.contract import input_keys, unwrap
from restore.archs.slimmable import at_width, is_slimmable
from restore.config.schema import Adaptive
from restore.errors import ConfigError

#: ``(items, width)``: the ``(image, row, column)`` tiles of one forward, and their width.
Group = tuple[list[tuple[int, int, int]], float]


def route(scores: Sequence[float] | np.ndarray, n_widths: int, fractions: Sequence[float] | None = None,
          thresholds: Sequence[float] | None = None) -> np.ndarray:
    """The width index of every tile of one image, ``(N,)`` int.

    ``thresholds``: index = how many boundaries are <= the score. Otherwise ``fractions``
    (default equal): tiles sorted by score (ties in tile order); the tile of rank ``r`` of ``N``
    goes to the first width whose cumulative share exceeds ``(r + 1/2) / N``.
    """
    s = np.asarray(scores, dtype=np.float64)
    if thresholds is not None:
        return np.searchsorted(np.asarray(thresholds, dtype=np.float64), s, side="right").astype(np.int64)
    shares = np.full(n_widths, 1.0 / n_widths) if fractions is None else np.asarray(fractions, dtype=np.float64)
    cumulative = np.cumsum(shares)
    out = np.empty(len(s), dtype=np.int64)
    order = np.argsort(s, kind="stable")
    position = (np.arange(len(s)) + 0.5) / max(len(s), 1)
    out[order] = np.minimum(np.searchsorted(cumulative, position, side="right"), n_widths - 1)
    return out


@dataclass
class FlopTally:
    """FLOPs spent and what the same tiles cost at full width; tiles run per width."""

    spent: float = 0.0
    full: float = 0.0
    tiles: dict[float, int] = field(default_factory=dict)

    def add(self, width: float, n_tiles: int, per_tile: float, per_tile_full: float) -> None:
        self.spent += n_tiles * per_tile
        self.full += n_tiles * per_tile_full
        self.tiles[width] = self.tiles.get(width, 0) + n_tiles

    def merge(self, other: FlopTally) -> None:
        """Add another tally (another rank's) to this one."""
        self.spent += other.spent
        self.full += other.full
        for w, n in other.tiles.items():
            self.tiles[w] = self.tiles.get(w, 0) + n

    @property
    def ratio(self) -> float:
        """Spent / full width (nan before any tile)."""
        return self.spent / self.full if self.full else float("nan")

    def as_dict(self) -> dict[str, object]:
        return {"flops": self.spent, "flops_full_width": self.full, "flops_ratio": self.ratio,
                "tiles_per_width": {f"{w:g}": n for w, n in sorted(self.tiles.items())}}

    def text(self) -> str:
        """``tiles per width 0.25/0.5/1: 4/4/4; 1.2 GFLOPs of 3.4 GFLOPs at full width (35.3%)``."""
        widths = sorted(self.tiles)
        per = f"tiles per width {'/'.join(f'{w:g}' for w in widths)}: {'/'.join(str(self.tiles[w]) for w in widths)}"
        return f"{per}; {self.spent / 1e9:.4g} GFLOPs of {self.full / 1e9:.4g} GFLOPs at full width ({100 * self.ratio:.1f}%)"


def settings_text(settings: Adaptive) -> str:
    """``score moire, widths 0.25/0.5/1, fractions 0.5/0.25/0.25`` (or ``thresholds ...``, or
    ``equal shares`` when neither is given)."""
    if settings.thresholds is not None:
        rule = f"thresholds {'/'.join(f'{t:g}' for t in settings.thresholds)}"
    elif settings.fractions is not None:
        rule = f"fractions {'/'.join(f'{f:g}' for f in settings.fractions)}"
    else:
        rule = "equal shares"
    return f"score {settings.score}, widths {'/'.join(f'{w:g}' for w in settings.widths)}, {rule}"


def count_flops(model: nn.Module, forward: Callable[..., Tensor], shapes: Sequence[tuple[int, ...]],
                device: torch.device, width: float) -> float:
    """FLOPs of ``forward(model, *inputs)`` for inputs of ``shapes`` at ``width`` (FlopCounterMode).

    Runs on a ``meta``-device copy (no arithmetic); a network whose forward cannot run on meta
    tensors is counted on zeros on ``device`` instead.
    """
    from torch.utils.flop_counter import FlopCounterMode

    def measure(net: nn.Module, dev: torch.device | str) -> float:
        inputs = [torch.zeros(s, device=dev) for s in shapes]
        with at_width(net, width), FlopCounterMode(display=False) as counter, torch.no_grad():
            forward(net, *inputs)
        return float(counter.get_total_flops())

    try:
        return measure(copy.deepcopy(model).to("meta"), "meta")
    except Exception:  # an op without a meta kernel (numpy in a size rule, ...): count for real
        return measure(model, device)


class AdaptiveRouter:
    """Scores the tiles, routes them to widths, groups them per width and counts the FLOPs.

    ``settings``: the ``infer.adaptive`` section; ``model``: a slimmable network (ConfigError
    otherwise, and for a mask score on a network without a mask input).
    """

    def __init__(self, settings: Adaptive, model: nn.Module) -> None:
        from restore.metrics.tile_scores import get_tile_score

        net = unwrap(model)
        if not is_slimmable(net):
            raise ConfigError(f"key 'infer.adaptive' needs a slimmable network (wdnet_slim, n2n_unet_slim, ...); "
                              f"{type(net).__name__} cannot change width")
        self.settings, self.net = settings, net
        self.keys = input_keys(net)
        self.needs_mask = get_tile_score(settings.score).needs_mask
        if self.needs_mask and "mask" not in self.keys:
            raise ConfigError(f"key 'infer.adaptive.score': '{settings.score}' reads the shadow mask, but "
                              f"{type(net).__name__} takes no mask input")
        self.tally = FlopTally()
        self._flops: dict[tuple[float, tuple[tuple[int, ...], ...]], float] = {}

    def describe(self) -> str:
        return settings_text(self.settings)

    def reset(self) -> FlopTally:
        """Start a new tally; return the one so far."""
        done, self.tally = self.tally, FlopTally()
        return done

    def scores(self, tiles: Tensor, extra: tuple[Tensor, ...]) -> np.ndarray:
        """Scores of ``(N, C, h, w)`` tiles (the mask extra when the score reads it)."""
        from restore.metrics.tile_scores import score_batch

        mask = extra[self.keys.index("mask") - 1] if self.needs_mask else None
        return score_batch(self.settings.score, tiles, mask)

    def groups(self, x: Tensor, extra: tuple[Tensor, ...], cells: list[tuple[int, int]],
               crop: Callable[[Tensor, int, int], Tensor], batch: int) -> Iterator[Group]:
        """Route every ``(image, cell)`` and yield the tiles of each width, ``batch`` at a time
        (narrowest width first; within a width, images then cells in grid order)."""
        s = self.settings
        chosen: list[list[tuple[int, int, int]]] = [[] for _ in s.widths]
        for n in range(x.shape[0]):
            tiles = torch.cat([crop(x[n : n + 1], i, j) for i, j in cells])
            tile_extra = tuple(torch.cat([crop(e[n : n + 1], i, j) for i, j in cells]) for e in extra)
            for (i, j), k in zip(cells, route(self.scores(tiles, tile_extra), len(s.widths), s.fractions, s.thresholds)):
                chosen[int(k)].append((n, i, j))
        for width, items in zip(s.widths, chosen):
            for first in range(0, len(items), batch):
                yield items[first : first + batch], width

    def at(self, width: float | None) -> AbstractContextManager[object]:
        """The network at ``width`` for a block (``None``: as it is)."""
        return nullcontext() if width is None else at_width(self.net, width)

    def count(self, width: float, tiles: Tensor, extra: tuple[Tensor, ...], forward: Callable[..., Tensor],
              device: torch.device, forwards_per_tile: int = 1) -> None:
        """Add the FLOPs of the ``len(tiles)`` tiles just run at ``width`` (and at full width)."""
        shapes = tuple((1, *t.shape[1:]) for t in (tiles, *extra))
        per_tile = []
        for w in (width, 1.0):
            key = (w, shapes)
            if key not in self._flops:
                self._flops[key] = count_flops(self.net, forward, shapes, device, w)
            per_tile.append(self._flops[key] * forwards_per_tile)
        self.tally.add(width, int(tiles.shape[0]), per_tile[0], per_tile[1])
