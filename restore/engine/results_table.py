"""Paper-ready tables of benchmark figures: one row per set (``table.{md,csv,tex}``) or per run.

Why a module of its own: ``restore test`` writes the table of one run, ``restore compare`` lays
several runs side by side, and the HTML report shows the same table at its top; all three must
format the same figures with the same precision and the same labels.

A *set record* is the ``summary.json`` payload of one set (``set``, ``protocol``,
``crop_border``, ``n_images``, ``scored``, ``metrics``, ``input_metrics``). Precision is given per
metric family: by default 2 decimals for dB (PSNR) and LAB MAE, 4 for SSIM and LPIPS.
"""

from __future__ import annotations

import csv
import html
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from restore.errors import ConfigError

#: decimals per metric family (a key's family is its longest matching prefix)
DEFAULT_PRECISION: dict[str, int] = {"psnr": 2, "ssim": 4, "lpips": 4, "lab_mae": 2}
FALLBACK_DIGITS = 4
MAX_DIGITS = 12
#: the columns a table shows unless metrics are chosen: the figures papers report
HEADLINE = ("psnr", "ssim", "lpips", "lab_mae_pp", "lab_mae_s_pp", "lab_mae_ns_pp")
#: every summary key the evaluator can produce (besides the image counts)
_KEY = re.compile(r"^(psnr|ssim)(_s|_ns)?$|^lpips$|^lab_mae(_s|_ns)?(_pp|_pi)?$")
_BASE_LABEL = {"psnr": "PSNR", "ssim": "SSIM", "lpips": "LPIPS", "lab_mae": "LAB MAE"}
MISSING = "-"


def parse_precision(items: Sequence[str] | None, option: str = "--precision") -> dict[str, int]:
    """``["3"]`` (every metric) or ``["psnr=3", "ssim=5"]`` -> decimals per family.

    Raises a one-line :class:`ConfigError` naming the bad item and the ``option`` it came from.
    """
    out: dict[str, int] = {}
    for item in items or ():
        family, sep, value = item.rpartition("=")
        family = family.strip() if sep else "*"
        if sep and family not in DEFAULT_PRECISION:
            raise ConfigError(
                f"{option} {item!r}: unknown metric {family!r} (use one of {', '.join(DEFAULT_PRECISION)}, "
                "or a bare number for all)"
            )
        try:
            digits = int(value)
        except ValueError:
            digits = -1
        if not 0 <= digits <= MAX_DIGITS:
            raise ConfigError(f"{option} {item!r}: the number of decimals must be an integer from 0 to {MAX_DIGITS}")
        out[family] = digits
    return out


def check_metric_keys(keys: Sequence[str] | None, option: str = "--table-metrics") -> list[str] | None:
    """Validate chosen table columns (summary keys such as ``psnr``, ``ssim_s``, ``lab_mae_pp``)."""
    if keys is None:
        return None
    bad = [k for k in keys if not _KEY.match(k)]
    if bad:
        raise ConfigError(
            f"{option}: unknown metric {bad[0]!r} (summary keys: psnr, ssim, lpips, lab_mae_pp, lab_mae_pi, "
            "with _s/_ns for the shadow and non-shadow regions, e.g. psnr_s, lab_mae_s_pp)"
        )
    return list(dict.fromkeys(keys))


def digits_for(key: str, precision: Mapping[str, int] | None = None) -> int:
    """Decimals for summary key ``key`` (``psnr_s`` -> the ``psnr`` family)."""
    precision = precision or {}
    family = next((f for f in sorted(DEFAULT_PRECISION, key=len, reverse=True) if key.startswith(f)), None)
    if family is not None and family in precision:
        return precision[family]
    if "*" in precision:
        return precision["*"]
    return DEFAULT_PRECISION.get(family or "", FALLBACK_DIGITS)


