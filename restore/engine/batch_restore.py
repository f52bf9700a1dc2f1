"""Batch-restore: run a trained network over every image of a folder (``restore infer``).

The run is built to be restarted and to survive bad files:

* every image under the input folder (recursively, :func:`~restore.data.image_io.list_images`)
  is written to the same relative path under the output folder, with the same name, bit depth
  (8 or 16) and format unless ``fmt`` asks for another format (16-bit images become 8-bit in a
  format that cannot hold 16 bits: JPEG, BMP);
* outputs are written atomically (temporary file + rename), and an output that already exists
  is skipped unless ``overwrite``, so a killed run continues where it stopped;
* an unreadable or corrupt input (or mask) is reported in one line and skipped; the run goes on
  and the returned :class:`BatchSummary` lists it;
* everything a user can get wrong about the run itself (weights missing or not fitting the
  network, a mask-taking network without masks, an output folder inside the input folder, two
  inputs mapping to one output) is a one-line :class:`~restore.errors.RestoreError` raised
  before the first image is touched.

Under ``torchrun`` the files are shared out across ranks (``files[rank::world_size]``, taken
from the full sorted listing so that every rank agrees on the split even while others write);
each rank reports its own failures and every rank returns the same, gathered summary.
"""

from __future__ import annotations

import inspect
import sys
import time
from collections.abc import Sequence
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
    list_images,
    quantize,
    read_image,
    to_channels,
    write_image,
)
from restore.data.shadow_folder import read_mask
from restore.engine import distributed
from restore.engine.checkpoint import load_weights
from restore.engine.distributed import DistContext
from restore.engine.inference import Restorer
from restore.engine.network import build_network, input_keys, unwrap
from restore.errors import ConfigError, DataError

#: Output formats ``fmt`` may name, and the extension each one writes.
FORMATS: dict[str, str] = {"png": ".png", "jpg": ".jpg", "tif": ".tif", "bmp": ".bmp"}
#: The extra inputs batch-restore can supply besides the image itself.
SUPPLIED_KEYS = ("input", "mask")


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
        return (
            f"restored {len(self.restored)}, skipped {len(self.skipped)} (output exists), "
            f"failed {len(self.failed)} in {self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class Job:
    """One image to restore: where it is read, where it goes, and its mask (if any)."""

    source: Path
    target: Path
    mask: Path | None = None


# --------------------------------------------------------------------------- checks and plan


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (both already resolved)."""
    return path == folder or folder in path.parents


def check_output_folder(input_dir: Path, output_dir: Path, what: str = "input") -> None:
    """Refuse an output folder equal to, or inside, a folder the run reads from."""
    inp, out = input_dir.resolve(), output_dir.resolve()
    if out == inp:
        raise DataError(f"output folder '{output_dir}' is the {what} folder '{input_dir}'; "
                        "restore infer never writes into its input (choose another --output)")
    if _inside(out, inp):
        raise DataError(f"output folder '{output_dir}' is inside the {what} folder '{input_dir}'; "
                        "restore infer never writes into its input (choose another --output)")


def _mask_index(mask_dir: Path) -> dict[str, list[Path]]:
    """Mask files by relative path without extension (``sub/a``), so any image extension pairs."""
    index: dict[str, list[Path]] = {}
    for path in list_images(mask_dir):
        index.setdefault(path.relative_to(mask_dir).with_suffix("").as_posix(), []).append(path)
    return index


def plan_jobs(input_dir: str | Path, output_dir: str | Path, *, mask_dir: str | Path | None = None,
              fmt: str | None = None) -> list[Job]:
    """Every image under ``input_dir`` with its output path (and mask), in sorted order.

    Raises a one-line DataError for: an output folder inside a folder the run reads; two
    inputs that would be written to the same output (``a.jpg`` and ``a.png`` with ``fmt``);
    an output that would land inside the input folder; inputs without a mask, or with two.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if fmt is not None and fmt not in FORMATS:
        raise ConfigError(f"unknown output format {fmt!r} (use {', '.join(FORMATS)})")
    check_output_folder(input_dir, output_dir)
    if mask_dir is not None:
        check_output_folder(Path(mask_dir), output_dir, what="mask")
    sources = list_images(input_dir)
    masks = _mask_index(Path(mask_dir)) if mask_dir is not None else None
    # Input inside output: an output may then fall on an input file (out/in/x.png for in/in/x.png).
    input_real = input_dir.resolve()
    nested = _inside(input_real, output_dir.resolve())

    jobs: list[Job] = []
    claimed: dict[Path, Path] = {}
    unmasked: list[Path] = []
    for source in sources:
        rel = source.relative_to(input_dir)
        target = output_dir / (rel.with_suffix(FORMATS[fmt]) if fmt else rel)
        if target in claimed:
            raise DataError(f"inputs '{claimed[target]}' and '{source}' would both be written to '{target}' "
                            "(same name, different extension); restore them separately")
        claimed[target] = source
        if nested and _inside(target.resolve(), input_real):
            raise DataError(f"output '{target}' would overwrite a file inside the input folder '{input_dir}'; "
                            "choose an --output outside it")
        mask = None
        if masks is not None:
            found = masks.get(rel.with_suffix("").as_posix(), [])
            if len(found) > 1:
                raise DataError(f"input '{source}' has several masks in '{mask_dir}': "
                                + ", ".join(f"'{p.name}'" for p in found))
            if not found:
                unmasked.append(source)
                continue
            mask = found[0]
        jobs.append(Job(source, target, mask))
    if unmasked:
        more = f" and {len(unmasked) - 1} more" if len(unmasked) > 1 else ""
        raise DataError(f"no mask in '{mask_dir}' for input '{unmasked[0]}'{more} "
                        "(masks are paired by relative path and name, any image extension)")
    return jobs


def network_input_channels(model: nn.Module, options: Options) -> int | None:
    """The channel count the network takes, when it says: an ``in_nc`` attribute, else the
    ``in_nc`` of the option file, else its constructor's default ``in_nc``; ``None`` if none."""
    value = getattr(unwrap(model), "in_nc", None)
    spec = options.network
    if value is None and spec is not None:
        value = spec.args.get("in_nc")
        if value is None:
            try:
                param = inspect.signature(registry.get(spec.kind, spec.type)).parameters.get("in_nc")
            except (TypeError, ValueError):
                param = None
            if param is not None and isinstance(param.default, int):
                value = param.default
    return int(value) if value is not None else None


def _check_input_keys(model: nn.Module, options: Options, mask_dir: object) -> bool:
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
    mask) -> output clamped to [0, 1], quantised (rounded) to the input's bit depth.
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
    out = y[0].float().clamp(0.0, 1.0).permute(1, 2, 0).cpu().numpy()
    if job.target.suffix.lower() not in SIXTEEN_BIT_EXTENSIONS:
        bit_depth = 8  # JPEG/BMP hold 8 bits only
    write_image(job.target, quantize(out, bit_depth), bit_depth=bit_depth)


