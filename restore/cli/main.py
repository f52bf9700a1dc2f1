"""``restore`` console script: one entry point, one module per subcommand.

Every user-caused error (:class:`restore.errors.RestoreError`) is printed as one line,
``restore: error: ...``, with exit status 2 and no traceback. Set ``RESTORE_DEBUG=1`` to see
the traceback anyway.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from restore import __version__
from restore.errors import RestoreError
from restore.utils.allocator import keep_freed_memory

# subcommand -> (module, one-line help). Modules are imported only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("restore.cli.train", "train a model from an option file"),
    "test": ("restore.cli.test", "benchmark a model on the test sets of an option file"),
    "infer": ("restore.cli.infer", "restore every image of a folder"),
    "export": ("restore.cli.export", "export a trained network to ONNX or OpenVINO IR (with a JSON sidecar)"),
    "score": ("restore.cli.score", "score folders of existing results against ground truth"),
    "compare": ("restore.cli.compare", "compare `restore test` runs in one table (one protocol per column)"),
    "quickstart": ("restore.cli.quickstart", "train, evaluate and batch-restore on scikit-image's bundled photos"),
    "archs": ("restore.cli.archs", "list the architectures (or describe one)"),
    "options": ("restore.cli.options", "check an option file and print it fully resolved"),
    "demo": ("restore.cli.demo", "a local web page: drop an image, compare before and after (needs the [demo] extra)"),
    "weights": ("restore.cli.weights", "list the released checkpoints restore loads, or say which one a file is"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="restore",
        description="Low-level vision restoration: train, benchmark, batch-restore and score.",
    )
    parser.add_argument("--version", action="version", version=f"restore {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(name, help=help_text, description=module.__doc__.strip().splitlines()[0])
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    keep_freed_memory()  # before any tensor: large buffers stay mapped between forwards
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        add_methods_from_environment()
        return int(args._run(args) or 0)
    except RestoreError as exc:
        if os.environ.get("RESTORE_DEBUG"):
            raise
        print(f"restore: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # an OS error nobody mapped closer to its cause (disk full, read-only folder, ...)
        if os.environ.get("RESTORE_DEBUG"):
            raise
        from restore.utils.files import os_error_reason

        where = f"'{exc.filename}': " if exc.filename else ""
        print(f"restore: error: {where}{os_error_reason(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("restore: interrupted", file=sys.stderr)
        return 130


def add_methods_from_environment() -> None:
    """Register the method packages named in ``RESTORE_METHODS`` (comma-separated importable
    package names, each with a ``REGISTRY`` like the folders of ``restore/methods/``), so option
    files can use methods kept outside this package."""
    from restore import registry

    for package in os.environ.get("RESTORE_METHODS", "").split(","):
        if package.strip():
            registry.add_method(package.strip())


def run_command(command: str, argv: Sequence[str] | None = None) -> int:
    """``python train.py ...`` == ``restore train ...`` (used by the top-level scripts)."""
    return main([command, *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
