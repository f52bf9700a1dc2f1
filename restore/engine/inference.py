"""Running a network on whole images of any size: size rule, tiling, x8 self-ensemble, backend, precision.

Validation, benchmarking and batch-restore all go through :class:`Restorer`, so the way an
image is padded, cut into tiles and blended back is the same everywhere.

Tiling. Tiles of ``tile`` pixels (rounded down to the architecture's size multiple) overlap by
at least ``tile_overlap``; the last tile of a row or column is shifted back inside the image.
Each tile's output is blended with a separable weight that, along every edge shared with a
neighbour, is 0 over the outer quarter of the overlap (pixels a convolution saw the tile border
from never count), rises as a raised cosine over the middle half and is 1 elsewhere; along image
borders it is 1 up to the edge. The per-axis weights form a partition of unity, so a model whose
receptive field reaches at most ``tile_overlap / 4`` pixels past a pixel gives exactly its
whole-image output. Only tiles travel to the device; on CUDA the output accumulator stays on the
CPU, so device memory is bounded by ``tile_batch`` tiles whatever the image size.

Backends (:mod:`restore.engine.backends`). With ``backend`` onnxruntime or openvino the
architecture's core method is exported once and the graph stands in for it on the instance
while a call runs; everything in this module stays Python around it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from contextlib import nullcontext

import torch
from torch import Tensor, nn

from restore.archs.contract import pad_mode, pad_to_multiple, scale_of, size_multiple, unwrap
from restore.config.schema import Adaptive, Infer, adaptive_problem
from restore.engine.adaptive import AdaptiveRouter
from restore.engine.backends import check_choice, resolve_backend
from restore.engine.backends.runner import ExportedCore, standing_in
from restore.engine.torch_speed import has_channels_last_weights
from restore.errors import ConfigError

#: The reduced precisions (``train.amp``, ``infer.precision``) and the autocast dtype of each.
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def forward_padded(model: nn.Module, x: Tensor, *extra: Tensor) -> Tensor:
    """One forward of ``(B, C, H, W)`` (and same-size extras) at any H, W.

    Uses the architecture's ``forward_any_size`` when it has one; otherwise pads every input to
    ``size_multiple`` with ``pad_mode`` and crops the output to ``(B, C', scale*H, scale*W)``.
    """
    net = unwrap(model)
    if hasattr(net, "forward_any_size"):
        return net.forward_any_size(x, *extra)
    multiple, s = size_multiple(model), scale_of(model)
    if multiple == 1:
        return model(x, *extra)
    mode = pad_mode(net)
    xp, (h, w) = pad_to_multiple(x, multiple, mode)
    out = model(xp, *(pad_to_multiple(e, multiple, mode)[0] for e in extra))
    return out[..., : s * h, : s * w]


# The 8 dihedral transforms as (rotations by 90 degrees, flip of W after rotating).
_DIHEDRAL = [(k, flip) for k in range(4) for flip in (False, True)]


def _transform(t: Tensor, k: int, flip: bool) -> Tensor:
    t = torch.rot90(t, k, dims=(-2, -1))
    return t.flip(-1) if flip else t


def _inverse(t: Tensor, k: int, flip: bool) -> Tensor:
    t = t.flip(-1) if flip else t
    return torch.rot90(t, -k, dims=(-2, -1))


def forward_ensemble(model: nn.Module, x: Tensor, *extra: Tensor) -> Tensor:
    """x8 self-ensemble: mean over the flips/rotations of the inverse-transformed outputs.

    Extras are transformed with the input; the 8 forwards run one after another so memory is
    that of one forward. Returns float32 ``(B, C', scale*H, scale*W)``.
    """
    acc: Tensor | None = None
    for k, flip in _DIHEDRAL:
        out = forward_padded(model, _transform(x, k, flip), *(_transform(e, k, flip) for e in extra))
        out = _inverse(out.float(), k, flip)
        acc = out if acc is None else acc.add_(out)
    assert acc is not None
    return acc.div_(len(_DIHEDRAL))


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` pixels covering ``length`` with at least ``overlap``.

    Regular stride ``tile - overlap``; the last tile is shifted back to end at ``length``. A
    length that fits in one tile gives ``[0]`` (that tile is then ``length`` pixels long).
    """
    if length <= tile:
        return [0]
    return list(range(0, length - tile, tile - overlap)) + [length - tile]


def _seam_ramp(lo: float, hi: float, n: int) -> Tensor:
    """0 -> 1 across the overlap [lo, hi) of two tiles, sampled at pixel centres 0..n-1.

    0 over the first quarter, a raised cosine over the middle half, 1 over the last quarter.
    ``ramp(lo + d) + ramp(hi - d) == 1``, which makes the two sides of a seam sum to 1.
    """
    centres = torch.arange(n, dtype=torch.float64) + 0.5
    if hi <= lo:  # tiles that only abut: a hard step
        return (centres >= lo).double()
    v = ((centres - lo) / (hi - lo) - 0.25).mul(2).clamp(0, 1)
    return 0.5 - 0.5 * torch.cos(math.pi * v)


def tile_weights(starts: list[int], size: int, length: int, scale: int = 1) -> list[Tensor]:
    """Blending weights of the tiles of one axis, in output pixels (float32, ``scale*size`` each).

    Tile ``i`` gets ``R[i-1] - R[i]`` where ``R[i]`` is the seam ramp across its overlap with
    tile ``i+1`` (``R[-1] = 1``, ``R[n-1] = 0``). The weights telescope to 1 at every pixel; where
    only neighbours overlap this equals the product of the tile's two edge ramps, and where the
    shifted last tile reaches further back it still sums to 1 and never weights a pixel lying in
    the outer quarter of any overlap from the tile's own edge.
    """
    n_out = scale * length
    ramps = [torch.ones(n_out, dtype=torch.float64)]
    for a, b in zip(starts[:-1], starts[1:]):
        ramps.append(_seam_ramp(scale * b, scale * (a + size), n_out))
    ramps.append(torch.zeros(n_out, dtype=torch.float64))
    return [
        (ramps[i] - ramps[i + 1]).clamp_(min=0)[scale * s : scale * (s + size)].float()
        for i, s in enumerate(starts)
    ]


class Restorer:
    """Runs a model on images of any size: the architecture's size rule, optional tiling, x8
    self-ensemble, on a backend at a precision.

    ``backend``: ``torch`` (the module), ``onnxruntime`` / ``openvino`` (its exported core, see
    :mod:`restore.engine.backends`) or ``auto`` (the fastest installed; :attr:`backend` holds the
    one chosen). ``precision``: ``fp32`` (exact) or the approximate ``bf16`` / ``fp16`` (torch:
    autocast on the model's device; openvino: its inference precision). The model must already
    be on ``device`` (default: the device of its parameters, else the CPU).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        tile: int | None = Infer.tile,
        tile_overlap: int = Infer.tile_overlap,
        tile_batch: int = Infer.tile_batch,
        self_ensemble: bool = Infer.self_ensemble,
        precision: str = Infer.precision,
        backend: str = Infer.backend,
        device: torch.device | str | None = None,
        adaptive: Adaptive | None = None,
    ) -> None:
        if tile is not None:
            if tile <= 0:
                raise ConfigError(f"key 'infer.tile' must be a positive number of pixels, got {tile}")
            if tile_overlap < 0 or tile_overlap >= tile:
                raise ConfigError(f"key 'infer.tile_overlap' must be in [0, tile={tile}), got {tile_overlap}")
        if tile_batch < 1:
            raise ConfigError(f"key 'infer.tile_batch' must be at least 1, got {tile_batch}")
        check_choice(backend, precision)
        problem = adaptive_problem(adaptive, tile, backend)
        if problem is not None:
            raise ConfigError(f"key 'infer.adaptive' {problem}")
        if adaptive is not None and backend == "auto":
            backend = "torch"  # an exported graph has one width
        # infer.adaptive: tiles scored and run at a width each (restore.engine.adaptive)
        self.adaptive = AdaptiveRouter(adaptive, model) if adaptive is not None else None
        self.model = model
        self.tile, self.tile_overlap, self.tile_batch = tile, tile_overlap, tile_batch
        self.self_ensemble, self.precision = self_ensemble, precision
        if device is None:
            tensor = next(iter(model.parameters()), None)
            if tensor is None:
                tensor = next(iter(model.buffers()), None)
            device = tensor.device if tensor is not None else "cpu"
        self.device = torch.device(device)
        self.backend = resolve_backend(backend, precision, self.device)
        self.core = None if self.backend == "torch" else ExportedCore(model, self.backend, precision, self.device)
        # a model in NHWC strides (infer/train.channels_last) gets NHWC inputs: no conversion per layer
        self.channels_last = has_channels_last_weights(model)

    @classmethod
    def from_options(cls, model: nn.Module, infer: Infer, device: torch.device | str | None) -> Restorer:
        """A Restorer configured by an option file's ``infer`` section."""
        return cls(
            model,
            tile=infer.tile,
            tile_overlap=infer.tile_overlap,
            tile_batch=infer.tile_batch,
            self_ensemble=infer.self_ensemble,
            precision=infer.precision,
            backend=infer.backend,
            device=device,
            adaptive=infer.adaptive,
        )

    @torch.no_grad()
    def __call__(self, x: Tensor, *extra: Tensor) -> Tensor:
        """Restore ``x`` (B, C, H, W) with extras of the same H, W; returns float32 (B, C', sH, sW) on ``self.device``."""
        for e in extra:
            if e.shape[-2:] != x.shape[-2:] or e.shape[0] != x.shape[0]:
                raise ValueError(f"extra input of shape {tuple(e.shape)} does not match input {tuple(x.shape)}")
        modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        try:
            tile = self._tile_size()
            if tile is not None and (x.shape[-2] > tile or x.shape[-1] > tile or self.adaptive is not None):
                return self._tiled(x, extra, tile).to(self.device)
            return self._run(x, extra)
        finally:
            for m, mode in modes:
                m.training = mode

    def forwards(self, height: int, width: int) -> int:
        """How many network forwards restoring one ``(1, C, height, width)`` image makes (progress bars):
        the tile batches (1 untiled), times 8 with self-ensemble. An architecture whose forward
        cuts the image itself (IPT's patches) may call its modules more often."""
        tile = self._tile_size()
        count = 1
        if tile is not None and (height > tile or width > tile):
            tiles = len(tile_starts(height, tile, self.tile_overlap)) * len(tile_starts(width, tile, self.tile_overlap))
            count = math.ceil(tiles / self.tile_batch)
        return count * (len(_DIHEDRAL) if self.self_ensemble else 1)

    def _tile_size(self) -> int | None:
        if self.tile is None:
            return None
        multiple = size_multiple(self.model)
        tile = max(multiple, self.tile // multiple * multiple)
        if self.tile_overlap >= tile:
            raise ConfigError(
                f"key 'infer.tile_overlap' ({self.tile_overlap}) must be smaller than the tile, which is "
                f"{tile} once rounded down to the network's size multiple {multiple}"
            )
        return tile

    def _to_device(self, t: Tensor) -> Tensor:
        dtype = next((p.dtype for p in self.model.parameters() if p.is_floating_point()), None)
        t = t.to(self.device, dtype=dtype if dtype is not None and t.is_floating_point() else None)
        return t.contiguous(memory_format=torch.channels_last) if self.channels_last and t.dim() == 4 else t

    def _run(self, x: Tensor, extra: tuple[Tensor, ...]) -> Tensor:
        """One (possibly ensembled) forward of a batch on the device; float32 output there."""
        x, extra = self._to_device(x), tuple(self._to_device(e) for e in extra)
        forward: Callable[..., Tensor] = forward_ensemble if self.self_ensemble else forward_padded
        autocast = (
            torch.autocast(self.device.type, dtype=AMP_DTYPES[self.precision])
            if self.precision != "fp32" and self.backend == "torch"
            else nullcontext()
        )
        with autocast, standing_in(self.core):
            out = forward(self.model, x, *extra)
        return out.float()

    def _tiled(self, x: Tensor, extra: tuple[Tensor, ...], tile: int) -> Tensor:
        """Blend the outputs of overlapping tiles into ``(B, C', sH, sW)`` float32.

        The accumulator lives on the CPU when the device is CUDA (host memory is the cheaper
        one), else on the device; the sum of the separable weights is the outer product of the
        per-axis sums, so no second full-size buffer is needed.
        """
        b, _, h, w = x.shape
        s, overlap = scale_of(self.model), self.tile_overlap
        th, tw = min(tile, h), min(tile, w)
        ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
        wys, wxs = tile_weights(ys, th, h, s), tile_weights(xs, tw, w, s)
        acc_device = torch.device("cpu") if self.device.type == "cuda" else self.device
        sum_y, sum_x = torch.zeros(s * h), torch.zeros(s * w)
        for y0, wy in zip(ys, wys):
            sum_y[s * y0 : s * (y0 + th)] += wy
        for x0, wx in zip(xs, wxs):
            sum_x[s * x0 : s * (x0 + tw)] += wx

        grid = [(i, j) for i in range(len(ys)) for j in range(len(xs))]
        acc: Tensor | None = None

        def crop(t: Tensor, i: int, j: int) -> Tensor:
            return t[..., ys[i] : ys[i] + th, xs[j] : xs[j] + tw]

        # one forward per group: (image, row, column) tiles and their width (None: as the model is)
        if self.adaptive is None:
            groups: Iterable[tuple[list[tuple[int, int, int]], float | None]] = (
                ([(n, i, j) for i, j in grid[first : first + self.tile_batch] for n in range(b)], None)
                for first in range(0, len(grid), self.tile_batch)
            )
        else:
            groups = self.adaptive.groups(x, extra, grid, crop, self.tile_batch * b)
        for items, width in groups:
            tiles = torch.cat([crop(x[n : n + 1], i, j) for n, i, j in items])
            tile_extra = tuple(torch.cat([crop(e[n : n + 1], i, j) for n, i, j in items]) for e in extra)
            if self.adaptive is not None and width is not None:
                with self.adaptive.at(width):
                    out = self._run(tiles, tile_extra).to(acc_device)
                self.adaptive.count(width, tiles, tile_extra, forward_padded, self.device,
                                    len(_DIHEDRAL) if self.self_ensemble else 1)
            else:
                out = self._run(tiles, tile_extra).to(acc_device)
            if acc is None:
                acc = torch.zeros(b, out.shape[1], s * h, s * w, device=acc_device)
            for k, (n, i, j) in enumerate(items):
                weight = (wys[i][:, None] * wxs[j][None, :]).to(acc_device)
                y0, x0 = s * ys[i], s * xs[j]
                acc[n : n + 1, :, y0 : y0 + s * th, x0 : x0 + s * tw].addcmul_(out[k : k + 1], weight)
        assert acc is not None
        return acc.div_(sum_y.to(acc_device)[:, None]).div_(sum_x.to(acc_device)[None, :])
