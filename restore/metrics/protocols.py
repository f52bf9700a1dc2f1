"""Declarative table of evaluation protocols: one entry per published convention (metrics.md §4-5b).

A number is only meaningful with its protocol: the same restored image scores differently under
BasicSR (uint8, per-channel SSIM), the SIDD MATLAB script (float, 3-D SSIM) or the deraining
script (rounded Y). Each :class:`Protocol` fixes every choice that changes the digits:

* ``quantize`` -- what happens to a float network output before scoring: ``'round'`` (half to
  even: BasicSR ``tensor2img``, ``img_as_ubyte``), ``'round_half_up'`` (Neighbor2Neighbor
  ``uint8(clip(255x + 0.5))``), ``'trunc'`` (WDNet ``np.uint8(255x)``) or ``None`` (clamped float).
* ``color`` -- ``'rgb'``, ``'y'`` (BT.601, unrounded), ``'y_round'`` (MATLAB uint8 ``rgb2ycbcr``)
  or ``'y_edsr'`` (EDSR/IPT weights, on the difference).
* ``scale`` -- metrics run on data in [0, scale] (255 for uint8-valued references, 1 for float);
  ``psnr_peak`` and ``ssim_range`` (SSIM's L) are in that scale.
* ``ssim`` variant (see :mod:`restore.metrics.ssim`), default ``crop_border``, ``pairing`` of result
  and GT files when scoring folders (``'same_name'`` = same stem, or ``'sorted'`` = position in the
  sorted listings, MATLAB ``dir`` order; applied by :mod:`restore.data.pairing`), default
  ``metrics`` (names of :mod:`restore.metrics.table`, which says what each needs), ``lpips_net``
  and the shadow ``family`` ('a' / 'b').
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from restore.errors import ConfigError
from restore.metrics.table import get_metric, metric_names
from restore.registry import OwnedKind
from restore.utils.suggest import did_you_mean

Quantize = Literal["round", "round_half_up", "trunc"] | None
Color = Literal["rgb", "y", "y_round", "y_edsr"]

QUANTIZE_RULES = ("round", "round_half_up", "trunc", None)
COLORS = ("rgb", "y", "y_round", "y_edsr")
PAIRINGS = ("same_name", "sorted")
_NEED_WORDS = {"ssim": "an SSIM variant", "shadow": "a shadow family"}


@dataclass(frozen=True)
class Protocol:
    """One evaluation convention; see the module docstring for the fields' meaning."""

    name: str
    label: str
    description: str
    quantize: Quantize = "round"
    color: Color = "rgb"
    scale: float = 255.0
    psnr_peak: float = 255.0
    ssim: str | None = "gaussian"
    ssim_range: float = 255.0
    crop_border: int = 0
    pairing: Literal["same_name", "sorted"] = "same_name"
    metrics: tuple[str, ...] = ("psnr", "ssim")
    lpips_net: str = "alex"
    shadow: Literal["a", "b"] | None = None

    def __post_init__(self) -> None:
        if self.quantize not in QUANTIZE_RULES:
            raise ValueError(f"{self.name}: quantize must be one of {QUANTIZE_RULES}, got {self.quantize!r}")
        if self.color not in COLORS:
            raise ValueError(f"{self.name}: color must be one of {COLORS}, got {self.color!r}")
        if self.pairing not in PAIRINGS:
            raise ValueError(f"{self.name}: pairing must be one of {PAIRINGS}, got {self.pairing!r}")
        unknown = set(self.metrics) - set(metric_names())
        if unknown:
            raise ValueError(f"{self.name}: unknown metrics {sorted(unknown)}")
        for m in self.metrics:
            missing = [n for n in get_metric(m).needs if not self.has(n)]
            if missing:
                raise ValueError(f"{self.name}: lists {m}, which needs {_NEED_WORDS[missing[0]]}")
        if self.color == "y_round" and (self.scale != 255.0 or self.quantize is None):
            raise ValueError(f"{self.name}: 'y_round' needs uint8 data (scale 255, quantised)")

    def has(self, need: str) -> bool:
        """Whether this protocol meets a metric's need (see :mod:`restore.metrics.table`):
        ``'ssim'`` an SSIM variant, ``'shadow'`` a shadow family."""
        return {"ssim": self.ssim is not None, "shadow": self.shadow is not None}[need]

    def available_metrics(self) -> tuple[str, ...]:
        """Metrics this protocol can compute, in table order: those whose needs it meets (PSNR,
        LPIPS and user metrics always, SSIM with a variant, LAB MAE for shadow families)."""
        return tuple(m for m in metric_names() if all(self.has(n) for n in get_metric(m).needs))