def _failure_line(job: Job, exc: BaseException) -> str:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return reason if str(job.source) in reason else f"'{job.source}': {reason}"


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
    when not given). ``progress``: show a bar on rank 0 (``None``: only when stderr is a
    terminal). Failures are printed to stderr as they happen, one line each; the returned
    summary is the same on every rank and covers all of them.
    """
    model = build_network(options)
    needs_mask = _check_input_keys(model, options, mask_dir)
    source = weights if weights is not None else options.path.pretrained
    if source is None:
        raise ConfigError(f"{options.source}: no weights to restore with: give --weights CKPT or set path.pretrained")
    jobs = plan_jobs(input_dir, output_dir, mask_dir=mask_dir if needs_mask else None, fmt=fmt)
    load_weights(model, source, strict=options.path.strict_load)

    own_group = ctx is None and not torch.distributed.is_initialized()
    if ctx is None:
        ctx = distributed.setup(options.device)
    try:
        return _run(options, jobs, model, ctx, needs_mask=needs_mask, mask_dir=mask_dir, overwrite=overwrite,
                    progress=progress, desc=f"restore {Path(input_dir).name or input_dir}")
    finally:
        if own_group:
            distributed.teardown()


def _run(options: Options, jobs: list[Job], model: nn.Module, ctx: DistContext, *, needs_mask: bool,
         mask_dir: object, overwrite: bool, progress: bool | None, desc: str) -> BatchSummary:
    """This rank's share of ``jobs``, then the summary gathered from every rank."""
    if mask_dir is not None and not needs_mask and ctx.is_main:
        print(f"restore: note: network '{options.network.type}' takes no mask; --mask-dir ignored", file=sys.stderr)
    model = model.to(ctx.device).eval()
    restorer = Restorer.from_options(model, options.infer, ctx.device)
    in_nc = network_input_channels(model, options)

    mine = jobs[ctx.rank :: ctx.world_size]
    summary = BatchSummary()
    start = time.perf_counter()
    bar = tqdm(mine, total=len(mine), unit="img", file=sys.stderr, dynamic_ncols=True, desc=desc,
               disable=(not ctx.is_main) or (None if progress is None else not progress))
    for job in bar:
        if not overwrite and job.target.exists():
            summary.skipped.append(job.source)
            continue
        try:
            restore_image(restorer, job, in_nc, ctx.device)
        except DataError as exc:
            line = _failure_line(job, exc)
        except torch.OutOfMemoryError:
            if ctx.device.type == "cuda":
                torch.cuda.empty_cache()
            line = f"'{job.source}': out of memory on {ctx.device} (try --tile 256)"
        else:
            summary.restored.append(job.source)
            continue
        summary.failed.append((job.source, line))
        tqdm.write(f"restore: failed: {line}", file=sys.stderr)
    bar.close()
    summary.seconds = time.perf_counter() - start
    return BatchSummary.merge(distributed.all_gather_objects(summary))
