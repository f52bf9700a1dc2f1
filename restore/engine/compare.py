"""``restore compare``: several ``restore test`` runs side by side, one row per run, one column
group per set, and never two protocols in one column.

Why refuse: a PSNR under the BasicSR protocol and one under the deraining MATLAB protocol (or
with a different border crop) are different numbers that look alike; a column that mixes them
is the silent error this framework exists to prevent. A run is read from its results folder's
``results.json`` (or, for folders written before it existed, from ``<set>/summary.json``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from restore.engine.results_table import MISSING, Table, chosen_metrics, format_value, metric_label
from restore.errors import DataError


@dataclass
class Run:
    """One results folder: its label, run facts and the per-set records (``summary.json`` payloads)."""

    label: str
    folder: Path
    facts: dict[str, Any]
    sets: list[dict[str, Any]] = field(default_factory=list)

    def record(self, set_name: str) -> dict[str, Any] | None:
        return next((r for r in self.sets if r.get("set") == set_name), None)


def resolve_run(arg: str, results_root: str | Path = "results") -> Path:
    """A results folder given as a path, or as a run name under ``results_root`` (one-line errors)."""
    path = Path(arg)
    for candidate in (path, Path(results_root) / arg):
        if candidate.is_dir():
            return candidate
    if path.exists():
        raise DataError(f"'{arg}' is a file, not a results folder")
    raise DataError(f"'{arg}' is neither a results folder nor a run name under '{results_root}/'")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"cannot read '{path}': {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"'{path}' is not valid JSON ({exc}); was it written by `restore test`?") from None


def _check_record(rec: Any, where: Path) -> dict[str, Any]:
    if not isinstance(rec, dict) or not isinstance(rec.get("set"), str) or not isinstance(rec.get("metrics"), dict):
        raise DataError(f"'{where}' does not hold `restore test` set summaries (each needs 'set' and 'metrics')")
    return rec


def load_run(folder: Path) -> Run:
    """Read a results folder; a one-line DataError when it is not one."""
    index = folder / "results.json"
    if index.is_file():
        data = _read_json(index)
        if not isinstance(data, dict) or not isinstance(data.get("sets"), list):
            raise DataError(f"'{index}' is not a `restore test` results index (no 'sets' list)")
        sets = [_check_record(r, index) for r in data["sets"]]
        facts = {k: v for k, v in data.items() if k != "sets"}
    else:
        files = sorted(p for p in folder.glob("*/summary.json") if not p.parent.name.startswith("."))
        if not files:
            raise DataError(
                f"'{folder}' is not a `restore test` results folder (no results.json, no <set>/summary.json)"
            )
        sets = [_check_record(_read_json(p), p) for p in files]
        first = sets[0]
        facts = {k: first.get(k) for k in ("weights", "option_file", "restore_version", "timestamp")}
    return Run(folder.name, folder, facts, sets)


def load_runs(args: Sequence[str], results_root: str | Path = "results") -> list[Run]:
    """Every run named on the command line; labels are folder names (paths where two clash)."""
    runs = [load_run(resolve_run(a, results_root)) for a in args]
    labels = [r.label for r in runs]
    for run, arg in zip(runs, args):
        if labels.count(run.label) > 1:
            run.label = arg
    return runs


def _protocol_key(rec: Mapping[str, Any]) -> tuple[str, int]:
    return str(rec.get("protocol")), int(rec.get("crop_border") or 0)


def _protocol_text(key: tuple[str, int]) -> str:
    return key[0] + (f", crop {key[1]}" if key[1] else "")


def protocol_lines(runs: Sequence[Run]) -> list[str]:
    """One line per run: folder, weights, and every set's protocol."""
    lines = []
    for run in runs:
        sets = ", ".join(
            f"{r['set']}: {_protocol_text(_protocol_key(r)) if r.get('scored', True) else 'not scored'}"
            for r in run.sets
        )
        weights = run.facts.get("weights") or "?"
        lines.append(f"{run.label}: {run.folder} (weights {weights}); {sets}")
    return lines


def _same(a: Any, b: Any) -> bool:
    try:
        x, y = float(a), float(b)
    except (TypeError, ValueError):
        return a == b
    return (math.isnan(x) and math.isnan(y)) or x == y or abs(x - y) <= 1e-9 * max(1.0, abs(x))


def compare_table(runs: Sequence[Run], metrics: Sequence[str] | None = None,
                  precision: Mapping[str, int] | None = None) -> Table:
    """Rows = runs (plus a first ``input`` row with the degraded inputs' figures), columns = each
    set's metrics. Raises a one-line DataError when a set was scored under different protocols."""
    names: list[str] = []
    for run in runs:
        for rec in run.sets:
            if rec.get("scored", True) and rec["set"] not in names:
                names.append(rec["set"])
    if not names:
        raise DataError("none of the runs has a scored set to compare")
    columns: list[tuple[str, str]] = []
    header = ["run"]
    notes: list[str] = []
    for name in names:
        recs = [(run, run.record(name)) for run in runs]
        scored = [(run, r) for run, r in recs if r is not None and r.get("scored", True)]
        keys = {_protocol_key(r) for _, r in scored}
        if len(keys) > 1:
            which = "; ".join(f"{run.label}: {_protocol_text(_protocol_key(r))}" for run, r in scored)
            raise DataError(
                f"set '{name}' was scored under different protocols ({which}); their figures cannot share a "
                "column: re-run `restore test` with the same protocol (and crop_border) for every run"
            )
        counts = {int(float(r["metrics"].get("n_images", r.get("n_images", 0)) or 0)) for _, r in scored}
        if len(counts) > 1:
            notes.append(f"{name}: the runs scored different numbers of images ({', '.join(map(str, sorted(counts)))})")
        protocol = _protocol_text(next(iter(keys)))
        for key in chosen_metrics([r for _, r in scored], metrics):
            columns.append((name, key))
            header.append(f"{name} {metric_label(key)} [{protocol}]")
    rows: list[list[str]] = []
    inputs: list[str] = []
    for name, key in columns:
        values = [r["input_metrics"].get(key) for run in runs
                  if (r := run.record(name)) is not None and r.get("input_metrics")]
        inputs.append(format_value(values[0], key, precision) if values else MISSING)
        if values and not all(_same(v, values[0]) for v in values):
            notes.append(f"{name}: the runs' degraded inputs score differently ({key}); the data differ")
    if any(c != MISSING for c in inputs):
        rows.append(["input", *inputs])
    for run in runs:
        cells = []
        for name, key in columns:
            rec = run.record(name)
            ok = rec is not None and rec.get("scored", True)
            cells.append(format_value(rec["metrics"].get(key), key, precision) if ok else MISSING)  # type: ignore[index]
        rows.append([run.label, *cells])
    return Table(header, rows, list(dict.fromkeys(notes)), numeric_from=1)
