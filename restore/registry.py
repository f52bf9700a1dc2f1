"""Name -> component lookup, lazy by construction.

Option files pick architectures, datasets, losses, metrics, optimizers and schedulers by
name. The table below maps each generic component's name to ``"module:attribute"``; the module is
imported only when the name is first resolved, so ``import restore`` stays cheap and importing
one architecture never drags in the others.

Metrics and evaluation protocols are not listed here either: the metrics package keeps them in
its own declarative tables (a metric's direction and keys, a protocol's settings), and the
registry reads those through the ``"module:attribute"`` strings of :data:`OWNED` on first use,
so there is one source of truth and the registry (below the components) never imports them.

A method's own components are not listed here: each folder ``restore/methods/<method>/``
declares them in its ``REGISTRY`` and is found the first time any name is looked up, so adding a
method is one new folder. A method kept outside the package is added with :func:`add_method`
(or the ``RESTORE_METHODS`` environment variable, read by the command line); single components
with :func:`register`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from restore.errors import ConfigError
from restore.utils.suggest import closest

KINDS = ("arch", "dataset", "loss", "metric", "optimizer", "scheduler", "train_step")
#: Names an option file picks that are settings, not components (nothing is built from them).
SETTING_KINDS = ("protocol", "tile_score")


@dataclass(frozen=True)
class OwnedKind:
    """How the registry reads a kind that a component package keeps in its own table.

    ``names()``: the names, in the table's order; ``target(name)``: where an entry lives
    (``"module:attribute"``); ``get(name)``: the entry itself. Both raise KeyError for an unknown
    name. ``default``: the name used when an option file gives none; ``how_to_add``: the call
    that adds an entry (quoted by :func:`register`, which cannot).
    """

    names: Callable[[], Iterable[str]]
    target: Callable[[str], str]
    get: Callable[[str], Any]
    default: str | None = None
    how_to_add: str = ""


#: kind -> ``"module:attribute"`` of the :class:`OwnedKind` that keeps it, imported on first use.
OWNED: dict[str, str] = {
    "metric": "restore.metrics.table:REGISTRY_VIEW",
    "protocol": "restore.metrics.protocols:REGISTRY_VIEW",
    "tile_score": "restore.metrics.tile_scores:REGISTRY_VIEW",
}

_TABLE: dict[str, dict[str, str]] = {
    "arch": {
        "n2n_unet": "restore.archs.n2n_unet:N2NUNet",
        "with_mask": "restore.archs.mask_input:WithMask",
        "n2n_unet_slim": "restore.archs.n2n_unet_slim:SlimN2NUNet",
    },
    "dataset": {
        "paired_folder": "restore.data.paired_folder:PairedFolderDataset",
        "synthetic_noise": "restore.data.synthetic_noise:SyntheticNoiseDataset",
        "noisy_folder": "restore.data.noisy_folder:NoisyFolderDataset",
        "shadow_folder": "restore.data.shadow_folder:ShadowDataset",
        "sidd_blocks": "restore.data.sidd_blocks:SIDDBlocksDataset",
        "degraded_folder": "restore.data.degraded_folder:DegradedFolderDataset",
        "mixture": "restore.data.mixture:MixtureDataset",
    },
    "loss": {
        "l1": "restore.losses.pixel:L1Loss",
        "l2": "restore.losses.pixel:L2Loss",
        "charbonnier": "restore.losses.pixel:CharbonnierLoss",
        "perceptual": "restore.losses.perceptual:PerceptualLoss",
    },
    "optimizer": {
        "adam": "torch.optim:Adam",
        "adamw": "torch.optim:AdamW",
    },
    "scheduler": {
        "cosine": "restore.optim.schedulers:WarmupCosine",
        "multistep": "restore.optim.schedulers:WarmupMultiStep",
        "constant": "restore.optim.schedulers:WarmupConstant",
        "exponential": "restore.optim.schedulers:WarmupExponential",
        "linear": "restore.optim.schedulers:WarmupLinear",
    },
    "train_step": {
        "supervised": "restore.methods.step:SupervisedStep",
        "dda": "restore.methods.dda_step:DDAStep",
    },
}


_METHODS_DIR = Path(__file__).resolve().parent / "methods"
_methods_found = False
_TARGET = re.compile(r"\.?[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def _find_methods() -> None:
    """Read the ``REGISTRY`` of every folder under ``restore/methods/`` (once, on first use)."""
    global _methods_found
    if _methods_found:
        return
    _methods_found = True
    for folder in sorted(_METHODS_DIR.iterdir()):
        if (folder / "__init__.py").is_file() and folder.name.isidentifier():
            add_method(f"restore.methods.{folder.name}")


def add_method(package: str) -> list[tuple[str, str]]:
    """Register everything a method package declares in its ``REGISTRY``.

    ``REGISTRY`` maps kind -> name -> ``"module:attribute"``; a target starting with ``.`` is
    relative to the package (``".arch:MyNet"``). Only the package's ``__init__`` is imported
    here, the modules it names when the names are used. A name that another method already
    registered to a different target is an error (two methods may not fight over ``unet``).
    Returns the ``(kind, name)`` pairs added.
    """
    _find_methods()  # the shipped methods first, so a clash is reported against the newcomer
    try:
        module = importlib.import_module(package)
    except Exception as exc:  # a plug-in's own bug (SyntaxError, ...) is still one line
        reason = str(exc).splitlines()[0] if str(exc) else ""
        raise ConfigError(f"method package {package!r} cannot be imported: {type(exc).__name__}: {reason}") from None
    table = getattr(module, "REGISTRY", None)
    if not isinstance(table, dict):
        raise ConfigError(f"method package {package!r} has no REGISTRY dict in its __init__.py")
    added: list[tuple[str, str]] = []
    for kind, entries in table.items():
        if kind in OWNED:
            raise ConfigError(f"{package}.REGISTRY: {_owned_message(kind)}")
        if kind not in _TABLE or not isinstance(entries, dict):
            raise ConfigError(f"{package}.REGISTRY: unknown kind {kind!r}; kinds are {', '.join(KINDS)}")
        for name, where in entries.items():
            if not isinstance(where, str) or not _TARGET.fullmatch(where):
                raise ConfigError(f"{package}.REGISTRY[{kind!r}][{name!r}] must look like '.module:attribute', got {where!r}")
            full = package + where if where.startswith(".") else where
            existing = _TABLE[kind].get(name)
            if existing is not None and existing != full:
                raise ConfigError(f"{package} registers {kind} {name!r}, already registered as {existing!r}")
            _TABLE[kind][name] = full
            added.append((kind, name))
    return added


def _check_kind(kind: str) -> None:
    if kind not in _TABLE and kind not in OWNED:
        raise ValueError(f"unknown registry kind {kind!r}; kinds are {', '.join(KINDS + SETTING_KINDS)}")
    _find_methods()


def _owned(kind: str) -> OwnedKind:
    """The table keeping an owned kind (imports its module, by name, on first use)."""
    module_name, _, attr = OWNED[kind].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def names(kind: str) -> list[str]:
    """Sorted names registered for ``kind`` (imports nothing, except the table of an owned kind)."""
    _check_kind(kind)
    if kind in OWNED:
        return sorted(_owned(kind).names())
    return sorted(_TABLE[kind])


def target(kind: str, name: str) -> str:
    """The ``"module:attribute"`` string behind a name (no import of the component)."""
    _check_kind(kind)
    try:
        return _owned(kind).target(name) if kind in OWNED else _TABLE[kind][name]
    except (KeyError, TypeError):
        raise ConfigError(unknown_name_message(kind, name)) from None


def default(kind: str) -> str:
    """The name an option file gets when it gives none (``protocol``: the metrics package's
    ``DEFAULT_PROTOCOL``); ValueError for a kind without one."""
    _check_kind(kind)
    value = _owned(kind).default if kind in OWNED else None
    if value is None:
        raise ValueError(f"registry kind {kind!r} has no default name")
    return value


def unknown_name_message(kind: str, name: str) -> str:
    known = names(kind)
    match = closest(str(name), known)
    hint = f"; did you mean {match!r}?" if match else ""
    listing = ", ".join(known) if known else "none registered"
    return f"unknown {kind} {name!r}{hint} (known: {listing})"


def get(kind: str, name: str) -> Any:
    """Import and return the component registered as ``name`` under ``kind``."""
    where = target(kind, name)
    if kind in OWNED:
        return _owned(kind).get(name)
    module_name, _, attr = where.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def register(kind: str, name: str, where: str) -> None:
    """Add (or replace) an entry, e.g. ``register("arch", "mynet", "mypkg.mynet:MyNet")``.

    Called explicitly by user code; nothing registers itself at import time. Metrics and
    protocols are added through their own tables (ValueError here, naming the call to use).
    """
    _check_owner(kind)
    if ":" not in where:
        raise ValueError(f"registry target must look like 'module:attribute', got {where!r}")
    _TABLE[kind][name] = where


def _check_owner(kind: str) -> None:
    """Refuse to add entries to a kind kept in another table (it knows more than a target)."""
    _check_kind(kind)
    if kind in OWNED:
        raise ValueError(_owned_message(kind))


def _owned_message(kind: str) -> str:
    hint = _owned(kind).how_to_add
    return f"{kind} entries are kept in {OWNED[kind].partition(':')[0]}" + (f"; add one with {hint}" if hint else "")


@contextmanager
def registered(kind: str, name: str, where: str) -> Iterator[None]:
    """``register`` for the duration of a ``with`` block, then put back what was there (tests,
    notebooks, plug-ins tried out without touching the global table for good)."""
    _check_owner(kind)
    previous = _TABLE[kind].get(name)
    register(kind, name, where)
    try:
        yield
    finally:
        if previous is None:
            _TABLE[kind].pop(name, None)
        else:
            _TABLE[kind][name] = previous
