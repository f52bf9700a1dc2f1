"""Batch-restore: run a trained network over every image of a folder (``restore infer``).

The run is built to be restarted and to survive bad files:

* every image under the input folder (recursively, :func:`~restore.data.image_io.list_images`)
  is written to the same relative path under the output folder, with the same name, bit depth
  (8 or 16) and format unless ``fmt`` asks for another format (16-bit images become 8-bit in a
  format that cannot hold 16 bits: JPEG, BMP);
* outputs are written atomically (temporary file + rename), and an output that already exists
  is skipped unless ``overwrite``, so a killed run continues where it stopped;
* an unreadable, corrupt or too large input (or mask), a network output with NaN/inf values,
  a target that resolves into what the run reads or outside the output folder
  (:mod:`restore.engine.batch_plan`), and a write that fails for that one file are each
  reported in one line and counted as failed; the run goes on and the returned
  :class:`BatchSummary` lists them;
* everything a user can get wrong about the run itself (weights missing or not fitting the
  network, a mask-taking network without masks, an output folder inside the input folder, two
  inputs mapping to one output, another run writing the same output folder) is a one-line
  :class:`~restore.errors.RestoreError` raised before the first image is touched;
* a rerun removes the ``.<name>.<ext>.<random>.tmp`` files a killed write left in the output
  folder;
* progress: a bar on a terminal, else a plain line every tenth of the folder or 30 s with rate and ETA.
* a pipeline: images are decoded ahead and written behind on background threads, and up to
  ``infer.batch_size`` consecutive same-size images share a forward (:func:`_pipeline`); what
  is reported, and in which order, is what a one-image-at-a-time run reports. The summary ends
  with images/s and input MP/s.

Under ``torchrun`` the files are shared out across ranks (``files[rank::world_size]``, taken
from the full sorted listing so that every rank agrees on the split even while others write);
each rank reports its own failures and every rank returns the same, gathered summary.
"""

from __future__ import annotations

import errno
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm import tqdm

from restore import registry
from restore.archs.contract import input_channels, input_keys, unwrap
from restore.config import Options
from restore.data.image_header import max_pixels
from restore.engine import batch_image, distributed
from restore.engine.adaptive import AdaptiveRouter, FlopTally
from restore.engine.background import Lookahead, WriteBehind
from restore.engine.batch_image import Loaded
from restore.engine.batch_plan import Job, TargetGuard, output_lock, plan_jobs, remove_stale_image_temporaries
from restore.engine.checkpoint import load_weights
from restore.engine.distributed import DistContext
from restore.engine.inference import Restorer
from restore.engine.network import build_network
from restore.engine.torch_speed import FirstCallTimer, prepare_for_inference
from restore.errors import ConfigError, DataError, OutputError, RestoreError
from restore.utils.files import os_error_reason
from restore.utils.one_line import one_line
from restore.utils.progress import Progress

#: The extra inputs batch-restore can supply besides the image itself.
SUPPLIED_KEYS = ("input", "mask")
#: Write failures that will hit every following file too: the run stops at the first one.
_FATAL_WRITE_REASONS = tuple(os_error_reason(OSError(e, "")) for e in (errno.ENOSPC, errno.EDQUOT, errno.EROFS))


