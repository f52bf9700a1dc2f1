"""Arguments shared by the subcommands that read an option file."""

from __future__ import annotations

import argparse

from restore.config import Options, load_options
from restore.errors import ConfigError


def add_option_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("-opt", "--opt", dest="opt", required=required, metavar="FILE", help="option file (YAML)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an option, VALUE parsed as YAML (repeatable), e.g. --set train.total_iter=1000",
    )


def load_from_args(args: argparse.Namespace) -> Options:
    return load_options(args.opt, args.overrides)


def require(options: Options, *keys: str, command: str) -> None:
    """Fail at load time when a section the command needs is absent (names file and key)."""
    for dotted in keys:
        value = options
        for part in dotted.split("."):
            value = getattr(value, part, None) if not isinstance(value, dict) else value.get(part)
        if value is None or value == {}:
            raise ConfigError(f"{options.source}: missing required key {dotted!r} (needed by 'restore {command}')")


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
