"""The evaluation loop shared by training-time validation and ``restore test``.

Every rank scores its own shard of the set (``indices[rank::world_size]``: each image exactly
once, no padding duplicates as a ``DistributedSampler`` would add), then the evaluator's running
sums are all-reduced and the per-image rows all-gathered, so every rank ends with the same
dataset figures and the full, dataset-ordered table.

``score_input=True`` also scores the degraded input against the target under the same protocol
(the "input" baseline row of a paper's table), when input and target have the same shape. A set
without ground truth (a noisy folder, a shadow set with ``with_target: false``) cannot be scored:
:func:`evaluate` refuses it in words that fit the set's type, and :func:`restore_only` restores
it without scores (``restore test`` saves its images).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from restore.archs.contract import input_keys
from restore.config.schema import EvalSet
from restore.engine import distributed
from restore.engine.dataloading import unwrap_worker_error
from restore.engine.distributed import DistContext
from restore.errors import ConfigError, DataError, RestoreError

#: ``on_image(name, index, input, output, target)``: CPU tensors ``(C, H, W)``, output float32
#: unclamped (the network's values; the protocol quantises them when scoring); ``target`` is
#: None for a set without ground truth (:func:`restore_only`).
OnImage = Callable[[str, int, Tensor, Tensor, "Tensor | None"], None]
#: ``progress(n)``: ``n`` more images of this rank's shard are done.
OnProgress = Callable[[int], None]
Row = dict[str, Any]


@dataclass
class EvalResult:
    """One set's evaluation: dataset figures, per-image rows (dataset order) and a few images."""

    name: str
    protocol: str  # protocol name, e.g. "basicsr"
    label: str  # its human label, e.g. "BasicSR RGB"
    summary: dict[str, float]
    rows: list[Row]
    table: str  # markdown, protocol named in the header
    columns: tuple[str, ...] = ()  # per-image metric keys (row keys besides 'name')
    indices: list[int] = field(default_factory=list)  # dataset index of each row
    samples: list[tuple[Tensor, Tensor, Tensor]] = field(default_factory=list)  # (input, output, target)
    seconds: float = 0.0
    scored: bool = True  # False: a set without ground truth, restored but not scored
    input_summary: dict[str, float] | None = None  # the degraded input scored like an output

    @property
    def n_images(self) -> int:
        return int(self.summary.get("n_images", len(self.rows)))


def shard_indices(length: int, rank: int, world_size: int) -> list[int]:
    """The dataset indices rank ``rank`` scores: every ``world_size``-th from ``rank``."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} out of range for world size {world_size}")
    return list(range(rank, length, world_size))


class ShardSampler(Sampler[int]):
    """Yields a fixed list of indices in order (no shuffling, no padding)."""

    def __init__(self, indices: Sequence[int]) -> None:
        self.indices = list(indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class _WithIndex(Dataset):
    """``dataset[i]`` plus ``'index': i``, so rows can be put back into dataset order."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = dict(self.dataset[index])
        sample["index"] = index
        return sample


def _collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Default collation, but images of different sizes give a one-line DataError, not a stack error."""
    from torch.utils.data import default_collate

    for key, value in samples[0].items():
        if isinstance(value, Tensor):
            shapes = {tuple(s[key].shape) for s in samples}
            if len(shapes) > 1:
                names = ", ".join(f"'{s.get('name', s['index'])}' {tuple(s[key].shape)}" for s in samples[:4])
                raise DataError(
                    f"images of one batch differ in size ({key}: {names}); "
                    "batch_size > 1 needs images of equal size (set batch_size: 1)"
                )
    return default_collate(samples)


def _loader(dataset: Dataset, spec: EvalSet, indices: list[int], device: torch.device) -> DataLoader:
    return DataLoader(
        _WithIndex(dataset),
        batch_size=spec.batch_size,
        sampler=ShardSampler(indices),
        num_workers=spec.num_workers,
        persistent_workers=False,
        collate_fn=_collate,
        pin_memory=device.type == "cuda",
    )


def _batches(loader: DataLoader) -> Iterator[dict[str, Any]]:
    """Iterate ``loader``, turning worker-wrapped RestoreErrors back into the original line."""
    it = iter(loader)
    try:
        while True:
            try:
                batch = next(it)
            except StopIteration:
                return
            except RestoreError as exc:
                clean = unwrap_worker_error(exc)
                if clean is exc:
                    raise
                raise clean from None
            yield batch
    finally:  # also when the caller stops early (an error while scoring): workers go now
        _stop_workers(it)


def _stop_workers(it: object) -> None:
    """Shut a failed iterator's workers down now (left to the GC, the join can stall for seconds)."""
    shutdown = getattr(it, "_shutdown_workers", None)
    if callable(shutdown):
        shutdown()


