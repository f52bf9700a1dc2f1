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

Under ``torchrun`` the files are shared out across ranks (``files[rank::world_size]``, taken
from the full sorted listing so that every rank agrees on the split even while others write);
each rank reports its own failures and every rank returns the same, gathered summary.
"""

from __future__ import annotations

import errno
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from restore import registry
from restore.config import Options
from restore.data.image_io import (
    SIXTEEN_BIT_EXTENSIONS,
    image_to_tensor,
    quantize,
    read_image,
    to_channels,
    write_image,
)
from restore.data.image_header import max_pixels
from restore.data.shadow_folder import read_mask
from restore.engine import distributed
from restore.engine.batch_plan import Job, TargetGuard, output_lock, plan_jobs, remove_stale_image_temporaries
from restore.engine.checkpoint import load_weights
from restore.engine.distributed import DistContext
from restore.engine.inference import Restorer
from restore.archs.contract import input_channels, input_keys, unwrap
from restore.engine.network import build_network
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
            out.seconds = max(out.seconds, part.seconds)
        return out

    def line(self) -> str:
        """``restored N, skipped S (output exists), failed F in T s (R images/s)``."""
        rate = len(self.restored) / self.seconds if self.seconds > 0 else 0.0
        return (
            f"restored {len(self.restored)}, skipped {len(self.skipped)} (output exists), "
            f"failed {len(self.failed)} in {self.seconds:.1f} s ({rate:.2f} images/s)"
        )


# --------------------------------------------------------------------------- checks


def network_input_channels(model: nn.Module, options: Options) -> int | None:
    """The channel count the network reads (see :func:`restore.archs.contract.input_channels`)."""
    spec = options.network
    if spec is None:
        return input_channels(model)
    return input_channels(model, spec.args, registry.get(spec.kind, spec.type))


def check_input_keys(model: nn.Module, options: Options, mask_dir: object) -> bool:
    """Whether the network takes a mask; one-line error for inputs batch-restore cannot supply."""
    keys = input_keys(model)
    name = options.network.type if options.network is not None else type(unwrap(model)).__name__
    if not keys or keys[0] != "input" or any(k not in SUPPLIED_KEYS for k in keys):
        raise ConfigError(f"network '{name}' takes inputs {list(keys)}; restore infer can supply only "
                          f"{' and '.join(SUPPLIED_KEYS)} (the image first)")
    needs_mask = "mask" in keys
    if needs_mask and mask_dir is None:
        raise ConfigError(f"network '{name}' needs a shadow mask for every image: give --mask-dir DIR "
                          "(masks with the same relative names as the inputs)")
    return needs_mask


# --------------------------------------------------------------------------- one image


def _channels_for(array: np.ndarray, in_nc: int | None) -> np.ndarray:
    """The image with the network's channel count (alpha dropped when the network does not say)."""
    if in_nc in (1, 3):
        return to_channels(array, in_nc)
    return to_channels(array, 1 if array.shape[2] in (1, 2) else 3)


