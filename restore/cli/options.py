"""Check an option file (bases, overrides, schema) and print it fully resolved."""

from __future__ import annotations

import argparse

from restore.cli.common import add_option_arguments, add_set_arguments, load_from_args
from restore.config import options_to_yaml


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_option_arguments(parser)
    add_set_arguments(parser, test_sets=True)


def run(args: argparse.Namespace) -> int:
    print(options_to_yaml(load_from_args(args)), end="")
    return 0
