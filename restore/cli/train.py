"""Train a model from an option file (single process, or many under torchrun)."""

from __future__ import annotations

import argparse

from restore.cli.common import add_check_argument, add_option_arguments, load_from_args, require, run_check
from restore.cli.common import add_set_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_option_arguments(parser)
    add_set_arguments(parser)
    parser.add_argument("--resume", metavar="auto|PATH", help="continue from the run's latest checkpoint, or from PATH")
    add_check_argument(parser)
    parser.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard events")


def run(args: argparse.Namespace) -> int:
    options = load_from_args(args)
    require(options, "network", "train", "datasets.train", command="train")
    if args.check:
        return run_check(args, options, ("train", "val"))
    from restore.engine import distributed
    from restore.engine.trainer import Trainer

    try:
        Trainer(options, resume=args.resume, tensorboard=not args.no_tensorboard).fit()
    finally:
        distributed.teardown()
    return 0
