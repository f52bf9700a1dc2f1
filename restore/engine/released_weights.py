"""The table of released checkpoints restore loads, gathered from the method folders.

Why: an official file is useless without knowing which option file loads it, where its authors
publish it and what it should score. Each method keeps its own rows next to its code, in
``restore/methods/<method>/released_weights.toml`` (one home per method; package data), and this
module gathers them into one table for ``restore weights``. restore never downloads anything:
``url`` says where to fetch a file by hand.

A file's top-level keys are defaults for its ``[[weights]]`` rows; a row may override any of them.

=================  =====================================================================
key                meaning
=================  =====================================================================
``task``           what the file restores, in words ("denoise, Gaussian sigma 25")
``file``           the file name as released ("" when the authors published none)
``url``            where the authors publish it (a project or repository page)
``where``          where on that page ("Google Drive links in the README")
``infer``          the option file ``restore infer`` loads it with (repository-relative)
``test``           the option file ``restore test`` scores it with ("" when there is none)
``layout_options`` the option file whose network the file fits (default: ``infer``)
``params``         parameter count, from the official state_dict listing ``listing``
``listing``        the key listing the count comes from (``specs/keys/<listing>``)
``protocol``       restore's evaluation protocol of the ``test`` file
``paper``          the paper's number on the ``test`` file's sets, under that protocol
``layout``         the file's wrapper as released (plain state_dict, prefixes ...)
``notes``          what is uncertain (recalled values, inferred layouts, unconfirmed names)
=================  =====================================================================

A method without released weights says why in a top-level ``none`` and has no rows.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from restore.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

TABLE_FILE = "released_weights.toml"
METHODS_DIR = Path(__file__).resolve().parents[1] / "methods"
#: where the repository-relative option paths of the table are resolved (a source checkout)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ReleasedWeights:
    """One row of the table (see the module docstring for the fields)."""

    method: str
    task: str
    file: str
    url: str
    where: str
    infer: str
    test: str
    layout_options: str
    params: int
    listing: str
    protocol: str
    paper: str
    layout: str
    notes: str

    @property
    def label(self) -> str:
        """``method: task (file)``, the row's name in messages."""
        return f"{self.method}: {self.task} ({self.file or 'no released file'})"

    def as_dict(self) -> dict[str, Any]:
        """The row as plain values (CSV/JSON)."""
        return asdict(self)


COLUMNS = tuple(f.name for f in fields(ReleasedWeights))
_REQUIRED = ("task", "file", "url", "params", "listing", "paper")
_TEXT_DEFAULTS = {"where": "", "infer": "", "test": "", "layout_options": "", "protocol": "", "layout": "", "notes": ""}
_TOP_ONLY = ("none", "weights")


def method_folders() -> list[Path]:
    """Every method folder under ``restore/methods/`` (a package folder), sorted by name."""
    return sorted(p for p in METHODS_DIR.iterdir() if p.is_dir() and (p / "__init__.py").is_file())


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def _row(method: str, path: Path, index: int, top: dict[str, Any], row: dict[str, Any]) -> ReleasedWeights:
    where = f"{path}: weights[{index}]"
    allowed = set(COLUMNS) - {"method"}
    for key in (*top, *row):
        if key not in allowed and key not in _TOP_ONLY:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(allowed))})")
    merged = {**_TEXT_DEFAULTS, **{k: v for k, v in top.items() if k not in _TOP_ONLY}, **row}
    for key in _REQUIRED:
        if key not in merged:
            raise ConfigError(f"{where}: missing required key {key!r}")
    if not isinstance(merged["params"], int) or merged["params"] <= 0:
        raise ConfigError(f"{where}: key 'params' must be a positive integer, got {merged['params']!r}")
    for key in set(merged) - {"params"}:
        if not isinstance(merged[key], str):
            raise ConfigError(f"{where}: key {key!r} must be a string, got {merged[key]!r}")
    merged["layout_options"] = merged["layout_options"] or merged["infer"]
    if not merged["layout_options"]:
        raise ConfigError(f"{where}: needs 'infer' or 'layout_options' (the option file whose network the file fits)")
    return ReleasedWeights(method=method, **merged)


def read_method_table(folder: Path) -> tuple[list[ReleasedWeights], str | None]:
    """The rows of one method folder and, for a method without released weights, why.

    A folder without a table file gives ``([], "no released_weights.toml")``.
    """
    path = folder / TABLE_FILE
    if not path.is_file():
        return [], f"no {TABLE_FILE} in {folder.name}"
    top = _read(path)
    rows = top.get("weights", [])
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ConfigError(f"{path}: key 'weights' must be an array of tables ([[weights]])")
    none = top.get("none")
    if rows and none is not None:
        raise ConfigError(f"{path}: key 'none' says there are no released weights, but the file has [[weights]] rows")
    if not rows and not isinstance(none, str):
        raise ConfigError(f"{path}: no [[weights]] rows: add them, or say why in a top-level 'none' string")
    return [_row(folder.name, path, i, top, r) for i, r in enumerate(rows)], none


def released_weights() -> list[ReleasedWeights]:
    """Every row of every method folder, methods in name order, rows in file order."""
    return [row for folder in method_folders() for row in read_method_table(folder)[0]]


def methods_without_weights() -> dict[str, str]:
    """Method -> why it has no rows (no released checkpoint, or no table file)."""
    out = {}
    for folder in method_folders():
        rows, why = read_method_table(folder)
        if not rows and why is not None:
            out[folder.name] = why
    return out


def option_path(relative: str) -> Path:
    """An option file of the table, resolved in the source checkout restore runs from."""
    path = PROJECT_ROOT / relative
    if not path.is_file():
        raise ConfigError(
            f"option file {relative} of the released-weights table not found under {PROJECT_ROOT}"
            f"{os.sep}: restore weights check needs a source checkout of restore (its options/ folder)"
        )
    return path
