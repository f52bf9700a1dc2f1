"""``restore test``: score a model on every test set of an option file, each under its protocol.

Layout written under ``<path.results_root>/<name>/``::

    <set>/per_image.csv     one row per image, every metric column
    <set>/summary.json      protocol, figures, image count, weights, options name, version, time
    <set>/summary.md        the table, protocol named in its header
    <set>/images/<name>.png restored images (8-bit), when the set has save_images: true
    summary.md              every set's table
    report.html             self-contained report (tables, best/worst images, zoomed crops)

Under torchrun every rank scores its shard; rank 0 writes the tables and the report, and each
rank writes the restored images of its own shard (distinct files, so gathering pixels to rank 0
is never needed).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

import torch
from torch import Tensor

from restore import __version__
from restore.config import Options
from restore.config.schema import EvalSet
from restore.engine import distributed
from restore.engine.distributed import DistContext
from restore.engine.evaluate import EvalResult, evaluate, network_inputs
from restore.engine.network import build_network, input_keys
from restore.errors import ConfigError, DataError
from restore.utils.files import atomic_write


def resolve_weights(options: Options, weights: str | os.PathLike | None) -> Path:
    """``--weights`` if given, else ``path.pretrained``; a one-line ConfigError when neither is set."""
    chosen = weights if weights is not None else options.path.pretrained
    if chosen is None:
        raise ConfigError(
            f"{options.source or options.name}: no weights to evaluate: set key 'path.pretrained' "
            "in the option file or pass --weights CKPT"
        )
    return Path(chosen)


def image_path(folder: Path, name: str) -> Path:
    """``folder/<name>.png``; names may hold '/' sub-folders but must stay inside ``folder``."""
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise DataError(f"cannot save image named {name!r}: a sample name must be a relative path without '..'")
    return folder.joinpath(*rel.parts[:-1], rel.parts[-1] + ".png")


def _cell(value: Any) -> Any:
    return "" if value is None else value


def write_csv(path: Path, result: EvalResult) -> Path:
    """Per-image rows (``name`` then the metric columns; an absent region value is empty)."""
    columns = ["name", *result.columns]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in result.rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    return atomic_write(path, text.getvalue())


def _json_number(value: Any) -> Any:
    """Strict JSON has no inf/NaN: those become the strings 'inf', '-inf', 'nan'."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _write_text(path: Path, text: str) -> Path:
    return atomic_write(path, text)


def set_summary(result: EvalResult, spec: EvalSet, options: Options, weights: Path, timestamp: str) -> dict[str, Any]:
    """What ``summary.json`` holds for one set."""
    from restore.metrics.protocols import get_protocol

    return {
        "set": result.name,
        "protocol": result.protocol,
        "protocol_label": result.label,
        "protocol_description": get_protocol(result.protocol).description,
        "metrics": {k: _json_number(v) for k, v in result.summary.items()},
        "n_images": result.n_images,
        "crop_border": get_protocol(result.protocol).crop_border if spec.crop_border is None else spec.crop_border,
        "weights": str(weights),
        "options": options.name,
        "option_file": options.source or None,
        "restore_version": __version__,
        "timestamp": timestamp,
        "seconds": round(result.seconds, 3),
    }


def _restore_one(restorer: Callable[..., Tensor], dataset: Any, index: int, keys: tuple[str, ...],
                 device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Re-load sample ``index`` (eval sets are deterministic per index) and restore it again."""
    sample = dataset[index]
    batch = {k: v[None] if isinstance(v, Tensor) else v for k, v in sample.items()}
    output = restorer(*network_inputs(batch, keys, device))
    return sample["input"], output[0].detach().float().cpu(), sample["target"]


def _save_output(folder: Path, name: str, index: int, x: Tensor, y: Tensor, t: Tensor) -> None:
    """``on_image`` callback: write the restored image ``y`` (C, H, W) under ``folder``."""
    from restore.data.image_io import write_image

    write_image(image_path(folder, name), y)


def run_benchmark(
    options: Options,
    *,
    weights: str | os.PathLike | None = None,
    ctx: DistContext | None = None,
    echo: Callable[[str], None] | None = print,
) -> dict[str, EvalResult]:
    """Evaluate the option file's network on each of ``datasets.test``; returns set -> result.

    ``weights``: checkpoint to evaluate (default ``path.pretrained``); ``ctx``: process context
    (default: single process on ``options.device``); ``echo``: where rank 0 prints tables and
    written paths (None: silent). Files: see the module docstring.
    """
    from restore.engine import checkpoint
    from restore.engine.inference import Restorer
    from restore.engine.report import Panel, needed, panel, write_report

    if ctx is None:
        ctx = DistContext(device=distributed.resolve_device(options.device))
    if not options.datasets.test:
        raise ConfigError(f"{options.source or options.name}: missing required key 'datasets.test' (needed by 'restore test')")
    weights_path = resolve_weights(options, weights)
    model = build_network(options)
    checkpoint.load_weights(model, weights_path, strict=options.path.strict_load)
    model.to(ctx.device).eval()
    restorer = Restorer.from_options(model, options.infer, ctx.device)
    keys = input_keys(model)
    say = echo if (echo is not None and ctx.is_main) else (lambda _text: None)
    root = Path(options.path.results_root) / options.name
    timestamp = datetime.now(timezone.utc).isoformat(timespec="seconds")

    results: dict[str, EvalResult] = {}
    report_images: dict[str, dict[int, Panel]] = {}  # small: page-ready PNGs, not full images
    for set_name, spec in options.datasets.test.items():
        out_dir = root / set_name
        dataset = spec.dataset.build()
        dataset.verify()  # a bad file is one line now, not a worker traceback mid-run
        on_image = partial(_save_output, out_dir / "images") if spec.save_images else None
        result = evaluate(restorer, dataset, spec, ctx, on_image=on_image, name=set_name, keys=keys, finite=True)
        results[set_name] = result
        if not ctx.is_main:
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        write_csv(out_dir / "per_image.csv", result)
        payload = set_summary(result, spec, options, weights_path, timestamp)
        _write_text(out_dir / "summary.json", json.dumps(payload, indent=2) + "\n")
        title = f"{set_name}: {result.n_images} images, weights {weights_path}"
        _write_text(out_dir / "summary.md", f"# {title}\n\n{result.table}\n")
        wanted = needed({set_name: result})[set_name]
        report_images[set_name] = {i: panel(_restore_one(restorer, dataset, i, keys, ctx.device)) for i in wanted}
        say(f"\n{title}  ({result.seconds:.1f} s)\n{result.table}")
        say(f"wrote {out_dir / 'per_image.csv'}, {out_dir / 'summary.json'}, {out_dir / 'summary.md'}"
            + (f", {out_dir / 'images'}/" if spec.save_images else ""))

    if ctx.is_main:
        sections = [f"# {options.name}\n", f"weights: {weights_path}  \nrestore {__version__}, {timestamp}\n"]
        for set_name, result in results.items():
            sections.append(f"## {set_name}\n\n{result.table}\n")
        _write_text(root / "summary.md", "\n".join(sections))
        meta = {"weights": str(weights_path), "option file": options.source or None, "restore": __version__,
                "generated": timestamp}
        report = write_report(root / "report.html", results, report_images, title=f"{options.name}", meta=meta)
        say(f"\nwrote {root / 'summary.md'} and {report}")
        sys.stdout.flush()
    distributed.barrier()
    return results
