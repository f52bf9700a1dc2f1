"""What every synthetic degradation shares: the call shape and the per-image parameter ranges.

Its own module so that degradations living in files of their own (:mod:`restore.data.moire`)
and the name table of :mod:`restore.data.degradations` both build on it without importing each
other. The call shape and seeding rules are described in :mod:`restore.data.degradations`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from restore.errors import ConfigError

Range = tuple[float, float]


def uniform(generator: torch.Generator, low: float, high: float) -> float:
    """One draw of U[low, high) (``low`` itself when the range is a single value)."""
    u = float(torch.rand((), generator=generator, dtype=torch.float64))
    return low + (high - low) * u


def parse_range(name: str, value: Any) -> Range:
    """A ``[low, high]`` option (a single number means a fixed value)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), float(value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        low, high = float(value[0]), float(value[1])
        if low <= high:
            return low, high
    raise ConfigError(f"degradation option {name!r} must be a number or [low, high] with low <= high, got {value!r}")


class Degradation:
    """Base class: ``draw`` the image's parameters, then ``apply`` them (see the module docstring)."""

    name: str = ""
    #: Output size = input size / scale (bicubic down-sampling); 1 for all the others.
    scale: int = 1

    def draw(self, generator: torch.Generator) -> dict[str, float]:
        return {}

    def apply(self, clean: Tensor, params: dict[str, float], generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    def __call__(self, clean: Tensor, generator: torch.Generator) -> Tensor:
        if clean.ndim != 3:
            raise ValueError(f"degradations take one (C, H, W) image, got shape {tuple(clean.shape)}")
        return self.apply(clean, self.draw(generator), generator)