def network_inputs(batch: dict[str, Any], keys: Sequence[str], device: torch.device, set_name: str = "") -> list[Tensor]:
    """The batch entries the network takes (``keys``, e.g. ``("input", "mask")``), on ``device``."""
    out = []
    for key in keys:
        if key not in batch:
            where = f"set '{set_name}': " if set_name else ""
            have = ", ".join(k for k, v in batch.items() if isinstance(v, Tensor))
            raise ConfigError(f"{where}the network takes '{key}' but the dataset's samples have no such entry (they have: {have})")
        out.append(batch[key].to(device, non_blocking=True))
    return out


def check_finite(output: Tensor, names: Sequence[str], set_name: str) -> None:
    """A one-line DataError naming the first image of ``output`` ``(B, C, H, W)`` with NaN/inf values."""
    bad = (~torch.isfinite(output)).flatten(1).sum(1)
    for name, count in zip(names, bad.tolist()):
        if count:
            raise DataError(f"set '{set_name}', image '{name}': the network output has {count} non-finite values "
                            "(NaN or inf); no score computed (are the weights broken?)")


def run_network(restorer: Callable[..., Tensor], inputs: Sequence[Tensor], set_name: str) -> Tensor:
    """``restorer(*inputs)``, but a channel mismatch between the set's images and the network
    (a grey set, ``channels: 1``, on an RGB network) is one line naming the set, not a traceback."""
    try:
        return restorer(*inputs)
    except RuntimeError as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "channels" not in text:
            raise
        shapes = ", ".join(str(tuple(t.shape[1:])) for t in inputs)
        raise ConfigError(
            f"set '{set_name}': the network cannot take its images (C, H, W) = {shapes}: {text}; make the "
            "set's 'channels' and the network's input channels (e.g. network.in_nc) agree"
        ) from None


def no_target_error(dataset: Dataset, set_name: str) -> ConfigError:
    """The one-line refusal to score a set without ground truth, worded for its dataset type."""
    hint = getattr(dataset, "no_target_hint", "") or "give the set its ground truth"
    return ConfigError(f"set '{set_name}' has no ground truth ('target') to score against: {hint}")


def _this_rank(restorer: Callable[..., Tensor], dataset: Dataset, spec: EvalSet, ctx: DistContext,
               keys: Sequence[str] | None, name: str) -> tuple[Sequence[str], str, Iterator[dict[str, Any]]]:
    """The network's input keys, the set's name and this rank's shard of batches (shared by both loops)."""
    if keys is None:
        model = getattr(restorer, "model", None)
        keys = input_keys(model) if model is not None else ("input",)
    set_name = name or getattr(spec.dataset, "type", "")
    indices = shard_indices(len(dataset), ctx.rank, ctx.world_size)  # type: ignore[arg-type]
    batches = _batches(_loader(dataset, spec, indices, ctx.device)) if indices else (b for b in ())
    return keys, set_name, batches


def evaluate(
    restorer: Callable[..., Tensor],
    dataset: Dataset,
    spec: EvalSet,
    ctx: DistContext,
    *,
    keep: int = 0,
    on_image: OnImage | None = None,
    name: str = "",
    keys: Sequence[str] | None = None,
    finite: bool = False,
    score_input: bool = False,
    progress: OnProgress | None = None,
) -> EvalResult:
    """Score ``dataset`` under ``spec.protocol``, sharded over ranks and pooled on every rank.

    ``restorer``: a :class:`~restore.engine.inference.Restorer` (``(B,C,H,W)`` + extras ->
    ``(B,C',sH,sW)`` float on its device); the sample entries it gets are ``keys`` (default
    :func:`~restore.engine.network.input_keys` of ``restorer.model``). ``keep``: the first
    ``keep`` (input, output, target) CPU triples of rank 0 are kept (TensorBoard images).
    ``on_image``: called once per image this rank scores, with CPU tensors (saving images).
    ``finite``: a NaN/inf in an output is a one-line DataError naming the image (``restore
    test``: a score computed from a clamped NaN output would look plausible and be wrong).
    ``score_input``: also score the input against the target (``EvalResult.input_summary``; None
    when input and target differ in shape, e.g. super-resolution). ``progress(n)``: called after
    each batch with its size. Every rank must call this (collectives); all get the same result
    apart from ``samples``.
    """
    from restore.metrics.evaluator import Evaluator

    start = time.perf_counter()
    device = ctx.device
    ev = Evaluator(spec.protocol, spec.metrics, spec.crop_border, device=device)
    input_ev = Evaluator(spec.protocol, spec.metrics, spec.crop_border, device=device) if score_input else None
    input_shape_differs = 0.0
    keys, set_name, batches = _this_rank(restorer, dataset, spec, ctx, keys, name)
    indexed_rows: list[tuple[int, Row]] = []
    samples: list[tuple[Tensor, Tensor, Tensor]] = []
    want_keep = keep if ctx.is_main else 0
    with closing(batches):
        for batch in batches:
            if "target" not in batch:
                raise no_target_error(dataset, set_name)
            inputs = network_inputs(batch, keys, device, set_name)
            output = run_network(restorer, inputs, set_name)
            names = [str(n) for n in batch["name"]]
            if finite:
                check_finite(output, names, set_name)
            rows = ev.update(output, batch["target"], batch.get("mask"), names)
            if input_ev is not None:
                if batch["input"].shape == batch["target"].shape:
                    input_ev.update(batch["input"], batch["target"], batch.get("mask"), names)
                else:
                    input_shape_differs = 1.0
            batch_indices = [int(i) for i in batch["index"]]
            indexed_rows.extend(zip(batch_indices, rows))
            if on_image is not None or len(samples) < want_keep:
                out_cpu = output.detach().float().cpu()
                for j, (n, idx) in enumerate(zip(names, batch_indices)):
                    triple = (batch["input"][j], out_cpu[j], batch["target"][j])
                    if on_image is not None:
                        on_image(n, idx, *triple)
                    if len(samples) < want_keep:
                        samples.append(tuple(t.clone() for t in triple))  # type: ignore[arg-type]
            if progress is not None:
                progress(len(names))
    totals = ev.sums(device)
    distributed.all_reduce_sum(totals)
    ev.load_sums(totals)
    input_summary = None
    if input_ev is not None:
        pooled = torch.cat([input_ev.sums(device), torch.tensor([input_shape_differs], dtype=torch.float64, device=device)])
        distributed.all_reduce_sum(pooled)
        input_ev.load_sums(pooled[:-1])
        if float(pooled[-1]) == 0 and input_ev.summary()["n_images"] > 0:
            input_summary = input_ev.summary()
    gathered = distributed.all_gather_objects(indexed_rows)
    merged = sorted((pair for part in gathered for pair in part), key=lambda pair: pair[0])  # type: ignore[union-attr]
    summary = ev.summary()
    p = ev.protocol
    return EvalResult(
        name=set_name,
        protocol=p.name,
        label=p.label,
        summary=summary,
        rows=[row for _, row in merged],
        table=ev.format_table(summary),
        columns=ev.keys,
        indices=[i for i, _ in merged],
        samples=samples,
        seconds=time.perf_counter() - start,
        input_summary=input_summary,
    )


