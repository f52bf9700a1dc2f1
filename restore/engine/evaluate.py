"""The evaluation loop shared by training-time validation and ``restore test``.

Every rank scores its own shard of the set (``indices[rank::world_size]``: each image exactly
once, no padding duplicates as a ``DistributedSampler`` would add), then the evaluator's running
sums are all-reduced and the per-image rows all-gathered, so every rank ends with the same
dataset figures and the full, dataset-ordered table.
"""

from __future__ import annotations

import time
from contextlib import closing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from restore.config.schema import EvalSet
from restore.engine import distributed
from restore.engine.dataloading import unwrap_worker_error
from restore.engine.distributed import DistContext
from restore.engine.network import input_keys
from restore.errors import ConfigError, DataError, RestoreError

#: ``on_image(name, index, input, output, target)``: CPU tensors ``(C, H, W)``, output float32
#: unclamped (the network's values; the protocol quantises them when scoring).
OnImage = Callable[[str, int, Tensor, Tensor, Tensor], None]
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
) -> EvalResult:
    """Score ``dataset`` under ``spec.protocol``, sharded over ranks and pooled on every rank.

    ``restorer``: a :class:`~restore.engine.inference.Restorer` (``(B,C,H,W)`` + extras ->
    ``(B,C',sH,sW)`` float on its device); the sample entries it gets are ``keys`` (default
    :func:`~restore.engine.network.input_keys` of ``restorer.model``). ``keep``: the first
    ``keep`` (input, output, target) CPU triples of rank 0 are kept (TensorBoard images).
    ``on_image``: called once per image this rank scores, with CPU tensors (saving images).
    ``finite``: a NaN/inf in an output is a one-line DataError naming the image (``restore
    test``: a score computed from a clamped NaN output would look plausible and be wrong).
    Every rank must call this (collectives); all get the same result apart from ``samples``.
    """
    from restore.metrics.evaluator import Evaluator

    start = time.perf_counter()
    device = ctx.device
    ev = Evaluator(spec.protocol, spec.metrics, spec.crop_border, device=device)
    if keys is None:
        model = getattr(restorer, "model", None)
        keys = input_keys(model) if model is not None else ("input",)
    set_name = name or getattr(spec.dataset, "type", "")
    indices = shard_indices(len(dataset), ctx.rank, ctx.world_size)  # type: ignore[arg-type]
    indexed_rows: list[tuple[int, Row]] = []
    samples: list[tuple[Tensor, Tensor, Tensor]] = []
    want_keep = keep if ctx.is_main else 0
    batches = _batches(_loader(dataset, spec, indices, device)) if indices else (b for b in ())
    with closing(batches):
        for batch in batches:
            if "target" not in batch:
                raise ConfigError(
                    f"set '{set_name}' has no ground truth ('target') to score against "
                    "(a shadow set needs with_target: true)"
                )
            inputs = network_inputs(batch, keys, device, set_name)
            output = restorer(*inputs)
            names = [str(n) for n in batch["name"]]
            if finite:
                check_finite(output, names, set_name)
            rows = ev.update(output, batch["target"], batch.get("mask"), names)
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
    totals = ev.sums(device)
    distributed.all_reduce_sum(totals)
    ev.load_sums(totals)
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
    )
