"""The metric table: one declarative entry per metric, the only place metric knowledge lives.

A tiny API over a table (pyiqa style). Each :class:`Metric` says

* ``name`` -- what option files list under ``metrics:`` and the per-image column;
* ``target`` -- ``"module:attribute"`` of the function (or class) computing it, imported on
  first use, so importing this module costs nothing;
* ``better`` -- ``"higher"`` or ``"lower"``, for every key the metric produces;
* ``needs`` -- what a protocol must have for the metric to exist there: ``"ssim"`` (an SSIM
  variant) or ``"shadow"`` (a shadow family; its masks give the region values);
* ``regions`` / ``pooled`` -- the keys it produces: per region (``_s`` shadow, ``_ns``
  non-shadow) under the listed shadow families, and, when pooled, a dataset value pooled over all
  pixels (``_pp``) next to the mean over images (``_pi``).

Which metrics a protocol computes by default stays with the protocol
(:data:`restore.metrics.protocols.PROTOCOLS`, field ``metrics``). Everything else reads this
table: the :class:`~restore.metrics.evaluator.Evaluator` (known metrics, row and summary keys,
user metrics), the trainer (which summary keys keep a ``best_<set>_<key>.pth``, and which way),
the HTML report (which column ranks the images, and which way) and :mod:`restore.registry`'s
kind ``metric`` (so option files are checked against it, through :data:`REGISTRY_VIEW`).

A user metric is one call::

    register_metric("mae", "mypkg.metrics:mae", better="lower")

``mae(pred, target)`` gets float64 ``(B, C, H, W)`` RGB (or grey) images in [0, 1] -- the
protocol's quantised images, borders cropped (shadow protocols: the images the protocol
measures) -- and returns ``(B,)`` values, one per image; a class is instantiated once, without
arguments, and then called the same way. Its dataset value is the mean over images.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from restore.errors import ConfigError
from restore.registry import OwnedKind
from restore.utils.suggest import did_you_mean

Better = Literal["higher", "lower"]
Need = Literal["ssim", "shadow"]
REGION_SUFFIXES = ("", "_s", "_ns")  # whole image, shadow region, non-shadow region
POOL_SUFFIXES = ("_pp", "_pi")  # pooled over pixels, mean over images
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


@dataclass(frozen=True)
class Metric:
    """One entry of the table (see the module docstring for the fields)."""

    name: str
    target: str
    better: Better
    description: str = ""
    needs: tuple[Need, ...] = ()
    regions: tuple[str, ...] = ()  # shadow families ('a', 'b') under which it is split by region
    pooled: bool = False
    builtin: bool = False  # computed by the Evaluator itself, with the protocol's settings

    @property
    def lower_is_better(self) -> bool:
        return self.better == "lower"

    def row_keys(self, shadow: str | None = None) -> tuple[str, ...]:
        """Per-image keys under a protocol of shadow family ``shadow`` (None: not a shadow protocol)."""
        suffixes = REGION_SUFFIXES if shadow is not None and shadow in self.regions else ("",)
        return tuple(self.name + s for s in suffixes)

    def summary_keys(self, shadow: str | None = None) -> tuple[str, ...]:
        """Dataset keys under shadow family ``shadow``: the row keys, each as ``_pp``/``_pi`` when pooled."""
        rows = self.row_keys(shadow)
        return tuple(k + s for k in rows for s in POOL_SUFFIXES) if self.pooled else rows

    def headline_keys(self) -> tuple[str, ...]:
        """The whole-image dataset keys (no region): the figures a best-weights file is kept for."""
        return tuple(self.name + s for s in POOL_SUFFIXES) if self.pooled else (self.name,)

    def all_keys(self) -> frozenset[str]:
        """Every row or summary key this metric can produce, under any protocol."""
        keys: set[str] = set()
        for shadow in (None, *self.regions):
            keys.update(self.row_keys(shadow), self.summary_keys(shadow))
        return frozenset(keys)

    def load(self) -> Any:
        """Import and return the target; a target that cannot be imported is a one-line ConfigError."""
        module_name, _, attr = self.target.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"metric {self.name!r}: cannot load {self.target!r}: {exc}") from None


_BUILTIN = (
    Metric("psnr", "restore.metrics.psnr:psnr", "higher", "peak signal-to-noise ratio (dB)",
           regions=("a",), builtin=True),
    Metric("ssim", "restore.metrics.ssim:ssim", "higher", "structural similarity, the protocol's variant",
           needs=("ssim",), regions=("a",), builtin=True),
    Metric("lpips", "restore.metrics.lpips_metric:LPIPSMetric", "lower", "learned perceptual distance (LPIPS)",
           builtin=True),
    Metric("lab_mae", "restore.metrics.shadow:lab_mae", "lower", "mean absolute error in CIE LAB (shadow removal)",
           needs=("shadow",), regions=("a", "b"), pooled=True, builtin=True),
)
_TABLE: dict[str, Metric] = {m.name: m for m in _BUILTIN}


def metric_names() -> tuple[str, ...]:
    """Every metric, in table order (built-ins, then user metrics as registered); the order of
    an Evaluator's columns."""
    return tuple(_TABLE)


