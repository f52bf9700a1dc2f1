"""Synthetic degradations of clean images, for pre-training (IPT, TAPE) and synthetic test sets.

Every degradation is a callable with one call shape::

    degraded = degradation(clean, generator)   # clean: (C, H, W) float in [0, 1]

returning ``(C, H, W)`` (``(C, H/s, W/s)`` for bicubic down-sampling by ``s``) in ``[0, 1]``,
with the clean tensor's dtype. Per-image parameters (noise level, streak angle, haze density,
...) are drawn first by :meth:`Degradation.draw`, then the pixels by :meth:`Degradation.apply`,
all from the one ``torch.Generator`` passed in: the same generator state gives the same output
(the datasets seed it from the sample seed, see :mod:`restore.data.base`).

Names (:func:`parse_degradation`), with their per-image parameter ranges:

==================  ===============================================================  =======
name                model                                                            source
==================  ===============================================================  =======
``bicubic_x2|3|4``  MATLAB ``imresize(x, 1/s)`` (Keys cubic a=-0.5, antialiased),   IPT
                    on the uint8 image as the field's LR sets are made
``gauss30``, ...    ``clip(x + sigma/255 * N(0,1))``; ``gauss5_50``: sigma ~ U[5,50]  IPT, TAPE
                    (names of :mod:`restore.data.noise`, clipped, not quantised)
``rain``            streak layer below; TAPE's ranges                                TAPE [R]
``rain_light``,     the same model, sparser / denser streaks                         [R]
``rain_heavy``
``haze``            ``x = c t + A (1 - t)``, ``t = exp(-beta d)``                    TAPE [R]
``lowlight``        ``x = clip(s c^gamma + sigma N(0,1))``                           TAPE [R]
``blur``            Gaussian (sigma ~ U[0.5,3]) or linear motion (size 11..31),      TAPE [R]
                    50/50; ``blur_gauss`` / ``blur_motion`` pick one
``jpeg``            OpenCV JPEG at quality ~ U{10..50}; ``jpeg30``, ``jpeg20_40``     TAPE [R]
``moire``,          a screen photographed by a camera, warped back into alignment   [R]
``moire_strong``    (:mod:`restore.data.moire`; ``docs/dda.md``)
==================  ===============================================================  =======

[R] marks reconstructions (``shared/specs/tape.md`` §5: TAPE's own synthesis is unknown); every
range is a constructor argument, settable from option files (``degradation_args``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from restore.data.degradation_base import Degradation, Range, uniform
from restore.data.degradation_base import parse_range as _range
from restore.data.noise import NoiseModel, parse_noise
from restore.errors import ConfigError


def _conv_same(x: Tensor, kernel: Tensor) -> Tensor:
    """Depthwise correlation of ``(C, H, W)`` with one odd ``(k, k)`` kernel, reflect-padded."""
    k = kernel.shape[-1]
    c = x.shape[0]
    pad = k // 2
    mode = "reflect" if pad < min(x.shape[-2:]) else "replicate"
    xp = F.pad(x[None], (pad, pad, pad, pad), mode=mode)
    weight = kernel.to(x.dtype).expand(c, 1, k, k)
    return F.conv2d(xp, weight, groups=c)[0]


def line_kernel(length: float, angle: float, size: int | None = None) -> Tensor:
    """An anti-aliased line segment, float32 ``(k, k)`` with peak 1 (not normalised).

    The segment has ``length`` pixels, is centred on the kernel and points along
    ``(dx, dy) = (sin angle, cos angle)`` (``angle`` in degrees from the vertical, image
    coordinates: x right, y down; positive angles lean the bottom end to the right). A pixel's
    value is ``max(0, 1 - dist(pixel centre, segment))``: a one-pixel tent across the line.
    """
    k = size if size is not None else 2 * math.ceil(length / 2) + 3
    r = (k - 1) / 2
    coords = torch.arange(k, dtype=torch.float64) - r
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    theta = math.radians(angle)
    dx, dy = math.sin(theta), math.cos(theta)
    t = (x * dx + y * dy).clamp(-length / 2, length / 2)
    dist = torch.hypot(x - t * dx, y - t * dy)
    return (1.0 - dist).clamp(min=0).float()


@dataclass
class BicubicDown(Degradation):
    """MATLAB ``imresize(x, 1/scale, 'bicubic')``, via :func:`restore.utils.matlab_resize.imresize`.

    ``uint8`` (default): the clean image is rounded to 8 bits and resized on MATLAB's uint8
    path (each axis pass rounded half away from zero and saturated), i.e. exactly the
    ``LR_bicubic`` PNGs of the EDSR/IPT benchmarks when the clean image is 8-bit. Otherwise the
    float64 result is clipped to [0, 1]. H and W must be multiples of ``scale`` (the datasets
    crop the HR image to such a size first). ``(C, H, W) -> (C, H/scale, W/scale)``.
    """

    scale: int = 2
    uint8: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.scale, int) or self.scale < 2:
            raise ConfigError(f"bicubic down-sampling needs an integer scale >= 2, got {self.scale!r}")
        self.name = f"bicubic_x{self.scale}"

    def apply(self, clean: Tensor, params: dict[str, float], generator: torch.Generator) -> Tensor:
        from restore.utils.matlab_resize import imresize

        h, w = clean.shape[-2:]
        s = self.scale
        if h % s or w % s:
            raise ValueError(f"{self.name}: image size {w}x{h} (WxH) is not a multiple of {s}")
        x = clean.detach().cpu()[None]
        if self.uint8:
            x8 = (x.double().clamp(0, 1) * 255.0).round().to(torch.uint8)
            out = imresize(x8, (h // s, w // s)).double() / 255.0
        else:
            out = imresize(x.double(), (h // s, w // s)).clamp(0.0, 1.0)
        return out[0].to(clean.dtype).to(clean.device)


@dataclass
class AdditiveNoise(Degradation):
    """Gaussian or Poisson noise named as in :mod:`restore.data.noise` (``gauss30``,
    ``gauss5_50``, ...), clipped to [0, 1] and not rounded (as IPT's ``clamp(HR + sigma N)``)."""

    noise: str = "gauss30"
    clip: bool = True

    def __post_init__(self) -> None:
        self.model: NoiseModel = parse_noise(self.noise, clip=self.clip)
        self.name = self.noise

    def draw(self, generator: torch.Generator) -> dict[str, float]:
        return {"level": self.model.draw_level(generator)}

    def apply(self, clean: Tensor, params: dict[str, float], generator: torch.Generator) -> Tensor:
        return self.model.apply_level(clean, params["level"], generator)


def rain_layer(
    height: int, width: int, density: float, length: float, angle: float, generator: torch.Generator
) -> Tensor:
    """The streak layer ``R`` of :class:`RainStreaks`, float32 ``(H, W)`` in [0, 1]."""
    seeds = torch.rand(height, width, generator=generator) < density
    brightness = 0.5 + 0.5 * torch.rand(height, width, generator=generator)
    impulses = (seeds * brightness).float()
    kernel = line_kernel(length, angle)
    return _conv_same(impulses[None], kernel)[0].clamp(0.0, 1.0)


@dataclass
class RainStreaks(Degradation):
    """Synthetic rain streaks (a documented model of ours; Rain100L-like at the defaults).

    Per image draw density ``rho ~ U[density]``, length ``L ~ U[length]`` (pixels), angle
    ``theta ~ U[angle]`` (degrees from the vertical, one for all streaks as in wind-driven
    rain) and intensity ``I ~ U[intensity]``. Then, per pixel ``p``::

        M(p) = b(p) v(p),   b ~ Bernoulli(rho),  v ~ U[0.5, 1)     sparse streak seeds
        R    = clip(M * K_{L,theta}, 0, 1)                         * = 2-D convolution
        x    = clip(c + I R, 0, 1)                                 same R on every channel

    where ``K_{L,theta}`` is :func:`line_kernel` (an anti-aliased segment of length L, peak 1),
    so every seed becomes a streak of its own brightness ``v`` and crossings saturate. ``rho``
    is the fraction of pixels that start a streak (about ``rho * L`` of the image is covered).
    Defaults: TAPE's table (length 10-40, angle +-30, intensity 0.3-0.9); the density range is
    ours (Rain100L-like sparse rain).
    """

    density: Range = (0.001, 0.004)
    length: Range = (10.0, 40.0)
    angle: Range = (-30.0, 30.0)
    intensity: Range = (0.3, 0.9)
    name: str = "rain"

    def __post_init__(self) -> None:
        for f in ("density", "length", "angle", "intensity"):
            setattr(self, f, _range(f, getattr(self, f)))
        if not (0 <= self.density[0] and self.density[1] <= 1):
            raise ConfigError(f"rain density must lie in [0, 1], got {list(self.density)}")
        if self.length[0] < 0:
            raise ConfigError(f"rain streak length must be >= 0, got {list(self.length)}")

    def draw(self, generator: torch.Generator) -> dict[str, float]:
        return {k: uniform(generator, *getattr(self, k)) for k in ("density", "length", "angle", "intensity")}

    def apply(self, clean: Tensor, params: dict[str, float], generator: torch.Generator) -> Tensor:
        h, w = clean.shape[-2:]
        layer = rain_layer(h, w, params["density"], params["length"], params["angle"], generator)
        return (clean + params["intensity"] * layer.to(clean.device, clean.dtype)).clamp(0.0, 1.0)


@dataclass
class Haze(Degradation):
    """Atmospheric scattering ``x = c t + A (1 - t)``, ``t = exp(-beta d)``.

    ``beta ~ U[beta]``, airlight ``A ~ U[airlight]`` (grey). Depth ``d``: ``"field"`` (default)
    is a smooth random map in [0, 1], a ``grid x grid`` table of U[0, 1) values bilinearly
    up-sampled (corners aligned) to the image; ``"constant"`` is d = 1 everywhere.
    The output stays in [0, 1] (a convex combination of c and A).
    """

    beta: Range = (0.6, 1.8)
    airlight: Range = (0.7, 1.0)
    depth: str = "field"
    grid: int = 4
    name: str = "haze"

    def __post_init__(self) -> None:
        self.beta, self.airlight = _range("beta", self.beta), _range("airlight", self.airlight)
        if self.depth not in ("field", "constant"):
            raise ConfigError(f"haze depth must be 'field' or 'constant', got {self.depth!r}")
        if self.grid < 2:
            raise ConfigError(f"haze grid must be >= 2, got {self.grid}")

    def draw(self, generator: torch.Generator) -> dict[str, float]:
        return {"beta": uniform(generator, *self.beta), "airlight": uniform(generator, *self.airlight)}

    def apply(self, clean: Tensor, params: dict[str, float], generator: torch.Generator) -> Tensor:
        h, w = clean.shape[-2:]
        if self.depth == "constant":
            d = torch.ones(1, h, w)
        else:
            coarse = torch.rand(1, 1, self.grid, self.grid, generator=generator)
            d = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=True)[0]
        t = torch.exp(-params["beta"] * d).to(clean.device, clean.dtype)
        return (clean * t + params["airlight"] * (1 - t)).clamp(0.0, 1.0)