def _p(**kw) -> Protocol:
    return Protocol(**kw)


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        _p(
            name="basicsr",
            label="BasicSR RGB",
            description=(
                "BasicSR validation: output rounded to uint8, RGB PSNR (MAX 255), Gaussian valid SSIM per"
                " channel (L=255)"
            ),
        ),
        _p(
            name="basicsr_y",
            label="BasicSR Y",
            description=(
                "BasicSR test_y_channel: uint8 (round), BT.601 Y unrounded, PSNR MAX 255, Gaussian valid "
                "SSIM on Y (L=255)"
            ),
            color="y",
        ),
        _p(
            name="sidd_matlab",
            label="SIDD MATLAB",
            description=(
                "SIDD validation MATLAB script: clamped float (no quantisation), RGB PSNR peak 1, 3-D "
                "volume SSIM with replicate padding (L=1)"
            ),
            quantize=None,
            scale=1.0,
            psnr_peak=1.0,
            ssim="matlab3d",
            ssim_range=1.0,
        ),
        _p(
            name="derain_matlab",
            label="Derain MATLAB Y",
            description=(
                "MPRNet/Restormer evaluate_PSNR_SSIM.m: uint8, Y rounded to uint8, PSNR MAX 255, "
                "SSIM_index valid (L=255); pair by sorted order"
            ),
            color="y_round",
            pairing="sorted",
        ),
        _p(
            name="tip2018",
            label="TIP2018 MopNet/ESDNet",
            description=(
                "TIP2018 demoire (inputs already 2/3-cropped + 256x256 bilinear): uint8 RGB PSNR MAX 255,"
                " MATLAB 3-D SSIM (L=255); sorted pairing"
            ),
            ssim="matlab3d",
            pairing="sorted",
        ),
        _p(
            name="tip2018_wdnet",
            label="TIP2018 WDNet Y",
            description=(
                "WDNet predict_TIP2018.py: output truncated to uint8, skimage Y (unrounded), PSNR MAX "
                "255, skimage 7x7 uniform SSIM (sample cov., L=255)"
            ),
            quantize="trunc",
            color="y",
            ssim="skimage_uniform",
            pairing="sorted",
        ),
        _p(
            name="aim19",
            label="AIM19 LCDMoire",
            description=(
                "LCDMoire (ESDNet): uint8-rounded output /255, RGB PSNR peak 1, old-skimage 7x7 uniform "
                "SSIM with data_range 2 (sample cov.)"
            ),
            scale=1.0,
            psnr_peak=1.0,
            ssim="skimage_uniform",
            ssim_range=2.0,
        ),
        _p(
            name="fhdmi",
            label="FHDMi",
            description=(
                "FHDMi (FHDe2Net/ESDNet): uint8 RGB PSNR MAX 255, skimage 7x7 uniform SSIM (sample cov., "
                "L=255), full 1080p"
            ),
            ssim="skimage_uniform",
        ),
        _p(
            name="gopro",
            label="GoPro (Uformer)",
            description=(
                "Uformer test_gopro_hide.py: clamped float output, RGB PSNR peak 1, old-skimage 7x7 uniform "
                "SSIM per channel with the implied data_range 2 of float input (sample cov.)"
            ),
            quantize=None,
            scale=1.0,
            psnr_peak=1.0,
            ssim="skimage_uniform",
            ssim_range=2.0,
        ),
        _p(
            name="uhdm",
            label="UHDM",
            description=(
                "UHDM (ESDNet): clamped float, RGB PSNR peak 1, Gaussian valid SSIM over all channels "
                "(L=1), LPIPS AlexNet"
            ),
            quantize=None,
            scale=1.0,
            psnr_peak=1.0,
            ssim_range=1.0,
            metrics=("psnr", "ssim", "lpips"),
        ),
        _p(
            name="shadow_a",
            label="Shadow A: measure_shadow.m",
            description=(
                "measure_shadow.m: uint8 result/GT/mask imresize'd to 256x256 (mask != 0), LAB MAE "
                "S/NS/ALL (PP and PI), PSNR and 3-D SSIM (L=1) full and region-masked; sorted pairing"
            ),
            scale=1.0,
            psnr_peak=1.0,
            ssim="matlab3d",
            ssim_range=1.0,
            pairing="sorted",
            metrics=("psnr", "ssim", "lab_mae"),
            shadow="a",
        ),
        _p(
            name="shadow_b",
            label="Shadow B: evaluate_recovery.m",
            description=(
                "DC-ShadowNet evaluate_recovery.m: native size (GT bicubic / mask nearest to the result "
                "size), LAB MAE S/NS/ALL dataset-pooled"
            ),
            scale=1.0,
            psnr_peak=1.0,
            ssim=None,
            ssim_range=1.0,
            pairing="sorted",
            metrics=("lab_mae",),
            shadow="b",
        ),
        _p(
            name="n2n",
            label="Neighbor2Neighbor",
            description=(
                "Neighbor2Neighbor validation: uint8(clip(255x+0.5)) (round half up), RGB PSNR MAX 255, "
                "Gaussian valid SSIM per channel (L=255)"
            ),
            quantize="round_half_up",
        ),
        _p(
            name="ipt",
            label="IPT Y (EDSR)",
            description=(
                "IPT/EDSR calc_psnr: output rounded, PSNR on the EDSR-weighted Y of the difference, no "
                "crop (scale 1), no SSIM"
            ),
            color="y_edsr",
            ssim=None,
            metrics=("psnr",),
        ),
    )
}

