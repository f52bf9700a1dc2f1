"""Train a model from an option file (single process, or many under torchrun).

Exit status: 0 when the run reached ``train.total_iter`` (or already had), 2 for an error
(one line), 143 when SIGTERM and 130 when Ctrl-C stopped it early (a checkpoint was written
first: continue with ``--resume auto``), as shells report a process ended by those signals.
"""

from __future__ import annotations

import argparse
import sys

from restore.cli.common import add_check_argument, add_option_arguments, add_set_arguments, load_from_args, require, run_check


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_option_arguments(parser)
    add_set_arguments(parser)
    parser.add_argument("--resume", metavar="auto|PATH",
                        help="continue from the run's latest checkpoint, or from the checkpoint file PATH "
                             "(state from the checkpoint, settings from the option file)")
    add_check_argument(parser)
    parser.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard events")


def run(args: argparse.Namespace) -> int:
    options = load_from_args(args)
    require(options, "network", "train", "datasets.train", command="train")
    if args.check:
        return run_check(args, options, ("train", "val"))
    from restore.engine import distributed
    from restore.engine.trainer import Trainer

    trainer = Trainer(options, resume=args.resume, tensorboard=not args.no_tensorboard)
    try:
        trainer.fit()
    finally:
        distributed.teardown()
    if trainer.stop_signal is not None and trainer.iteration < trainer.cfg.total_iter:
        import signal

        name = signal.Signals(trainer.stop_signal).name
        if trainer.ctx.is_main:
            print(f"restore: training stopped by {name} at iteration {trainer.iteration} of "
                  f"{trainer.cfg.total_iter}; checkpoint written; exit {128 + trainer.stop_signal}", file=sys.stderr)
        return 128 + trainer.stop_signal
    return 0
