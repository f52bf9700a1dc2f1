"""Benchmark a model on the test sets of an option file, each under its own protocol."""

from __future__ import annotations

import argparse

from restore.cli.common import add_option_arguments, check_datasets, load_from_args, require


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_option_arguments(parser)
    parser.add_argument("--weights", metavar="CKPT", help="weights to evaluate (default: path.pretrained)")
    parser.add_argument("--device", metavar="D", help="auto, cpu, cuda or cuda:N (default: the option file's 'device')")
    parser.add_argument("--check", action="store_true", help="validate the options, build the datasets and check every file (header, size), then stop")


def run(args: argparse.Namespace) -> int:
    options = load_from_args(args)
    require(options, "network", "datasets.test", command="test")
    if args.check:
        count = check_datasets(options, ("test",))
        print(f"{args.opt}: options are valid; {count} samples checked (files, headers, sizes)")
        return 0
    # imported here: the engine pulls in torch, which `restore --help` does not need
    from restore.engine import distributed
    from restore.engine.benchmark import resolve_weights, run_benchmark

    resolve_weights(options, args.weights)  # fail before joining a process group
    ctx = distributed.setup(args.device or options.device)
    try:
        run_benchmark(options, weights=args.weights, ctx=ctx)
    finally:
        distributed.teardown()
    return 0