DEFAULT_PROTOCOL = "basicsr"


def _where(name: str) -> str:
    """Where protocol ``name`` lives, for the registry: the table itself (KeyError when unknown)."""
    if name not in PROTOCOLS:
        raise KeyError(name)
    return f"{__name__}:PROTOCOLS"


#: What :mod:`restore.registry` reads for its setting kind ``protocol`` (it names this by string),
#: so option files are checked against :data:`PROTOCOLS` without the config layer importing it.
REGISTRY_VIEW = OwnedKind(
    names=lambda: tuple(PROTOCOLS),
    target=_where,
    get=lambda name: PROTOCOLS[name],
    default=DEFAULT_PROTOCOL,
)


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; :class:`ConfigError` with a did-you-mean when unknown."""
    try:
        return PROTOCOLS[name]
    except (KeyError, TypeError):
        known = sorted(PROTOCOLS)
        raise ConfigError(
            f"unknown metric protocol {name!r}{did_you_mean(str(name), known)} (known: {', '.join(known)})"
        ) from None


def quantize(x: Tensor, rule: Quantize, *, scale: float = 255.0, is_target: bool = False) -> Tensor:
    """Bring a prediction or target to the protocol's data: float64 in ``[0, scale]``.

    ``x``: uint8 in [0, 255] (already quantised, e.g. read from disk: never re-quantised) or float
    in [0, 1] (clamped first). Float predictions follow ``rule``; float *targets* of a quantised
    protocol are ground-truth images that were uint8 once, so they are rounded to the nearest
    level (truncating ``k/255 * 255`` in float32 can give ``k - 1``). ``rule=None`` keeps floats.
    The multiply by 255 happens in the input's float precision, like the reference code
    (BasicSR's ``tensor2img`` works on float32).
    """
    if x.dtype == torch.uint8:
        return x.to(torch.float64) * scale / 255.0
    if not x.is_floating_point():
        raise ValueError(f"expected uint8 or float images, got {x.dtype}")
    if x.dtype not in (torch.float32, torch.float64):
        x = x.to(torch.float32)
    x = x.clamp(0.0, 1.0)
    if rule is None:
        return x.to(torch.float64) * scale
    v = x * 255.0
    if is_target or rule == "round":
        q = torch.round(v)  # half to even, like numpy
    elif rule == "round_half_up":
        q = torch.floor(v + 0.5)
    elif rule == "trunc":
        q = torch.floor(v)
    else:
        raise ValueError(f"unknown quantisation rule {rule!r}")
    return q.clamp_(0, 255).to(torch.float64) * scale / 255.0