def restore_image(restorer: Restorer, job: Job, in_nc: int | None, device: torch.device) -> None:
    """Read ``job.source`` (and its mask), run the network, write ``job.target`` atomically.

    Input ``(H, W, C)`` uint8/uint16 -> ``(1, C, H, W)`` float in [0, 1] (+ ``(1, 1, H, W)``
    mask) -> output clamped to [0, 1], quantised (rounded) to the input's bit depth. An output
    with NaN or inf values is a DataError: clamping would turn it into a plausible-looking
    black or white image.
    """
    image = read_image(job.source)
    bit_depth = 16 if image.dtype == np.uint16 else 8
    extra: list[torch.Tensor] = []
    if job.mask is not None:
        mask = read_mask(job.mask)
        if mask.shape[:2] != image.shape[:2]:
            raise DataError(f"mask '{job.mask}' is {mask.shape[1]}x{mask.shape[0]} but input '{job.source}' "
                            f"is {image.shape[1]}x{image.shape[0]}")
        extra.append(image_to_tensor(mask)[None].to(device))
    x = image_to_tensor(_channels_for(image, in_nc))[None].to(device)
    with torch.inference_mode():
        y = restorer(x, *extra)
    bad = int((~torch.isfinite(y)).sum())
    if bad:
        raise DataError(f"'{job.source}': the network output has {bad} non-finite values (NaN or inf) out of "
                        f"{y.numel()}; nothing written (are the weights broken?)")
    out = y[0].float().clamp(0.0, 1.0).permute(1, 2, 0).cpu().numpy()
    if job.target.suffix.lower() not in SIXTEEN_BIT_EXTENSIONS:
        bit_depth = 8  # JPEG/BMP hold 8 bits only
    write_image(job.target, quantize(out, bit_depth), bit_depth=bit_depth)


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

    ``weights`` defaults to ``options.path.pretrained``; tiling, self-ensemble and AMP come from
    ``options.infer``. ``ctx`` is the process's :class:`DistContext` (``setup(options.device)``
    when not given). ``progress``: on rank 0, ``True`` a bar, ``False`` nothing, ``None`` a bar
    when stderr is a terminal and plain progress lines otherwise. Failures are printed to
    stderr as they happen, one line each; the returned summary is the same on every rank and
    covers all of them.
    """
    max_pixels()  # a bad RESTORE_MAX_PIXELS is one line now, not one per image
    model = build_network(options)
    needs_mask = check_input_keys(model, options, mask_dir)
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


def _run(options: Options, jobs: list[Job], model: nn.Module, ctx: DistContext, guard: TargetGuard, *,
         needs_mask: bool, mask_dir: object, overwrite: bool, progress: bool | None, desc: str) -> BatchSummary:
    """This rank's share of ``jobs``, then the summary gathered from every rank."""
    if mask_dir is not None and not needs_mask and ctx.is_main:
        print(f"restore: note: network '{options.network.type}' takes no mask; --mask-dir ignored", file=sys.stderr)
    model = model.to(ctx.device).eval()
    restorer = Restorer.from_options(model, options.infer, ctx.device)
    in_nc = network_input_channels(model, options)

    mine = jobs[ctx.rank :: ctx.world_size]
    summary = BatchSummary()
    start = time.perf_counter()
    mode = "off" if not ctx.is_main or progress is False else ("bar" if progress else "auto")
    bar = Progress(len(mine), desc, mode=mode, line_stream=sys.stderr, closing_line=False)  # type: ignore[arg-type]
    try:
        for job in mine:
            line = _one_job(restorer, job, in_nc, ctx, guard, overwrite, summary)
            if line is not None:
                summary.failed.append((job.source, line))
                tqdm.write(f"restore: failed: {line}", file=sys.stderr)
            bar.update(1)
    finally:
        bar.close()
    summary.seconds = time.perf_counter() - start
    return BatchSummary.merge(distributed.all_gather_objects(summary))


def _one_job(restorer: Restorer, job: Job, in_nc: int | None, ctx: DistContext, guard: TargetGuard,
             overwrite: bool, summary: BatchSummary) -> str | None:
    """Do one job and file it under restored/skipped; return its failure line, if it failed.

    A write failure that will hit every later file too (disk full, quota, read-only file
    system) stops the run with that one line instead of repeating it for every file.
    """
    refused = guard.problem(job.target)
    if refused is not None:
        return one_line(refused)
    if not overwrite and job.target.exists():
        summary.skipped.append(job.source)
        return None
    try:
        restore_image(restorer, job, in_nc, ctx.device)
    except OutputError as exc:
        if any(reason in str(exc) for reason in _FATAL_WRITE_REASONS):
            raise
        return _failure_line(job, exc)
    except DataError as exc:
        return _failure_line(job, exc)
    except torch.OutOfMemoryError:
        if ctx.device.type == "cuda":
            torch.cuda.empty_cache()
        return one_line(f"'{job.source}': out of memory on {ctx.device} (try --tile 256)")
    summary.restored.append(job.source)
    return None