@dataclass
class BatchSummary:
    """What a run did: source paths restored, skipped (output existed) and failed (with why)."""

    restored: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0
    pixels: int = 0  # input pixels of the restored images (for MP/s)
    adaptive: FlopTally | None = None  # infer.adaptive: FLOPs spent vs full width, tiles per width

    @property
    def ok(self) -> bool:
        return not self.failed

    @classmethod
    def merge(cls, parts: Sequence[BatchSummary]) -> BatchSummary:
        """One summary from the ranks' summaries (lists concatenated, the slowest rank's time)."""
        out = cls()
        for part in parts:
            out.restored.extend(part.restored)
            out.skipped.extend(part.skipped)
            out.failed.extend(part.failed)
            out.pixels += part.pixels
            out.seconds = max(out.seconds, part.seconds)
            if part.adaptive is not None:
                out.adaptive = out.adaptive or FlopTally()
                out.adaptive.merge(part.adaptive)
        return out

    def line(self) -> str:
        """``restored N, skipped S (output exists), failed F in T s (R images/s, M MP/s)``.

        Rates count restored images only, over the whole run's wall time (skips and failures
        included), in input megapixels (10^6 pixels) per second (3 significant digits).
        """
        seconds = self.seconds if self.seconds > 0 else float("inf")
        return (
            f"restored {len(self.restored)}, skipped {len(self.skipped)} (output exists), "
            f"failed {len(self.failed)} in {self.seconds:.1f} s "
            f"({len(self.restored) / seconds:.2f} images/s, {self.pixels / 1e6 / seconds:.3g} MP/s)"
        )


# --------------------------------------------------------------------------- checks


def network_input_channels(model: nn.Module, options: Options) -> int | None:
    """The channel count the network reads (see :func:`restore.archs.contract.input_channels`)."""
    spec = options.network
    if spec is None:
        return input_channels(model)
    return input_channels(model, spec.args, registry.get(spec.kind, spec.type))


def network_name(model: nn.Module, options: Options) -> str:
    """The network's name for messages: its option-file type, else its class name."""
    return options.network.type if options.network is not None else type(unwrap(model)).__name__


def takes_mask(model: nn.Module, options: Options) -> bool:
    """Whether the network takes a mask; one-line error for inputs batch-restore cannot supply."""
    keys = input_keys(model)
    if not keys or keys[0] != "input" or any(k not in SUPPLIED_KEYS for k in keys):
        raise ConfigError(f"network '{network_name(model, options)}' takes inputs {list(keys)}; restore infer can "
                          f"supply only {' and '.join(SUPPLIED_KEYS)} (the image first)")
    return "mask" in keys


def check_input_keys(model: nn.Module, options: Options, mask_dir: object) -> bool:
    """:func:`takes_mask`, and a one-line error when a mask is needed but ``mask_dir`` is None."""
    needs_mask = takes_mask(model, options)
    name = network_name(model, options)
    if needs_mask and mask_dir is None:
        raise ConfigError(f"network '{name}' needs a shadow mask for every image: give --mask-dir DIR "
                          "(masks with the same relative names as the inputs)")
    return needs_mask


def _failure_line(job: Job, exc: BaseException) -> str:
    reason = str(exc).strip() or type(exc).__name__  # whole: a file name may hold a newline
    return one_line(reason if str(job.source) in reason or str(job.target) in reason else f"'{job.source}': {reason}")


# --------------------------------------------------------------------------- the run


def restore_folder(
    options: Options,
    input_dir: str | Path,
    output_dir: str | Path,
    *,
    weights: str | Path | None = None,
    mask_dir: str | Path | None = None,
    overwrite: bool = False,
    fmt: str | None = None,
    ctx: DistContext | None = None,
    progress: bool | None = None,
) -> BatchSummary:
    """Restore every image under ``input_dir`` into ``output_dir`` (see the module docstring).

    ``weights`` defaults to ``options.path.pretrained``; tiling, self-ensemble, AMP, batch size,
    channels_last and compile come from ``options.infer``. ``ctx`` is the process's :class:`DistContext` (``setup(options.device)``
    when not given). ``progress``: on rank 0, ``True`` a bar, ``False`` nothing, ``None`` a bar
    when stderr is a terminal and plain progress lines otherwise. Failures are printed to
    stderr as they happen, one line each; the returned summary is the same on every rank and
    covers all of them.
    """
    max_pixels()  # a bad RESTORE_MAX_PIXELS is one line now, not one per image
    model = build_network(options)
    needs_mask = check_input_keys(model, options, mask_dir)
    if options.infer.adaptive is not None:  # a network that cannot route: one line before any output
        AdaptiveRouter(options.infer.adaptive, model)
    source = weights if weights is not None else options.path.pretrained
    if source is None:
        raise ConfigError(f"{options.source}: no weights to restore with: give --weights CKPT or set path.pretrained")
    used_masks = mask_dir if needs_mask else None
    jobs = plan_jobs(input_dir, output_dir, mask_dir=used_masks, fmt=fmt)
    load_weights(model, source, strict=options.path.strict_load)
    guard = TargetGuard(jobs, input_dir, output_dir, used_masks)

    own_group = ctx is None and not torch.distributed.is_initialized()
    if ctx is None:
        ctx = distributed.setup(options.device)
    try:
        with _exclusive_output(Path(output_dir), ctx):
            return _run(options, jobs, model, ctx, guard, needs_mask=needs_mask, mask_dir=mask_dir,
                        overwrite=overwrite, progress=progress, desc=f"restore {Path(input_dir).name or input_dir}")
    finally:
        if own_group:
            distributed.teardown()


