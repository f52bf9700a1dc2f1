"""The tile-score table: how hard a patch is, by name, for routing compute (DDA) and for training classes.

Adaptive inference (``infer.adaptive.score``) and DDA training (``train.step: {type: dda, score:}``)
pick a score by name here; a higher score means more degradation, so the patch gets a wider
network. One declarative :class:`TileScore` per score:

* ``name`` -- what option files write;
* ``target`` -- ``"module:attribute"`` of ``fn(image, mask) -> float``, imported on first use:
  ``image`` an ``(H, W, C)`` uint8 array (RGB or grey), ``mask`` an ``(H, W)`` bool array or
  None;
* ``needs_mask`` -- the score reads the network's ``mask`` input (shadow removal);
* ``description`` -- one line for listings and docs.

Built in:

* ``moire`` -- DDA's moiré prior, colourfulness x high-pass energy
  (:func:`restore.metrics.moire_prior.moire_score`);
* ``noise`` -- the noise standard deviation in 8-bit levels, Immerkær's estimator (the mean
  absolute response to the 3x3 mask ``[[1,-2,1],[-2,4,-2],[1,-2,1]]``, which cancels planes and
  most edges, times ``sqrt(pi/2) / 6``), per channel and averaged;
* ``texture`` -- gradient energy, the mean of ``gx^2 + gy^2`` over pixels and channels, in 8-bit
  levels squared (forward differences);
* ``mask`` -- the shadow-mask fraction (pixels with mask > 0.5).

A user score is one call, ``register_tile_score("edges", "mypkg.scores:edges")``.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from restore.errors import ConfigError
from restore.registry import OwnedKind
from restore.utils.suggest import did_you_mean

ScoreFn = Callable[[np.ndarray, "np.ndarray | None"], float]
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


@dataclass(frozen=True)
class TileScore:
    """One entry of the table (fields: see the module docstring)."""

    name: str
    target: str
    needs_mask: bool = False
    description: str = ""

    def load(self) -> ScoreFn:
        """Import and return the score function (one-line ConfigError when it cannot be imported)."""
        module_name, _, attr = self.target.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"tile score {self.name!r}: cannot load {self.target!r}: {exc}") from None


# ----------------------------------------------------------------------------- built-in scores


def moire(image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """DDA's moiré prior (colourfulness x frequency) of a uint8 patch."""
    from restore.metrics.moire_prior import moire_score

    return moire_score(image)


_LAPLACE_DIFF = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])


def noise_level(image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Immerkær's noise standard deviation, in 8-bit levels, averaged over channels.

    ``sigma = sqrt(pi/2) / (6 (H-2) (W-2)) * sum |I * N|`` over the valid (unpadded) pixels; for
    white Gaussian noise on a smooth image it estimates the noise's std.
    """
    planes = image.astype(np.float64)
    if planes.ndim == 2:
        planes = planes[..., None]
    h, w = planes.shape[:2]
    if h < 3 or w < 3:
        return 0.0
    response = np.zeros((h - 2, w - 2, planes.shape[2]))
    for dy in range(3):
        for dx in range(3):
            response += _LAPLACE_DIFF[dy, dx] * planes[dy : dy + h - 2, dx : dx + w - 2]
    return float(math.sqrt(math.pi / 2) / 6 * np.abs(response).mean())


def gradient_energy(image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean ``gx^2 + gy^2`` (forward differences) over pixels and channels, in 8-bit levels squared.

    Per channel, so colour texture on a constant luminance counts too.
    """
    g = image.astype(np.float64)
    if g.ndim == 2:
        g = g[..., None]
    if g.shape[0] < 2 or g.shape[1] < 2:
        return 0.0
    gx = np.diff(g, axis=1)[:-1]
    gy = np.diff(g, axis=0)[:, :-1]
    return float((gx**2 + gy**2).mean())


def mask_fraction(image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """The fraction of the patch the shadow mask covers (0 without a mask)."""
    if mask is None or mask.size == 0:
        return 0.0
    return float(np.asarray(mask, dtype=bool).mean())


_BUILTIN = (
    TileScore("moire", "restore.metrics.tile_scores:moire", description="DDA moiré prior: colourfulness x high-pass energy"),
    TileScore("noise", "restore.metrics.tile_scores:noise_level", description="noise std in 8-bit levels (Immerkær)"),
    TileScore("texture", "restore.metrics.tile_scores:gradient_energy", description="gradient energy, per channel"),
    TileScore("mask", "restore.metrics.tile_scores:mask_fraction", needs_mask=True,
              description="fraction of the patch under the shadow mask"),
)
_TABLE: dict[str, TileScore] = {s.name: s for s in _BUILTIN}


def tile_score_names() -> tuple[str, ...]:
    """Every score, in table order."""
    return tuple(_TABLE)


def get_tile_score(name: str) -> TileScore:
    """The entry called ``name``; a one-line ConfigError with a did-you-mean when unknown."""
    try:
        return _TABLE[name]
    except (KeyError, TypeError):
        known = tile_score_names()
        raise ConfigError(f"unknown tile score {name!r}{did_you_mean(str(name), known)} (known: {', '.join(known)})") from None


def register_tile_score(name: str, target: str, *, needs_mask: bool = False, description: str = "") -> TileScore:
    """Add (or replace) a user score; ``fn(image, mask) -> float`` as the built-ins (module docstring)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"tile score name must be lower-case letters, digits and '_', got {name!r}")
    if not isinstance(target, str) or not _TARGET.fullmatch(target):
        raise ValueError(f"tile score target must look like 'module:attribute', got {target!r}")
    if name in {s.name for s in _BUILTIN}:
        raise ValueError(f"tile score name {name!r} is a built-in score")
    entry = TileScore(name, target, needs_mask, description)
    _TABLE[name] = entry
    return entry


def to_uint8(t: Tensor) -> np.ndarray:
    """A ``(C, H, W)`` float tensor in [0, 1] -> ``(H, W, C)`` uint8 (rounded, clipped), as saved."""
    array = t.detach().float().cpu().clamp(0, 1).mul(255).round().to(torch.uint8)
    return np.ascontiguousarray(array.permute(1, 2, 0).numpy())


def score_batch(name: str, images: Tensor, masks: Tensor | None = None) -> np.ndarray:
    """Score every patch of ``images`` ``(N, C, H, W)`` float in [0, 1] -> ``(N,)`` float64.

    Patches are first quantised to 8 bits (the prior is defined on 8-bit images). ``masks``
    ``(N, 1, H, W)`` in [0, 1] (> 0.5 is shadow) is passed to a score that needs it; a score that
    needs a mask without one is a ConfigError.
    """
    entry = get_tile_score(name)
    if entry.needs_mask and masks is None:
        raise ConfigError(f"tile score {name!r} reads the shadow mask, but the network takes no mask input")
    fn = entry.load()
    out = np.empty(images.shape[0], dtype=np.float64)
    for n in range(images.shape[0]):
        mask = (masks[n, 0] > 0.5).cpu().numpy() if (masks is not None and entry.needs_mask) else None
        image = to_uint8(images[n])
        out[n] = float(fn(image[..., 0] if image.shape[2] == 1 else image, mask))
    return out


#: What :mod:`restore.registry` reads for its kind ``tile_score`` (it names this by string).
REGISTRY_VIEW = OwnedKind(
    names=tile_score_names,
    target=lambda name: _TABLE[name].target,
    get=lambda name: _TABLE[name].load(),
    how_to_add="restore.metrics.tile_scores.register_tile_score(name, 'module:attribute')",
)
