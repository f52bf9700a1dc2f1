"""Arguments shared by the subcommands that read an option file."""

from __future__ import annotations

import argparse

from restore.config import Options, load_options
from restore.config.loader import one_line
from restore.errors import ConfigError


def add_option_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("-opt", "--opt", dest="opt", required=required, metavar="FILE", help="option file (YAML)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an option, VALUE parsed as YAML (repeatable), e.g. --set train.total_iter=1000; "
        "KEY=null on a set removes it; a new 'type' replaces the whole section",
    )


def add_set_arguments(parser: argparse.ArgumentParser, test_sets: bool = False) -> None:
    """``--rename-set OLD=NEW`` and (``test_sets``) ``--test-set NAME``, for commands that use sets."""
    parser.add_argument(
        "--rename-set",
        dest="renames",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="rename an evaluation set (its results folder, table rows, best_<set>_*.pth), repeatable",
    )
    if test_sets:
        parser.add_argument(
            "--test-set",
            dest="test_sets",
            action="append",
            default=[],
            metavar="NAME",
            help="evaluate only this test set (repeatable; names after --rename-set)",
        )


def load_from_args(args: argparse.Namespace) -> Options:
    """The options named by ``-opt``, with ``--set``, ``--rename-set`` and ``--test-set`` applied."""
    return load_options(
        args.opt,
        args.overrides,
        renames=getattr(args, "renames", None) or (),
        test_sets=getattr(args, "test_sets", None) or (),
    )


def require(options: Options, *keys: str, command: str) -> None:
    """Fail at load time when a section the command needs is absent (names file and key)."""
    for dotted in keys:
        value = options
        for part in dotted.split("."):
            value = getattr(value, part, None) if not isinstance(value, dict) else value.get(part)
        if value is None or value == {}:
            raise ConfigError(f"{one_line(options.source)}: missing required key {dotted!r} (needed by 'restore {command}')")


def add_check_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--check",
        nargs="?",
        const="full",
        choices=("full", "quick"),
        help="check everything the run would touch, report every problem, then stop: options, datasets, "
        "weights, every file decoded (--check=quick: headers only)",
    )


def run_check(args: argparse.Namespace, options: Options, sections: tuple[str, ...]) -> int:
    """``--check``: verify the datasets of ``sections`` (and the weights for test); exit status."""
    from restore.cli.check import check_run

    return check_run(args, options, sections)


def add_network_from_weights_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--network-from-weights",
        action="store_true",
        help="build the network the weights file records (restore-written weights) instead of the option "
        "file's, which may then omit 'network'; without it a difference stops the run",
    )


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """``--backend`` and ``--precision``: what runs the network and at which precision (``infer.*``)."""
    parser.add_argument("--backend", choices=("torch", "onnxruntime", "openvino", "auto"),
                        help="what runs the network (default: infer.backend, torch); onnxruntime/openvino "
                        "need pip install -e \".[fast]\"; auto: the fastest installed")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"),
                        help="fp32 (exact) or the approximate bf16/fp16 (default: infer.precision, fp32)")


def check_adaptive(options: Options) -> None:
    """``infer.adaptive`` against ``infer`` as the command line left it (``--tile 0``, ``--backend``)."""
    from restore.config.schema import adaptive_problem

    problem = adaptive_problem(options.infer.adaptive, options.infer.tile, options.infer.backend)
    if problem is not None:
        raise ConfigError(f"{options.source}: key 'infer.adaptive' {problem}")


def apply_backend_arguments(args: argparse.Namespace, options: Options) -> None:
    """Copy ``--backend`` / ``--precision`` into ``options.infer`` when given."""
    if args.backend is not None:
        options.infer.backend = args.backend
    if args.precision is not None:
        options.infer.precision = args.precision