UNSCORED_LABEL = "not scored (no ground truth)"


def restore_only(
    restorer: Callable[..., Tensor],
    dataset: Dataset,
    spec: EvalSet,
    ctx: DistContext,
    *,
    on_image: OnImage,
    name: str = "",
    keys: Sequence[str] | None = None,
    progress: OnProgress | None = None,
) -> EvalResult:
    """Restore a set that has no ground truth: every image goes to ``on_image`` (target None).

    The result is not scored (``scored=False``, protocol ``""``); its summary holds the image
    count and, where input and output have the same shape, ``mean_abs_change``: the mean
    absolute difference between output and input in 8-bit levels (0 means the network changed
    nothing, a sanity check that needs no reference).
    """
    start = time.perf_counter()
    device = ctx.device
    keys, set_name, batches = _this_rank(restorer, dataset, spec, ctx, keys, name)
    indexed_rows: list[tuple[int, Row]] = []
    change = torch.zeros(3, dtype=torch.float64, device=device)  # sum of |y - x|, pixel count, images
    with closing(batches):
        for batch in batches:
            output = run_network(restorer, network_inputs(batch, keys, device, set_name), set_name)
            names = [str(n) for n in batch["name"]]
            check_finite(output, names, set_name)
            out_cpu = output.detach().float().cpu()
            for j, (n, idx) in enumerate(zip(names, (int(i) for i in batch["index"]))):
                x, y = batch["input"][j], out_cpu[j]
                row: Row = {"name": n}
                if x.shape == y.shape:
                    diff = (y.clamp(0, 1) - x.float().clamp(0, 1)).abs() * 255.0
                    row["mean_abs_change"] = float(diff.mean())
                    change += torch.tensor([float(diff.sum(dtype=torch.float64)), diff.numel(), 1.0],
                                           dtype=torch.float64, device=device)
                on_image(n, idx, x, y, None)
                indexed_rows.append((idx, row))
            if progress is not None:
                progress(len(names))
    distributed.all_reduce_sum(change)
    gathered = distributed.all_gather_objects(indexed_rows)
    merged = sorted((pair for part in gathered for pair in part), key=lambda pair: pair[0])  # type: ignore[union-attr]
    summary: dict[str, float] = {"n_images": float(len(merged))}
    if float(change[2]) == len(merged) and float(change[1]) > 0:
        summary["mean_abs_change"] = float(change[0] / change[1])
    lines = [f"| metric | {UNSCORED_LABEL} |", "|---|---:|", f"| n_images | {len(merged)} |"]
    if "mean_abs_change" in summary:
        lines.append(f"| mean_abs_change (0-255) | {summary['mean_abs_change']:.4f} |")
    return EvalResult(
        name=set_name, protocol="", label=UNSCORED_LABEL, summary=summary,
        rows=[row for _, row in merged], table="\n".join(lines),
        columns=("mean_abs_change",) if "mean_abs_change" in summary else (),
        indices=[i for i, _ in merged], seconds=time.perf_counter() - start, scored=False,
    )
