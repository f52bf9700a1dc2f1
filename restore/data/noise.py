"""Synthetic noise models (Neighbor2Neighbor conventions, ``shared/specs/neighbor2neighbor.md`` §5).

Names: ``gauss25`` (sigma 25 on the 0..255 scale), ``gauss5_50`` (sigma ~ U(5, 50) per image),
``poisson30`` (lambda 30), ``poisson5_50`` (lambda ~ U(5, 50) per image); ``5-50`` is accepted
for ``5_50`` and decimals are allowed (``gauss12.5``).

* Gaussian: ``y = x + (sigma / 255) * n``, ``n ~ N(0, 1)`` per pixel and channel.
* Poisson: ``y = Poisson(lambda * x) / lambda`` per pixel and channel (mean x, variance x/lambda).
* For range styles the level is drawn once per image, before the noise (N2N's order).
* No clipping and no quantisation by default (as N2N); ``clip`` clamps to ``[0, 1]`` and
  ``quantize`` rounds to the 256 uint8 levels (half to even) and implies clipping.

The noise is independent per pixel. N2N's training code calls
``torch.normal(mean, std=(B,1,1,1) tensor, out=(B,C,H,W))``, which on current PyTorch resizes
``out`` and yields one constant offset per image; that pitfall is deliberately not reproduced.
All draws come from the ``torch.Generator`` passed in, so they are reproducible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from restore.errors import ConfigError

_NAME = re.compile(r"^(gauss|poisson)(\d+(?:\.\d+)?)(?:[_-](\d+(?:\.\d+)?))?$")


@dataclass(frozen=True)
class NoiseModel:
    """``kind`` gauss (level = sigma on 0..255) or poisson (level = lambda); range ``[low, high]``."""

    kind: str
    low: float
    high: float
    clip: bool = False
    quantize: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("gauss", "poisson"):
            raise ConfigError(f"unknown noise kind {self.kind!r} (gauss or poisson)")
        if self.low > self.high:
            raise ConfigError(f"noise range {self.low}..{self.high} is empty (low > high)")
        if self.kind == "gauss" and self.low < 0:
            raise ConfigError(f"gaussian sigma must be >= 0, got {self.low}")
        if self.kind == "poisson" and self.low <= 0:
            raise ConfigError(f"poisson lambda must be > 0, got {self.low}")

    @property
    def is_range(self) -> bool:
        return self.high > self.low

    def draw_level(self, generator: torch.Generator) -> float:
        """The level for one image: fixed, or uniform in ``[low, high)`` for range styles."""
        if not self.is_range:
            return float(self.low)
        u = float(torch.rand((), generator=generator, dtype=torch.float64))
        return self.low + (self.high - self.low) * u

    def apply_level(self, clean: torch.Tensor, level: float, generator: torch.Generator) -> torch.Tensor:
        """Noise one image (any shape) at a given level; see the module docstring."""
        if self.kind == "gauss":
            n = torch.randn(clean.shape, generator=generator, dtype=clean.dtype, device=clean.device)
            noisy = clean + n * (level / 255.0)
        else:
            rate = clean.clamp(min=0) * level
            noisy = torch.poisson(rate, generator=generator) / level
        if self.clip or self.quantize:
            noisy = noisy.clamp(0.0, 1.0)
        if self.quantize:
            noisy = torch.round(noisy * 255.0) / 255.0
        return noisy

    def __call__(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``(C,H,W)`` -> one level; ``(B,C,H,W)`` -> a level per image (drawn in batch order)."""
        if clean.ndim == 4:
            return torch.stack([self(img, generator) for img in clean])
        level = self.draw_level(generator)
        return self.apply_level(clean, level, generator)


def parse_noise(name: str, clip: bool = False, quantize: bool = False) -> NoiseModel:
    """Parse an N2N noise name (``gauss25``, ``gauss5_50``, ``poisson30``, ``poisson5_50``)."""
    m = _NAME.match(name.strip().lower()) if isinstance(name, str) else None
    if m is None:
        raise ConfigError(
            f"cannot parse noise {name!r}: expected gauss<sigma>, gauss<lo>_<hi>, "
            "poisson<lambda> or poisson<lo>_<hi> (e.g. gauss25, poisson5_50)"
        )
    kind, low, high = m.group(1), float(m.group(2)), m.group(3)
    return NoiseModel(kind, low, float(high) if high is not None else low, clip, quantize)
