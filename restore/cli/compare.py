"""Compare `restore test` runs: one table, one row per run, never two protocols in one column.

Each RUN is a results folder (``results/<name>``) or a run name under ``--results-root``. The
table has one column per set and metric, headed by the set's protocol, and an ``input`` row with
the degraded inputs' figures where the runs recorded them; each run's protocols are listed
above it. A set scored under different protocols (or border crops) by two runs is refused.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN", help="results folders or run names")
    parser.add_argument("--results-root", default="results", metavar="DIR",
                        help="where run names are looked up (default: results)")
    parser.add_argument("--metrics", nargs="+", metavar="M",
                        help="summary keys to show, e.g. psnr ssim lab_mae_pp (default: the headline figures)")
    parser.add_argument("--digits", "--precision", dest="digits", nargs="+", metavar="[M=]N",
                        help="decimals: N for all, or psnr=N ssim=N ... (default psnr=2 ssim=4 lpips=4 lab_mae=2; "
                             "--precision is the old name)")
    parser.add_argument("--format", choices=["md", "csv", "tex"], default="md", help="table format (default md)")


def run(args: argparse.Namespace) -> int:
    from restore.engine.compare import compare_table, load_runs, protocol_lines
    from restore.engine.results_table import WRITERS, check_metric_keys, parse_precision

    metrics = check_metric_keys(args.metrics, "--metrics")
    precision = parse_precision(args.digits, "--digits")
    runs = load_runs(args.runs, args.results_root)
    table = compare_table(runs, metrics, precision)
    if args.format == "md":
        print("\n".join(protocol_lines(runs)) + "\n")
    print(WRITERS[args.format](table), end="")
    if args.format != "md" and table.notes:
        import sys

        print("\n".join(f"note: {n}" for n in table.notes), file=sys.stderr)
    return 0
