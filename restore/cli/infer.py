"""Restore every image of a folder (recursively) into another folder.

Outputs keep the relative path, name, bit depth and format of their input (``--format``
changes the format). Existing outputs are skipped unless ``--overwrite``, so a killed run is
continued by running the same command again. A corrupt or too large input, a NaN output, or a
target that resolves into the input (through a link) is reported in one line and skipped; the
exit status is then 1. Without a terminal, progress is a plain line every tenth of the folder or 30 s.
``--check`` checks the folders, the weights and every file, and lists every problem (exit 2).
Works under ``torchrun`` (files shared out across ranks).
"""

from __future__ import annotations

import argparse
import sys

from restore.cli.common import (
    add_backend_arguments,
    add_check_argument,
    add_network_from_weights_argument,
    add_option_arguments,
    apply_backend_arguments,
    check_adaptive,
    load_from_args,
    require,
)
from restore.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_option_arguments(parser)
    parser.add_argument("--weights", metavar="CKPT", help="weights to use (default: path.pretrained)")
    parser.add_argument("--input", metavar="DIR", required=True, help="folder of images to restore")
    parser.add_argument("--output", metavar="DIR", required=True, help="where restored images go (same relative paths)")
    parser.add_argument("--mask-dir", metavar="DIR",
                        help="shadow masks, same relative names as the inputs (any image extension)")
    parser.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    parser.add_argument("--format", choices=["png", "jpg", "tif", "bmp"], help="output format (default: as input)")
    parser.add_argument("--tile", type=int, metavar="N",
                        help="restore in N x N tiles (0: whole images; default: infer.tile)")
    parser.add_argument("--self-ensemble", action=argparse.BooleanOptionalAction, default=None,
                        help="average the 8 flips/rotations (default: infer.self_ensemble)")
    parser.add_argument("--batch-size", type=int, metavar="N",
                        help="consecutive same-size images per forward (default: infer.batch_size, 1)")
    parser.add_argument("--device", metavar="DEV", help="auto, cpu, cuda or cuda:N (default: the option file's device)")
    add_backend_arguments(parser)
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (without a terminal: no progress lines)")
    add_check_argument(parser)
    add_network_from_weights_argument(parser)


def run(args: argparse.Namespace) -> int:
    options = load_from_args(args)
    if not args.network_from_weights:
        require(options, "network", command="infer")
    if args.tile is not None:
        if args.tile < 0:
            raise ConfigError(f"--tile must be a positive tile size (or 0 for whole images), got {args.tile}")
        options.infer.tile = args.tile or None
    if args.self_ensemble is not None:
        options.infer.self_ensemble = args.self_ensemble
    if args.batch_size is not None:
        if args.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}")
        options.infer.batch_size = args.batch_size
    if args.device is not None:
        options.device = args.device
    apply_backend_arguments(args, options)
    check_adaptive(options)
    if args.check:
        from restore.cli.check import check_infer

        return check_infer(args, options)

    from restore.engine import distributed
    from restore.engine.backends import resolve_backend
    from restore.engine.batch_restore import restore_folder
    from restore.engine.weights_meta import match_network

    weights = args.weights if args.weights is not None else options.path.pretrained
    if weights is not None:
        options = match_network(options, weights, network_from_weights=args.network_from_weights,
                                say=lambda text: print(text, file=sys.stderr))

    ctx = distributed.setup(options.device)
    try:
        # a missing extra or a precision the backend cannot run: one line before any output exists
        resolve_backend(options.infer.backend, options.infer.precision, ctx.device)
        summary = restore_folder(
            options, args.input, args.output, weights=args.weights, mask_dir=args.mask_dir,
            overwrite=args.overwrite, fmt=args.format, ctx=ctx, progress=False if args.no_progress else None,
        )
    finally:
        distributed.teardown()
    if ctx.is_main:
        print(f"restore infer: {summary.line()} -> {args.output}")
        if summary.adaptive is not None and options.infer.adaptive is not None:
            from restore.engine.adaptive import settings_text

            print(f"restore infer: adaptive ({settings_text(options.infer.adaptive)}): {summary.adaptive.text()}")
        sys.stdout.flush()
    return 0 if summary.ok else 1