def get_metric(name: str) -> Metric:
    """The entry called ``name``; a ConfigError with a did-you-mean when unknown."""
    try:
        return _TABLE[name]
    except (KeyError, TypeError):
        known = metric_names()
        raise ConfigError(f"unknown metric {name!r}{did_you_mean(str(name), known)} (known: {', '.join(known)})") from None


def metric_of(key: str) -> Metric | None:
    """The metric a row or summary key belongs to (``lab_mae_s_pp`` -> lab_mae), None for others
    (``name``, ``n_images``)."""
    return next((m for m in _TABLE.values() if key in m.all_keys()), None)


def higher_is_better(key: str) -> bool:
    """Direction of a row or summary key; KeyError for a key no metric produces."""
    metric = metric_of(key)
    if metric is None:
        raise KeyError(f"no metric produces the key {key!r}")
    return not metric.lower_is_better


def best_keys() -> dict[str, bool]:
    """Summary key -> lower is better, for every metric's whole-image figures (``psnr``,
    ``lab_mae_pp``, a user metric's name): the keys the trainer keeps best weights for."""
    return {k: m.lower_is_better for m in _TABLE.values() for k in m.headline_keys()}


def ranking_order(shadow: bool) -> tuple[str, ...]:
    """Metrics in the order that picks a protocol's headline figure: a shadow protocol's own
    metrics (those needing a shadow family: LAB MAE, the field's "RMSE") first, then table order."""
    return tuple(sorted(_TABLE, key=lambda n: not (shadow and "shadow" in _TABLE[n].needs)))


def register_metric(name: str, target: str, *, better: Better, description: str = "") -> Metric:
    """Add a user metric (see the module docstring for how it is called); returns its entry.

    ``name``: lower-case letters, digits and ``_`` (it becomes a column and part of a weights file
    name), not a built-in metric and not a key another metric produces (``psnr_s``);
    registering a user metric again replaces it. Nothing is imported until it is used.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name == "name" or name.startswith("n_images"):
        raise ValueError(f"metric name must be lower-case letters, digits and '_' (not 'name' or 'n_images*'), got {name!r}")
    if not isinstance(target, str) or not _TARGET.fullmatch(target):
        raise ValueError(f"metric target must look like 'module:attribute', got {target!r}")
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', got {better!r}")
    clash = next((m for m in _TABLE.values() if m.name != name and name in m.all_keys()), None)
    if (name in _TABLE and _TABLE[name].builtin) or clash is not None:
        owner = _TABLE[name] if clash is None else clash
        raise ValueError(f"metric name {name!r} is taken by the built-in metric {owner.name!r}")
    metric = Metric(name, target, better, description)
    _TABLE[name] = metric
    return metric


@contextmanager
def registered_metric(name: str, target: str, *, better: Better, description: str = "") -> Iterator[Metric]:
    """:func:`register_metric` for a ``with`` block, then put back what was there (tests, notebooks)."""
    previous = _TABLE.get(name)
    metric = register_metric(name, target, better=better, description=description)
    try:
        yield metric
    finally:
        if previous is None:
            _TABLE.pop(name, None)
        else:
            _TABLE[name] = previous


#: What :mod:`restore.registry` reads for its kind ``metric`` (it names this by string).
REGISTRY_VIEW = OwnedKind(
    names=metric_names,
    target=lambda name: _TABLE[name].target,
    get=lambda name: _TABLE[name].load(),
    how_to_add="restore.metrics.register_metric(name, 'module:attribute', better='higher' or 'lower')",
)
