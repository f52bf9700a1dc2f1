"""``restore test``: score a model on every test set of an option file, each under its protocol.

Layout written under ``<path.results_root>/<name>/``::

    <set>/per_image.csv     one row per image, every metric column
    <set>/summary.json      protocol, figures (and the degraded input's), image count, weights, ...
    <set>/summary.md        the table, protocol named in its header
    <set>/images/<name>.png restored images (8-bit), when the set has save_images: true, and
                            always for a set without ground truth (restored, not scored)
    summary.md              every set's table
    table.md|csv|tex        one row per set (and per degraded input) at the chosen precision
    results.json            the run (weights, options, version, time) and every set's summary
    report.html             self-contained report (summary table, best/worst images, crops)

The folder is locked for the run, written into a staging folder and swapped into place at the
end (:mod:`restore.engine.results_folder`): a run that fails leaves the previous results as
they were. Under torchrun every rank scores its shard; rank 0 writes the tables and the report,
and each rank writes the restored images of its own shard (distinct files, so gathering pixels to
rank 0 is never needed).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

import torch
from torch import Tensor

from restore import __version__
from restore.archs.contract import input_keys
from restore.config import Options
from restore.config.schema import EvalSet
from restore.engine import distributed
from restore.engine.background import WriteBehind
from restore.engine.distributed import DistContext
from restore.engine.evaluate import EvalResult, evaluate, network_inputs
from restore.engine.network import build_network
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


def per_image_csv(result: EvalResult) -> str:
    """Per-image rows as CSV text (``name`` then the metric columns; an absent value is empty)."""
    columns = ["name", *result.columns]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in result.rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    return text.getvalue()


def write_csv(path: Path, result: EvalResult) -> Path:
    """Write :func:`per_image_csv` to ``path`` atomically."""
    return atomic_write(path, per_image_csv(result))


def _json_number(value: Any) -> Any:
    """Strict JSON has no inf/NaN: those become the strings 'inf', '-inf', 'nan'."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def set_summary(result: EvalResult, spec: EvalSet, options: Options, weights: Path, timestamp: str) -> dict[str, Any]:
    """What ``summary.json`` holds for one set (and ``results.json`` for every set)."""
    from restore.metrics.protocols import get_protocol

    protocol = get_protocol(result.protocol) if result.scored else None
    crop = None if protocol is None else (protocol.crop_border if spec.crop_border is None else spec.crop_border)
    inputs = result.input_summary
    return {
        "set": result.name,
        "scored": result.scored,
        "protocol": result.protocol or None,
        "protocol_label": result.label,
        "protocol_description": protocol.description if protocol is not None else None,
        "metrics": {k: _json_number(v) for k, v in result.summary.items()},
        "input_metrics": {k: _json_number(v) for k, v in inputs.items()} if inputs else None,
        "n_images": result.n_images,
        "crop_border": crop,
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


def _save_output(folder: Path, name: str, index: int, x: Tensor, y: Tensor, t: Tensor | None) -> None:
    """``on_image`` callback: write the restored image ``y`` (C, H, W) under ``folder``, refusing
    any path that resolves outside it."""
    from restore.data.image_io import write_image
    from restore.utils.files import check_inside

    path = image_path(folder, name)
    check_inside(path, folder)
    write_image(path, y)


def _save_behind(writer: WriteBehind, folder: Path, name: str, index: int, x: Tensor, y: Tensor,
                 t: Tensor | None) -> None:
    """``on_image`` callback: queue :func:`_save_output` on the writer thread (at most a few
    behind); a write that already failed raises here."""
    writer.submit(name, _save_output, folder, name, index, x, y, t)
    for _key, write in writer.finished(room=True):
        write.result()


class PixelCount:
    """A restorer that also counts the input pixels it restored (``(B, C, H, W)`` -> B*H*W), for MP/s."""

    def __init__(self, restorer: Callable[..., Tensor]) -> None:
        self.restorer, self.pixels = restorer, 0

    def __call__(self, x: Tensor, *extra: Tensor) -> Tensor:
        self.pixels += x.shape[0] * x.shape[-2] * x.shape[-1]
        return self.restorer(x, *extra)


def _gathered_flops(router: Any) -> Any:
    """This set's adaptive FLOP tally summed over the ranks (every rank takes part)."""
    parts = distributed.all_gather_objects(router.reset())
    total = parts[0]
    for part in parts[1:]:
        total.merge(part)
    return total


def rate_text(images: int, pixels: float, seconds: float) -> str:
    """``12.3 s, 1.95 images/s, 0.768 MP/s`` (input megapixels)."""
    per_s = 1.0 / seconds if seconds > 0 else 0.0
    return f"{seconds:.1f} s, {images * per_s:.2f} images/s, {pixels / 1e6 * per_s:.3g} MP/s"


def _build_sets(options: Options) -> dict[str, Any]:
    """Build and verify every test set before anything is written (a bad file is one line now)."""
    from restore.engine.results_folder import check_set_name
    from restore.metrics.evaluator import Evaluator

    built = {}
    for set_name, spec in options.datasets.test.items():
        check_set_name(set_name)
        Evaluator(spec.protocol, spec.metrics, spec.crop_border)  # unknown metric, missing LPIPS file: now
        dataset = spec.dataset.build()
        dataset.verify()
        built[set_name] = dataset
    return built


def run_benchmark(
    options: Options,
    *,
    weights: str | os.PathLike | None = None,
    ctx: DistContext | None = None,
    echo: Callable[[str], None] | None = print,
    table_metrics: Sequence[str] | None = None,
    precision: Mapping[str, int] | None = None,
    progress: str = "auto",
) -> dict[str, EvalResult]:
    """Evaluate the option file's network on each of ``datasets.test``; returns set -> result.

    ``weights``: checkpoint to evaluate (default ``path.pretrained``); ``ctx``: process context
    (default: single process on ``options.device``); ``echo``: where rank 0 prints tables and
    written paths (None: silent); ``table_metrics`` / ``precision``: the columns and decimals of
    ``table.*`` (:mod:`restore.engine.results_table`); ``progress``: ``auto``, ``bar``, ``lines``
    or ``off`` (:mod:`restore.utils.progress`). Files: see the module docstring.
    """
    from restore.engine import checkpoint
    from restore.engine.evaluate import restore_only, shard_indices
    from restore.engine.inference import Restorer
    from restore.engine.report import Panel, needed, panel
    from restore.engine.results_folder import TOP_LEVEL, ResultsFolder
    from restore.engine.results_table import check_metric_keys
    from restore.engine.torch_speed import FirstCallTimer, prepare_for_inference
    from restore.utils.progress import Progress

    if ctx is None:
        ctx = DistContext(device=distributed.resolve_device(options.device))
    if not options.datasets.test:
        raise ConfigError(f"{options.source or options.name}: missing required key 'datasets.test' (needed by 'restore test')")
    table_metrics = check_metric_keys(table_metrics)
    weights_path = resolve_weights(options, weights)
    model = build_network(options)
    checkpoint.load_weights(model, weights_path, strict=options.path.strict_load)
    prepare_for_inference(model.to(ctx.device).eval(), options.infer, ctx.device)
    restorer = Restorer.from_options(model, options.infer, ctx.device)
    engine = {"backend": restorer.backend, "precision": restorer.precision}  # named in every header
    router = restorer.adaptive  # infer.adaptive: its settings in every header, its FLOPs per set
    if router is not None:
        engine["adaptive"] = router.describe()
    if options.infer.compile and echo is not None and ctx.is_main:
        restorer = FirstCallTimer(restorer, echo)  # type: ignore[assignment]
    keys = input_keys(model)
    say = echo if (echo is not None and ctx.is_main) else (lambda _text: None)
    timestamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    built = _build_sets(options)

    results: dict[str, EvalResult] = {}
    records: list[dict[str, Any]] = []
    report_images: dict[str, dict[int, Panel]] = {}  # small: page-ready PNGs, not full images
    folder = ResultsFolder(Path(options.path.results_root) / options.name, main=ctx.is_main)
    with folder:
        distributed.barrier()  # the staging folder exists before any rank writes into it
        for set_name, spec in options.datasets.test.items():
            dataset = built[set_name]
            scored = bool(getattr(dataset, "has_target", True))
            images = folder.path(f"{set_name}/images") if (spec.save_images or not scored) else None
            shard = len(shard_indices(len(dataset), ctx.rank, ctx.world_size))
            bar = Progress(shard, set_name, mode=progress if ctx.is_main else "off")  # type: ignore[arg-type]
            counted = PixelCount(restorer)
            if router is not None:
                router.reset()
            with WriteBehind(pending=2) as writer:  # images are encoded and written while the next one runs
                on_image = partial(_save_behind, writer, images) if images is not None else None
                if scored:
                    result = evaluate(counted, dataset, spec, ctx, on_image=on_image, name=set_name, keys=keys,
                                      score_input=True, progress=bar.update, finite=True)
                else:
                    assert on_image is not None
                    result = restore_only(counted, dataset, spec, ctx, on_image=on_image, name=set_name, keys=keys,
                                          progress=bar.update)
                for _key, write in writer.finished(everything=True):
                    write.result()  # a failed write raises here
            bar.close()
            pixels = float(distributed.all_reduce_sum(torch.tensor([float(counted.pixels)], dtype=torch.float64,
                                                                   device=ctx.device)))
            results[set_name] = result
            flops = _gathered_flops(router) if router is not None else None
            if not ctx.is_main:
                continue
            record = {**set_summary(result, spec, options, weights_path, timestamp), **engine}
            if flops is not None:
                record["adaptive_flops"] = flops.as_dict()
            records.append(record)
            folder.write(f"{set_name}/per_image.csv", per_image_csv(result))
            folder.write(f"{set_name}/summary.json", json.dumps(record, indent=2) + "\n")
            title = (f"{set_name}: {result.n_images} images, weights {weights_path}, "
                     f"backend {engine['backend']}, precision {engine['precision']}")
            if flops is not None:
                title += f", adaptive ({engine['adaptive']}): {flops.text()}"
            folder.write(f"{set_name}/summary.md", f"# {title}\n\n{result.table}\n")
            if scored:
                wanted = needed({set_name: result})[set_name]
                report_images[set_name] = {i: panel(_restore_one(restorer, dataset, i, keys, ctx.device)) for i in wanted}
            note = "" if scored else " (no ground truth: restored and saved, not scored)"
            say(f"\n{title}{note}  ({rate_text(result.n_images, pixels, result.seconds)})\n{result.table}")

        if ctx.is_main:
            table_md = _write_run_files(folder, options, results, records, report_images, weights_path, timestamp,
                                        table_metrics, precision, engine)
        distributed.barrier()  # every rank's images are written
        if ctx.is_main:
            folder.commit([*results, *TOP_LEVEL])
    if ctx.is_main:
        root = folder.root
        for set_name, spec in options.datasets.test.items():
            saved = spec.save_images or not results[set_name].scored
            say(f"wrote {root / set_name / 'per_image.csv'}, {root / set_name / 'summary.json'}, "
                f"{root / set_name / 'summary.md'}" + (f", {root / set_name / 'images'}/" if saved else ""))
        say(f"wrote {root / 'summary.md'}, {root / 'table.md'} (.csv, .tex), {root / 'results.json'} and "
            f"{root / 'report.html'}\n\n{table_md}")
        sys.stdout.flush()
    return results



def _write_run_files(folder: Any, options: Options, results: Mapping[str, EvalResult], records: list[dict[str, Any]],
                     report_images: Mapping[str, Any], weights_path: Path, timestamp: str,
                     table_metrics: Sequence[str] | None, precision: Mapping[str, int] | None,
                     engine: Mapping[str, str]) -> str:
    """The run-level files (staged): summary.md, table.*, results.json, report.html; returns table.md.

    ``engine``: the backend and precision the network ran at, named in every header."""
    from restore.engine.report import write_report
    from restore.engine.results_table import WRITERS, run_table, to_html

    table = run_table(records, table_metrics, precision)
    for suffix, writer in WRITERS.items():
        folder.write(f"table.{suffix}", writer(table))
    table_md = WRITERS["md"](table)
    adaptive = f"adaptive: {engine['adaptive']}  \n" if "adaptive" in engine else ""
    sections = [f"# {options.name}\n", f"weights: {weights_path}  \nbackend: {engine['backend']}, precision: "
                f"{engine['precision']}  \n{adaptive}restore {__version__}, {timestamp}\n",
                f"## all sets\n\n{table_md}"]
    for set_name, result in results.items():
        sections.append(f"## {set_name}\n\n{result.table}\n")
    folder.write("summary.md", "\n".join(sections))
    run = {"name": options.name, "weights": str(weights_path), "option_file": options.source or None, **engine,
           "restore_version": __version__, "timestamp": timestamp, "sets": records}
    folder.write("results.json", json.dumps(run, indent=2) + "\n")
    meta = {"weights": str(weights_path), "option file": options.source or None, **engine, "restore": __version__,
            "generated": timestamp}
    write_report(folder.path("report.html"), results, report_images, title=f"{options.name}", meta=meta,
                 summary_table=to_html(table))
    return table_md