def format_value(value: Any, key: str, precision: Mapping[str, int] | None = None) -> str:
    """One figure as text: fixed decimals, ``inf``/``nan`` spelled out, absent values as ``-``."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, str):  # summary.json stores non-finite values as strings
        return value
    v = float(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.{digits_for(key, precision)}f}"


def metric_label(key: str) -> str:
    """``psnr`` -> ``PSNR (dB)``, ``ssim_s`` -> ``SSIM (S)``, ``lab_mae_ns_pp`` -> ``LAB MAE (NS, pp)``."""
    base = next((b for b in sorted(_BASE_LABEL, key=len, reverse=True) if key.startswith(b)), key)
    rest = [p for p in key[len(base):].split("_") if p]
    parts = [p.upper() if p in ("s", "ns") else p for p in rest]
    label = _BASE_LABEL.get(base, key) + (f" ({', '.join(parts)})" if parts else "")
    return label + " (dB)" if base == "psnr" else label


def chosen_metrics(records: Sequence[Mapping[str, Any]], chosen: Sequence[str] | None = None) -> list[str]:
    """The table's metric columns: ``chosen`` as given, else the headline figures the sets have
    (else every figure they have), in a stable order."""
    if chosen:
        return list(chosen)
    present: list[str] = []
    for rec in records:
        for key in (rec.get("metrics") or {}):
            if not key.startswith("n_images") and key not in present:
                present.append(key)
    headline = [k for k in HEADLINE if k in present]
    return headline or present


@dataclass
class Table:
    """A plain table: header cells, body rows (strings), and notes printed under it."""

    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    numeric_from: int = 1  # columns from this index on are right-aligned numbers


def run_table(records: Sequence[Mapping[str, Any]], metrics: Sequence[str] | None = None,
              precision: Mapping[str, int] | None = None) -> Table:
    """One row per set (and one for its degraded input when it has one) of a single run."""
    keys = chosen_metrics(records, metrics)
    table = Table(["set", "protocol", "images", *(metric_label(k) for k in keys)], [], numeric_from=2)
    for rec in records:
        protocol = _protocol_text(rec)
        figures = rec.get("metrics") or {}
        n = str(int(float(figures.get("n_images", rec.get("n_images", 0)) or 0)))
        if not rec.get("scored", True):
            table.rows.append([rec["set"], protocol, n, *(MISSING for _ in keys)])
            table.notes.append(f"{rec['set']}: no ground truth; images restored and saved, not scored")
            continue
        table.rows.append([rec["set"], protocol, n, *(format_value(figures.get(k), k, precision) for k in keys)])
        inputs = rec.get("input_metrics")
        if inputs:
            table.rows.append([f"{rec['set']} (input)", protocol, n,
                               *(format_value(inputs.get(k), k, precision) for k in keys)])
    return table


def _protocol_text(rec: Mapping[str, Any]) -> str:
    if not rec.get("scored", True) or not rec.get("protocol"):
        return "not scored"
    crop = rec.get("crop_border")
    return str(rec["protocol"]) + (f", crop {crop}" if crop else "")


# ------------------------------------------------------------------------------------ writers
def to_markdown(table: Table) -> str:
    """GitHub markdown, numbers right-aligned."""
    align = ["---" if i < table.numeric_from else "---:" for i in range(len(table.header))]
    lines = ["| " + " | ".join(_md(c) for c in table.header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in table.rows]
    if table.notes:
        lines += ["", *(f"- {n}" for n in table.notes)]
    return "\n".join(lines) + "\n"


def _md(cell: str) -> str:
    return cell.replace("|", "\\|")


def to_csv(table: Table) -> str:
    """Comma-separated, header first; the figures as formatted (chosen precision), absent ones empty."""
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(table.header)
    writer.writerows([["" if c == MISSING else c for c in row] for row in table.rows])
    return text.getvalue()


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _tex(cell: str) -> str:
    return "".join(_TEX.get(c, c) for c in cell)


def to_latex(table: Table) -> str:
    """A ``tabular`` with booktabs rules (``\\usepackage{booktabs}``), special characters escaped."""
    spec = "".join("l" if i < table.numeric_from else "r" for i in range(len(table.header)))
    body = [" & ".join(_tex(c) for c in row) + r" \\" for row in table.rows]
    return "\n".join([
        rf"\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(_tex(c) for c in table.header) + r" \\",
        r"\midrule", *body, r"\bottomrule", r"\end{tabular}",
    ]) + "\n"


def to_html(table: Table) -> str:
    """An HTML ``<table>`` (for the report), notes as a paragraph below it."""
    def cell(tag: str, text: str, i: int) -> str:
        style = ' style="text-align:right"' if i >= table.numeric_from and tag == "td" else ""
        return f"<{tag}{style}>{html.escape(text)}</{tag}>"

    head = "".join(cell("th", c, i) for i, c in enumerate(table.header))
    body = "".join("<tr>" + "".join(cell("td", c, i) for i, c in enumerate(r)) + "</tr>" for r in table.rows)
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in table.notes)
    return f'<table class="summary"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{notes}'


#: file suffix -> writer (``table.md``, ``table.csv``, ``table.tex``)
WRITERS = {"md": to_markdown, "csv": to_csv, "tex": to_latex}
