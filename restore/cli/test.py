"""Benchmark a model on the test sets of an option file, each under its own protocol."""

from __future__ import annotations

import argparse
import sys

from restore.cli.common import add_check_argument, add_option_arguments, load_from_args, require, run_check
from restore.cli.common import add_network_from_weights_argument, add_set_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_option_arguments(parser)
    add_set_arguments(parser, test_sets=True)
    parser.add_argument("--weights", metavar="CKPT", help="weights to evaluate (default: path.pretrained)")
    parser.add_argument("--device", metavar="D", help="auto, cpu, cuda or cuda:N (default: the option file's 'device')")
    add_check_argument(parser)
    add_network_from_weights_argument(parser)


def run(args: argparse.Namespace) -> int:
    options = load_from_args(args)
    require(options, *(() if args.network_from_weights else ("network",)), "datasets.test", command="test")
    if args.check:
        return run_check(args, options, ("test",))
    # imported here: the engine pulls in torch, which `restore --help` does not need
    from restore.engine import distributed
    from restore.engine.benchmark import resolve_weights, run_benchmark
    from restore.engine.weights_meta import match_network

    weights = resolve_weights(options, args.weights)  # fail before joining a process group
    options = match_network(options, weights, network_from_weights=args.network_from_weights,
                            say=lambda text: print(text, file=sys.stderr))
    ctx = distributed.setup(args.device or options.device)
    try:
        run_benchmark(options, weights=args.weights, ctx=ctx)
    finally:
        distributed.teardown()
    return 0
