"""List the released checkpoints restore loads (file, source, option files, size, paper numbers), or say which one a file is.

``restore weights`` prints the table (``--format csv|json`` for machines); ``restore weights check
FILE`` reads FILE's keys and shapes on the meta device and names the row(s) it fits: exit 0
when one does, 1 when none does (with the closest row and why), 2 when FILE is not a readable
checkpoint. restore never downloads: the table says where the authors publish each file.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from restore.engine.released_weights import ReleasedWeights
    from restore.engine.weights_check import Comparison, FileLayout

_SHOWN = 6  # key names listed per line
_INTRO = (
    "Released checkpoints restore loads. restore never downloads: fetch a file from where its authors\n"
    "publish it; `restore weights check FILE` says which row a file is.\n"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "csv", "json"), default="text", help="how to print the table (default: text)")
    sub = parser.add_subparsers(dest="weights_command", metavar="check")
    check = sub.add_parser(
        "check",
        help="say which released checkpoint FILE is, by its keys and shapes (read on the meta device: nothing is run)",
        description="Say which row of `restore weights` FILE fits (keys and shapes), or why none does.",
    )
    check.add_argument("file", metavar="FILE", help="a weights file (.pth/.pt/.ckpt or .safetensors)")


def run(args: argparse.Namespace) -> int:
    if args.weights_command == "check":
        return run_check(args.file)
    from restore.engine.released_weights import methods_without_weights, released_weights

    rows, without = released_weights(), methods_without_weights()
    if args.format == "csv":
        print(table_csv(rows), end="")
    elif args.format == "json":
        print(json.dumps({"weights": [r.as_dict() for r in rows], "without_weights": without}, indent=1))
    else:
        print(table_text(rows, without), end="")
    return 0


def table_csv(rows: list[ReleasedWeights]) -> str:
    """One CSV line per row, every column, with a header."""
    from restore.engine.released_weights import COLUMNS

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row.as_dict())
    return out.getvalue()


def table_text(rows: list[ReleasedWeights], without: dict[str, str]) -> str:
    """The table for people: a block per method (its home page), a few lines per file."""
    lines = [_INTRO]
    methods = sorted({r.method for r in rows} | set(without))
    for method in methods:
        mine = [r for r in rows if r.method == method]
        if not mine:
            lines.append(f"{method}: {without[method]}\n")
            continue
        home = mine[0]
        lines.append(f"{method}  {home.url}" + (f"  ({home.where})" if home.where else ""))
        for r in mine:
            lines.append(f"  {r.file or '(no released file)'}  {r.task}  {r.params:,} parameters")
            if (r.url, r.where) != (home.url, home.where):
                lines.append(f"      from   {r.url}" + (f" ({r.where})" if r.where else ""))
            if r.infer:
                lines.append(f"      infer  {r.infer}")
            else:
                lines.append(f"      fits   {r.layout_options}")
            if r.test:
                lines.append(f"      test   {r.test}" + (f"  (protocol {r.protocol})" if r.protocol else ""))
            if r.paper:
                lines.append(f"      paper  {r.paper}")
            if r.layout:
                lines.append(f"      file   {r.layout}")
            if r.notes:
                lines.append(f"      note   {r.notes}")
        lines.append("")
    return "\n".join(lines) + "\n"


def _keys(names: tuple[str, ...]) -> str:
    from restore.utils.shorten import shorten_list

    return f"({len(names)}) {shorten_list(list(names), _SHOWN)}" if names else "(0)"


def check_text(layout: FileLayout, results: list[Comparison]) -> tuple[str, int]:
    """What ``restore weights check`` prints, and its exit status (0 a match, 1 none)."""
    head = f"{layout.path}: {len(layout.shapes)} tensors, {layout.params:,} parameters ({layout.wrapper})"
    matches = [c for c in results if c.matches]
    if matches:
        lines = [head, f"matches {'this row' if len(matches) == 1 else f'{len(matches)} rows'} of `restore weights`:"]
        for c in matches:
            r = c.entry
            same = "   <- same file name" if r.file and r.file == layout.path.name else ""
            lines.append(f"  {r.label}{same}")
            lines.append(f"      {'infer -opt ' + r.infer if r.infer else 'fits ' + r.layout_options}"
                         + (f"   test -opt {r.test}" if r.test else ""))
        if len(matches) > 1:
            lines.append("(one network: keys and shapes cannot tell these rows apart; the file's name or source does)")
        return "\n".join(lines) + "\n", 0
    lines = [head, "matches no row of `restore weights`"]
    if not results or results[0].agreeing == 0:
        lines.append("no row's network shares a key and shape with it: not a checkpoint of a network in the table")
        return "\n".join(lines) + "\n", 1
    best = results[0]
    lines.append(
        f"closest: {best.entry.label}, the network of {best.entry.layout_options}: "
        f"{best.agreeing} of {best.expected} keys agree"
    )
    lines.append(f"  missing from the file {_keys(best.missing)}")
    lines.append(f"  not in the network {_keys(best.unexpected)}")
    if best.mismatched:
        key, found, expected = best.mismatched[0]
        more = f" ({len(best.mismatched)} keys differ in shape)" if len(best.mismatched) > 1 else ""
        lines.append(f"  first shape mismatch: {key} is {found} in the file, {expected} expected{more}")
    else:
        lines.append("  no shape mismatch")
    return "\n".join(lines) + "\n", 1


def run_check(path: str) -> int:
    """``restore weights check FILE``: print :func:`check_text`; its status."""
    from restore.engine.weights_check import check_weights

    layout, results = check_weights(path)
    text, status = check_text(layout, results)
    print(text, end="")
    return status