@contextmanager
def _exclusive_output(output_dir: Path, ctx: DistContext) -> Iterator[None]:
    """Rank 0 locks the output folder and removes stale temporaries; every rank learns of a refusal."""
    with ExitStack() as stack:
        problem = None
        if ctx.is_main:
            try:
                stack.enter_context(output_lock(output_dir))
                remove_stale_image_temporaries(output_dir)
            except RestoreError as exc:
                problem = exc
        problem = distributed.broadcast_object(problem) if ctx.world_size > 1 else problem
        if problem is not None:
            raise problem
        yield


def inference_restorer(model: nn.Module, options: Options, device: torch.device) -> Restorer:
    """``model`` moved to ``device`` in eval mode, prepared by ``options.infer`` (channels_last,
    compile, tf32), wrapped in the :class:`Restorer` that ``options.infer`` configures (tiling,
    self-ensemble, backend, precision): what restore infer runs each batch through."""
    model = prepare_for_inference(model.to(device).eval(), options.infer, device)
    return Restorer.from_options(model, options.infer, device)


def _run(options: Options, jobs: list[Job], model: nn.Module, ctx: DistContext, guard: TargetGuard, *,
         needs_mask: bool, mask_dir: object, overwrite: bool, progress: bool | None, desc: str) -> BatchSummary:
    """This rank's share of ``jobs``, then the summary gathered from every rank."""
    if mask_dir is not None and not needs_mask and ctx.is_main:
        print(f"restore: note: network '{options.network.type}' takes no mask; --mask-dir ignored", file=sys.stderr)
    restorer = inference_restorer(model, options, ctx.device)
    router = restorer.adaptive
    if options.infer.compile and ctx.is_main:
        restorer = FirstCallTimer(restorer, lambda text: tqdm.write(f"restore: {text}", file=sys.stderr))  # type: ignore[assignment]
    in_nc = network_input_channels(model, options)

    mine = jobs[ctx.rank :: ctx.world_size]
    summary = BatchSummary()
    start = time.perf_counter()
    mode = "off" if not ctx.is_main or progress is False else ("bar" if progress else "auto")
    bar = Progress(len(mine), desc, mode=mode, line_stream=sys.stderr, closing_line=False)  # type: ignore[arg-type]
    try:
        _pipeline(restorer, mine, in_nc, ctx, guard, overwrite, summary, bar, max(1, options.infer.batch_size))
    finally:
        bar.close()
    summary.seconds = time.perf_counter() - start
    summary.adaptive = router.tally if router is not None else None
    return BatchSummary.merge(distributed.all_gather_objects(summary))


