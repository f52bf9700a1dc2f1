"""Option files for the Python API: load them, and apply ``infer`` keyword overrides.

A keyword override is validated exactly as the same key in an option file (or ``--set``) is:
the message is the CLI's, with ``restore.load(KEY=...)`` naming where the value came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from restore.config import Options
from restore.config import load_options as _load_options
from restore.config.schema import Infer
from restore.config.validate import validate


def load_options(path: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = ()) -> Options:
    """Read and validate an option file; ``overrides`` are ``--set`` items (``"infer.tile=256"``).

    Raises :class:`~restore.errors.ConfigError` with the one line ``restore options`` prints.
    """
    return _load_options(os.fspath(path), list(overrides))


def with_infer_overrides(options: Options, overrides: Mapping[str, Any]) -> Options:
    """``options`` with ``infer.<key> = value`` for each override, validated as option-file values.

    Why re-validate the whole tree: type, choice and cross-key checks (an unknown key with its
    did-you-mean, ``tile_overlap`` against ``tile``) then live in one place, the schema.
    """
    if not overrides:
        return options
    tree = options.to_dict()
    infer = tree.setdefault("infer", {})
    origin = {}
    for key, value in overrides.items():
        infer[key] = value
        origin[("infer", key)] = f"restore.load({key}=...)"
    out = validate(tree, origin, Options, default_source=options.source or options.name)
    out.source = options.source
    return out


#: The keyword overrides :func:`restore.load` takes (the ``infer`` section's keys).
INFER_KEYS: tuple[str, ...] = tuple(Infer.__dataclass_fields__)