@dataclass
class LowLight(Degradation):
    """Darkening with a gamma curve plus read noise: ``x = clip(s c^gamma + sigma N(0, 1))``.

    ``gamma ~ U[gamma]``, ``s ~ U[gain]``, ``sigma ~ U[noise] / 255`` per image; the noise is
    independent per pixel and channel. TAPE's table says "small Gaussian/Poisson noise": the
    Gaussian read-noise range (1-8 on 0..255) is ours [R].
    """

    gamma: Range = (1.5, 3.5)
    gain: Range = (0.2, 0.6)
    noise: Range = (1.0, 8.0)
    name: str = "lowlight"

    def __post_init__(self) -> None:
        for f in ("gamma", "gain", "noise"):
            setattr(self, f, _range(f, getattr(self, f)))

    def draw(self, generator: torch.Generator) -> dict[str, float]:
        return {k: uniform(generator, *getattr(self, k)) for k in ("gamma", "gain", "noise")}

    def apply(self, clean: Tensor, params: dict[str, float], generator: torch.Generator) -> Tensor:
        dark = params["gain"] * clean.clamp(min=0) ** params["gamma"]
        n = torch.randn(clean.shape, generator=generator, dtype=clean.dtype)
        return (dark + n.to(clean.device) * (params["noise"] / 255.0)).clamp(0.0, 1.0)


