"""The optional packages behind the fast backends, and the one-line error when one is missing.

Why a module of its own: ``openvino`` and ``onnxruntime`` are an optional extra
(``pip install -e ".[fast]"``); every place that needs one asks here, so a missing package is
always the same one line naming the extra, never an ImportError traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from restore.errors import ConfigError

#: How to install the extras (named in every error about a missing one).
INSTALL = 'pip install -e ".[fast]"'


def import_backend(package: str, needed_for: str | None = None) -> ModuleType:
    """``import package``, or a one-line :class:`ConfigError` naming the ``[fast]`` extra.

    ``needed_for`` says what asked for it (default ``infer.backend <package>``).
    """
    try:
        return importlib.import_module(package)
    except ImportError:
        raise ConfigError(
            f"{needed_for or f'infer.backend {package}'} needs the '{package}' package, which is not "
            f"installed: {INSTALL}"
        ) from None


def installed(package: str) -> bool:
    """Whether ``package`` imports (used by ``infer.backend: auto``)."""
    try:
        import_backend(package)
    except ConfigError:
        return False
    return True
