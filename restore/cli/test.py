"""Benchmark a model on the test sets of an option file, each under its own protocol."""

from __future__ import annotations

import argparse
import sys

from restore.cli.common import (
    add_backend_arguments,
    add_check_argument,
    add_network_from_weights_argument,
    add_option_arguments,
    add_set_arguments,
    apply_backend_arguments,
    check_adaptive,
    load_from_args,
    require,
    run_check,
)
from restore.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_option_arguments(parser)
    add_set_arguments(parser, test_sets=True)
    parser.add_argument("--weights", metavar="CKPT", help="weights to evaluate (default: path.pretrained)")
    parser.add_argument("--device", metavar="D", help="auto, cpu, cuda or cuda:N (default: the option file's 'device')")
    add_check_argument(parser)
    add_network_from_weights_argument(parser)
    parser.add_argument("--table-metrics", nargs="+", metavar="M",
                        help="columns of table.md/csv/tex, e.g. psnr ssim lab_mae_s_pp (default: the headline figures)")
    parser.add_argument("--digits", nargs="+", metavar="[M=]N",
                        help="decimals in table.*: N for all, or psnr=N ssim=N ... (default psnr=2 ssim=4 lpips=4 lab_mae=2)")
    add_backend_arguments(parser)
    parser.add_argument("--allow-approximate", action="store_true",
                        help="score with precision bf16/fp16 (approximate: figures differ from the model's own)")
    parser.add_argument("--progress", choices=["auto", "bar", "lines", "off"], default="auto",
                        help="per-set progress: a bar on a terminal, else a line every ~10%% or 30 s (default auto)")


def run(args: argparse.Namespace) -> int:
    options = load_from_args(args)
    require(options, *(() if args.network_from_weights else ("network",)), "datasets.test", command="test")
    apply_backend_arguments(args, options)
    check_adaptive(options)
    if options.infer.precision != "fp32" and not args.allow_approximate:
        raise ConfigError(
            f"infer.precision {options.infer.precision} is approximate (it moves some 8-bit pixels), so the "
            "figures would not be the model's: use fp32, or pass --allow-approximate to score it anyway"
        )
    if args.check:
        return run_check(args, options, ("test",))
    # imported here: the engine pulls in torch, which `restore --help` does not need
    from restore.engine import distributed
    from restore.engine.benchmark import resolve_weights, run_benchmark
    from restore.engine.results_table import check_metric_keys, parse_precision
    from restore.engine.weights_meta import match_network

    weights = resolve_weights(options, args.weights)  # fail before joining a process group
    options = match_network(options, weights, network_from_weights=args.network_from_weights,
                            say=lambda text: print(text, file=sys.stderr))
    table = {"table_metrics": check_metric_keys(args.table_metrics), "precision": parse_precision(args.digits, "--digits")}
    ctx = distributed.setup(args.device or options.device)
    try:
        run_benchmark(options, weights=args.weights, ctx=ctx, progress=args.progress, **table)
    finally:
        distributed.teardown()
    return 0