def _pipeline(restorer: Restorer, jobs: list[Job], in_nc: int | None, ctx: DistContext, guard: TargetGuard,
              overwrite: bool, summary: BatchSummary, bar: Progress, batch_size: int) -> None:
    """Every job through load (background thread(s)) -> network (this thread) -> write (background).

    Loads run ``2 * batch_size`` images ahead; up to ``batch_size`` consecutive loads of one size
    (and channel count) share a forward; writes trail by at most ``batch_size + 1`` images.
    Outcomes are filed in job order, exactly as a one-at-a-time run would file them.
    """

    def verdict(job: Job) -> tuple[str, str] | None:  # cheap checks before any decoding
        refused = guard.problem(job.target)
        if refused is not None:
            return ("failed", one_line(refused))
        if not overwrite and job.target.exists():
            return ("skipped", "")
        return None

    def file(key: object, future: Future[object]) -> None:
        job, pixels = key  # type: ignore[misc]
        line = _outcome_line(job, future, summary, pixels)
        if line is not None:
            summary.failed.append((job.source, line))
            tqdm.write(f"restore: failed: {line}", file=sys.stderr)
        bar.update(1)

    workers = 2 if ctx.device.type == "cuda" else 1  # on a CPU a second decoder would take cores from the network
    reader = Lookahead(jobs, partial(batch_image.load, in_nc=in_nc), depth=2 * batch_size, workers=workers, skip=verdict)
    with reader, WriteBehind(pending=batch_size + 1) as writer:
        while (head := reader.next()) is not None:
            job, loading, known = head
            if loading is None:
                writer.record((job, 0), known)
                continue
            batch = _take_batch(job, loading, reader, writer, batch_size)
            for item, output in zip(batch, _forward(restorer, batch, ctx)):
                if isinstance(output, Tensor):
                    writer.submit((item.job, item.pixels), batch_image.write, item.job, output, item.bit_depth)
                else:
                    writer.record((item.job, 0), output)
            for key, future in writer.finished(room=True):
                file(key, future)
        for key, future in writer.finished(everything=True):
            file(key, future)


def _take_batch(job: Job, loading: Future[Loaded], reader: Lookahead, writer: WriteBehind,
                batch_size: int) -> list[Loaded]:
    """The load of ``job`` plus up to ``batch_size - 1`` following loads of the same key. A first
    load that failed is filed and gives an empty batch; a later one ends the batch and waits for
    its turn, so outcomes stay in job order."""
    try:
        batch = [loading.result()]
    except DataError as exc:
        writer.record((job, 0), exc)
        return []
    while len(batch) < batch_size:
        nxt = reader.peek()
        if nxt is None or nxt[1] is None or nxt[1].exception() is not None or nxt[1].result().key != batch[0].key:
            break
        reader.next()
        batch.append(nxt[1].result())
    return batch


def _forward(restorer: Restorer, batch: list[Loaded], ctx: DistContext) -> list[Tensor | RestoreError]:
    """The network's outputs for a batch (a failure per image where it has none); out of memory
    on a batch retries its images one at a time."""
    if not batch:
        return []
    try:
        return batch_image.run(restorer, batch, ctx.device)
    except torch.OutOfMemoryError:
        if ctx.device.type == "cuda":
            torch.cuda.empty_cache()
        if len(batch) > 1:
            return [out for item in batch for out in _forward(restorer, [item], ctx)]
        return [DataError(f"'{batch[0].job.source}': out of memory on {ctx.device} (try --tile 256)")]


def _outcome_line(job: Job, future: Future[object], summary: BatchSummary, pixels: int) -> str | None:
    """File one finished job under restored/skipped; return its failure line, if it failed.

    A write failure that will hit every later file too (disk full, quota, read-only file
    system) stops the run with that one line instead of repeating it for every file.
    """
    exc = future.exception()
    value = exc if exc is not None else future.result()
    if isinstance(value, tuple):  # a verdict from before loading
        kind, line = value
        if kind == "skipped":
            summary.skipped.append(job.source)
            return None
        return line
    if isinstance(value, OutputError):
        if any(reason in str(value) for reason in _FATAL_WRITE_REASONS):
            raise value
        return _failure_line(job, value)
    if isinstance(value, DataError):
        return _failure_line(job, value)
    if isinstance(value, BaseException):
        raise value
    summary.restored.append(job.source)
    summary.pixels += pixels
    return None
