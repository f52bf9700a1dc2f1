"""restore: low-level vision restoration (denoising, deraining, demoireing, shadow removal).

Importing this package is deliberately cheap: no architecture, dataset or metric module is
imported here, and no global state (RNG, torch flags, logging) is touched. Components are
looked up by name through :mod:`restore.registry`.

The Python API (:mod:`restore.api`) is reached through this package's names: ``restore.load``,
``restore.Model``, ``restore.load_options``, ``restore.list_architectures`` and
``restore.score`` import it on first use (a module ``__getattr__``, so ``import restore`` stays
cheap and below every layer).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

#: Names this package lends from :mod:`restore.api`, imported on first access.
_API_NAMES = ("Model", "list_architectures", "load", "load_options", "score")


def __getattr__(name: str) -> Any:
    if name in _API_NAMES:
        import importlib

        # by name, not by an import statement: the API sits above the engine, which imports this package
        return getattr(importlib.import_module("restore.api"), name)
    raise AttributeError(f"module 'restore' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API_NAMES])