def gaussian_kernel(sigma: float) -> Tensor:
    """Normalised 2-D Gaussian, float32 ``(k, k)`` with ``k = 2 ceil(3 sigma) + 1``."""
    r = max(1, math.ceil(3 * sigma))
    x = torch.arange(-r, r + 1, dtype=torch.float64)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    k = torch.outer(g, g)
    return (k / k.sum()).float()


@dataclass
class Blur(Degradation):
    """Gaussian blur (``sigma ~ U[sigma]``) or linear motion blur, reflect-padded.

    Motion: a normalised :func:`line_kernel` of odd size ``k ~ U{motion_size}`` whose segment
    spans the kernel (length ``k - 2``), at an angle ~ U[0, 180). TAPE says "random motion
    kernel (size 11-31)"; straight-line motion is our reading [R]. ``kind``: ``"any"`` picks
    Gaussian or motion with probability 1/2 per image.
    """

    kind: str = "any"
    sigma: Range = (0.5, 3.0)
    motion_size: Range = (11, 31)
    name: str = "blur"

    def __post_init__(self) -> None:
        if self.kind not in ("any", "gauss", "motion"):
            raise ConfigError(f"blur kind must be 'any', 'gauss' or 'motion', got {self.kind!r}")
        self.sigma, self.motion_size = _range("sigma", self.sigma), _range("motion_size", self.motion_size)
        if self.sigma[0] <= 0 or self.motion_size[0] < 3:
            raise ConfigError("blur sigma must be > 0 and motion_size >= 3")

    def draw(self, generator: torch.Generator) -> dict[str, float]:
        motion = uniform(generator, 0, 1) < 0.5 if self.kind == "any" else self.kind == "motion"
        sigma = uniform(generator, *self.sigma)
        lo, hi = int(self.motion_size[0]) // 2, int(self.motion_size[1]) // 2
        size = 2 * int(torch.randint(lo, hi + 1, (), generator=generator)) + 1
        angle = uniform(generator, 0.0, 180.0)
        return {"motion": float(motion), "sigma": sigma, "size": float(size), "angle": angle}

    def apply(self, clean: Tensor, params: dict[str, float], generator: torch.Generator) -> Tensor:
        if params["motion"]:
            size = int(params["size"])
            kernel = line_kernel(size - 2, params["angle"], size)
            kernel = kernel / kernel.sum()
        else:
            kernel = gaussian_kernel(params["sigma"])
        return _conv_same(clean, kernel.to(clean.device)).clamp(0.0, 1.0)


