"""List the registered architectures, or describe one (arguments and parameter count)."""

from __future__ import annotations

import argparse
import inspect

from restore import registry
from restore.config.typecheck import describe
from restore.config.validate import component_parameters


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="an architecture name: show its options and size")


def run(args: argparse.Namespace) -> int:
    if not args.name:
        for name in registry.names("arch"):
            print(f"{name:24s} {registry.target('arch', name)}")
        return 0
    registry.target("arch", args.name)  # one-line error with did-you-mean when unknown
    params, hints, _ = component_parameters("arch", args.name)
    print(f"{args.name}  ({registry.target('arch', args.name)})")
    for pname, param in params.items():
        default = "required" if param.default is inspect.Parameter.empty else f"default {param.default!r}"
        print(f"  {pname}: {describe(hints.get(pname, object))}, {default}")
    if any(p.default is inspect.Parameter.empty for p in params.values()):
        return 0  # no default configuration to count
    import torch

    cls = registry.get("arch", args.name)
    try:
        with torch.device("meta"):  # count without allocating or initialising (IPT has 118 M)
            model = cls()
    except (NotImplementedError, RuntimeError):  # an __init__ that reads tensor values
        model = cls()
    print(f"  parameters (defaults): {sum(p.numel() for p in model.parameters()):,}")
    return 0
