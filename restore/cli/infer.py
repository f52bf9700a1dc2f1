"""Restore every image of a folder (recursively) into another folder."""

from __future__ import annotations

import argparse

from restore.cli.common import add_option_arguments, load_from_args, require
from restore.cli.engine_pending import engine_missing


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_option_arguments(parser)
    parser.add_argument("--weights", metavar="CKPT", help="weights to use (default: path.pretrained)")
    parser.add_argument("--input", metavar="DIR", required=True, help="folder of images to restore")
    parser.add_argument("--output", metavar="DIR", required=True, help="where restored images go (same relative paths)")
    parser.add_argument("--mask-dir", metavar="DIR", help="shadow masks, same relative names as the inputs")
    parser.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    parser.add_argument("--format", choices=["png", "jpg", "tif", "bmp"], help="output format (default: as input)")
    parser.add_argument("--check", action="store_true", help="validate the options, then stop")


def run(args: argparse.Namespace) -> int:
    options = load_from_args(args)
    require(options, "network", command="infer")
    if args.check:
        print(f"{args.opt}: options are valid")
        return 0
    raise engine_missing("infer")