@dataclass
class JPEG(Degradation):
    """OpenCV JPEG compression (libjpeg, 4:2:0 for colour) at quality ``q ~ U{quality}``."""

    quality: Range = (10, 50)
    name: str = "jpeg"

    def __post_init__(self) -> None:
        self.quality = _range("quality", self.quality)
        if not (1 <= self.quality[0] and self.quality[1] <= 100):
            raise ConfigError(f"jpeg quality must lie in 1..100, got {list(self.quality)}")

    def draw(self, generator: torch.Generator) -> dict[str, float]:
        lo, hi = int(self.quality[0]), int(self.quality[1])
        return {"quality": float(torch.randint(lo, hi + 1, (), generator=generator))}

    def apply(self, clean: Tensor, params: dict[str, float], generator: torch.Generator) -> Tensor:
        import cv2

        img = (clean.detach().cpu().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
        if img.shape[2] == 3:
            img = img[:, :, ::-1]  # RGB -> BGR
        ok, data = cv2.imencode(".jpg", img.copy(), [cv2.IMWRITE_JPEG_QUALITY, int(params["quality"])])
        if not ok:
            raise RuntimeError("OpenCV failed to encode a JPEG")
        out = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        out = out[:, :, None] if out.ndim == 2 else out[:, :, ::-1]
        return torch.from_numpy(out.copy()).permute(2, 0, 1).to(clean.dtype).div(255.0).to(clean.device)


_PRESETS: dict[str, tuple[type[Degradation], dict[str, Any]]] = {
    "rain": (RainStreaks, {}),
    "rain_light": (RainStreaks, {"density": (0.0005, 0.002), "intensity": (0.3, 0.7), "name": "rain_light"}),
    "rain_heavy": (RainStreaks, {"density": (0.004, 0.01), "intensity": (0.5, 0.9), "name": "rain_heavy"}),
    "haze": (Haze, {}),
    "lowlight": (LowLight, {}),
    "blur": (Blur, {}),
    "blur_gauss": (Blur, {"kind": "gauss", "name": "blur_gauss"}),
    "blur_motion": (Blur, {"kind": "motion", "name": "blur_motion"}),
    "jpeg": (JPEG, {}),
}
# Synthetic moiré lives in its own module (which imports this one): built on demand.
_MOIRE: dict[str, dict[str, Any]] = {
    "moire": {},
    "moire_strong": {"blur": (0.15, 0.25), "perspective": (0.03, 0.08), "distortion": (-0.2, 0.2)},
}
_BICUBIC = re.compile(r"^bicubic_x(\d+)$")
_JPEG = re.compile(r"^jpeg(\d+)(?:[_-](\d+))?$")
_NOISE = re.compile(r"^(gauss|poisson)\d")
KNOWN = "bicubic_x<s>, gauss<sigma>, gauss<lo>_<hi>, poisson<lambda>, jpeg<q>, jpeg<lo>_<hi>, " + ", ".join(
    [*_PRESETS, *_MOIRE]
)


def _build(cls: type[Degradation], name: str, preset: dict[str, Any], args: dict[str, Any]) -> Degradation:
    fixed = {"name", "noise" if cls is AdditiveNoise else "name", "scale" if cls is BicubicDown else "name"}
    valid = [f.name for f in fields(cls) if f.name not in fixed]  # what the name itself sets
    for key in args:
        if key not in valid:
            raise ConfigError(f"unknown option {key!r} for degradation {name!r} (options: {', '.join(valid)})")
    try:
        return cls(**{**preset, **args})
    except TypeError as exc:
        raise ConfigError(f"bad options for degradation {name!r}: {exc}") from None


def parse_degradation(name: str, **args: Any) -> Degradation:
    """A degradation from its name (see the module docstring); ``args`` override its options."""
    if not isinstance(name, str):
        raise ConfigError(f"a degradation name must be a string, got {name!r}")
    key = name.strip().lower()
    if key in _PRESETS:
        cls, preset = _PRESETS[key]
        return _build(cls, key, preset, args)
    if key in _MOIRE:
        from restore.data.moire import Moire

        return _build(Moire, key, {**_MOIRE[key], "name": key}, args)
    if m := _BICUBIC.match(key):
        return _build(BicubicDown, key, {"scale": int(m.group(1))}, args)
    if m := _JPEG.match(key):
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        return _build(JPEG, key, {"quality": (lo, hi), "name": key}, args)
    if _NOISE.match(key):
        return _build(AdditiveNoise, key, {"noise": key}, args)
    raise ConfigError(f"unknown degradation {name!r} (known: {KNOWN})")
