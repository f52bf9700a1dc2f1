"""WDNet: wavelet-domain dual-branch network for demoireing (Liu et al., ECCV 2020), as released.

The model takes an RGB image in [0, 1] and returns the restored RGB image; the wavelet domain is
internal (specs/wdnet.md §1)::

    x' = official per-channel mean shift of x           (two float32 steps, as the scripts do)
    y  = R(G(D(x'))) + x'

``D``/``R`` are the fixed 2-level Haar packet transform and its inverse
(:mod:`restore.methods.wdnet.wavelet`, (B,3,H,W) <-> (B,48,H/4,W/4)); ``G`` is the learned generator:
a 1x1 + 3x3 head to 64 channels, seven dual-branch blocks (:class:`DualBranchBlock`, the
official ``DMDB2``) whose dilated branch uses dilations 1, 2, 5, 7, 12, 19, 31, and a 1x1 tail
back to 48 channels. LeakyReLU(0.2) everywhere, no normalisation. The direction-aware (IRNN)
attention module of the paper is *not* part of the released network (spec §3.5) and is omitted.

State-dict keys and shapes equal the official ones (176 tensors, 3,919,280 parameters,
including the ``xbranch`` conv that the official forward never calls; it is kept so that
official checkpoints load with ``strict=True``). The thop-derived "3.36 M" often quoted is an
undercount (spec §4). Cost: 16.03 G MACs per 256x256 image; the official code spends 17.09 G
because it evaluates each block's dilated conv twice (same value; computed once here).

Options beyond the official network (all default to the official behaviour):

* ``channels``, ``growth``, ``dilations``: width, dense growth and per-block dilations (64, 32,
  and, for ``None``, the seven official ones); smaller values give light variants (tests).
* ``size_rule``: an H or W that is not a multiple of 4. ``"resize"`` is the official
  full-resolution rule (``predict_ldbuilding.py``): the wavelet path runs on the largest
  multiple-of-4 top-left part and its output is resized back with nearest-neighbour
  interpolation before the residual; ``"pad"`` (not official) reflect-pads to a multiple of 4
  and crops back instead.
* ``input_crop="tip2018"`` and ``emulate_truncation`` reproduce ``predict_TIP2018.py`` under
  ``restore infer`` (they act in :meth:`WDNet.forward_any_size` only, never in training): the
  input is cut to its central 2/3 and PIL-bilinear resized to 256x256 (so the output is
  256x256), and the output is lowered by half a grey level so that the engine's round-to-nearest
  uint8 conversion gives the official ``np.uint8(255 y)`` truncation (except at exact ties).
  They assume whole-image inference of 8-bit images (``infer.tile: null``, no self-ensemble).
  Leave both off for ``restore test``: its datasets already pre-process and its ``tip2018_wdnet``
  protocol already truncates.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restore.errors import ConfigError
from restore.methods.wdnet.wavelet import HaarPacket

#: Dilations of the seven dual-branch blocks of the released model.
OFFICIAL_DILATIONS = (1, 2, 5, 7, 12, 19, 31)
#: Per-channel means (0..255) that the official pre-processing maps the input from and to.
MEAN_SOURCE = (105.648186, 95.4836, 86.4105)
MEAN_TARGET = (121.2556, 114.89969, 102.02478)


def _conv(cin: int, cout: int, k: int = 3, dilation: int = 1) -> nn.Conv2d:
    """Stride-1 conv with 'same' zero padding (= the official TF-style padded ``Conv2d`` class)."""
    return nn.Conv2d(cin, cout, k, padding=dilation * (k - 1) // 2, dilation=dilation)


def _conv_act(cin: int, cout: int, k: int = 3, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(_conv(cin, cout, k, dilation), nn.LeakyReLU(0.2))


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs (official ``ResidualDenseBlock_5C``).

    ``x (B, nc, h, w) -> 0.2 * conv5([x, x1, x2, x3, x4])``, each ``x_i`` a ``growth``-channel
    LeakyReLU conv of everything before it. No skip inside: the caller adds it (or not).
    """

    def __init__(self, nc: int = 64, growth: int = 32) -> None:
        super().__init__()
        for i in range(1, 5):
            setattr(self, f"conv{i}", _conv_act(nc + (i - 1) * growth, growth))
        self.conv5 = nn.Sequential(_conv(nc + 4 * growth, nc))

    def forward(self, x: Tensor) -> Tensor:
        feats = [x]
        for i in range(1, 5):
            feats.append(getattr(self, f"conv{i}")(torch.cat(feats, 1)))
        return 0.2 * self.conv5(torch.cat(feats, 1))


class DualBranchBlock(nn.Module):
    """Dense branch + dilated branch (official ``DMDB2``), ``(B, nc, h, w) -> (B, nc, h, w)``.

    ``b = RDB2(RDB1(x) + x)`` (no skip around RDB2), ``p = lrelu(dilated conv(x))``,
    ``q = lrelu(conv(p))``; output ``0.2 b + p + 0.2 q``.
    """

    def __init__(self, nc: int = 64, growth: int = 32, dilation: int = 1) -> None:
        super().__init__()
        self.RDB1 = ResidualDenseBlock(nc, growth)
        self.RDB2 = ResidualDenseBlock(nc, growth)
        self.deli = _conv_act(nc, nc, 3, dilation)
        self.deli2 = _conv_act(nc, nc, 3, 1)

    def forward(self, x: Tensor) -> Tensor:
        dense = self.RDB2(self.RDB1(x) + x)
        p = self.deli(x)
        return 0.2 * dense + p + 0.2 * self.deli2(p)


class WDNet(nn.Module):
    """WDNet, RGB in and out: ``(B, 3, H, W)`` float in [0, 1] -> ``(B, 3, H, W)``.

    See the module docstring for the options; the defaults are the released network.
    """

    size_multiple = 4  # tiles are cut at multiples of 4; other sizes follow ``size_rule``
    channels_last = True  # NHWC inference: 0.81-0.85x the CPU time at 256x256 (interleaved A/B, 2 threads, AVX-512)
    export_core = "forward_core"  # what the fast backends export (forward holds the size rule)

    def __init__(
        self,
        channels: int = 64,
        growth: int = 32,
        dilations: list[int] | None = None,
        size_rule: Literal["resize", "pad"] = "resize",
        input_crop: Literal["tip2018"] | None = None,
        emulate_truncation: bool = False,
    ) -> None:
        super().__init__()
        dilations = list(OFFICIAL_DILATIONS if dilations is None else dilations)
        if size_rule not in ("resize", "pad"):
            raise ConfigError(f"WDNet size_rule must be 'resize' or 'pad', got {size_rule!r}")
        if input_crop not in (None, "tip2018"):
            raise ConfigError(f"WDNet input_crop must be 'tip2018' or null, got {input_crop!r}")
        if not dilations or any(int(d) < 1 for d in dilations):
            raise ConfigError(f"WDNet dilations must be a non-empty list of positive integers, got {list(dilations)}")
        self.size_rule, self.input_crop, self.emulate_truncation = size_rule, input_crop, emulate_truncation
        self.in_nc = 3
        self.wavelet = HaarPacket(levels=2, channels=3)
        bands = self.wavelet.bands * 3  # 48
        self.cascade1 = nn.Sequential(
            _conv(bands, channels, 1), nn.LeakyReLU(0.2), _conv(channels, channels, 3), nn.LeakyReLU(0.2)
        )
        self.cascade2 = nn.Sequential(*(DualBranchBlock(channels, growth, int(d)) for d in dilations))
        self.final = nn.Sequential(nn.Sequential(_conv(channels, bands, 1)))
        # Present in the official state_dict but never called by its forward.
        self.xbranch = nn.Sequential(_conv_act(3, channels, 3))
        self.register_buffer("mean_source", torch.tensor(MEAN_SOURCE).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("mean_target", torch.tensor(MEAN_TARGET).view(1, 3, 1, 1), persistent=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Official init (``weights_init_normal``): every conv weight zero except an identity at
        the centre tap (``eye_``, rectangular when out != in); biases keep PyTorch's default."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                k = m.kernel_size
                m.weight.zero_()
                nn.init.eye_(m.weight[:, :, k[0] // 2, k[1] // 2])

    def shift(self, x: Tensor) -> Tensor:
        """The official input pre-processing, in its two float32 steps (not one add: bit-closeness)."""
        src, tgt = self.mean_source.to(x.dtype), self.mean_target.to(x.dtype)
        x = (x * 255 - src) / 255 + 0.5
        return ((x - 0.5) * 255 + tgt) / 255

    def generator(self, bands: Tensor) -> Tensor:
        """``G``: ``(B, 48, h, w) -> (B, 48, h, w)`` in the wavelet domain."""
        return self.final(self.cascade2(self.cascade1(bands)))

    def forward_core(self, x: Tensor) -> Tensor:
        """``R(G(D(x)))`` on a shifted ``(B, 3, H, W)`` with H, W multiples of 4 (no residual).

        The part an exported graph replaces (``export_core``): the size rule, the mean shift and
        the residual stay in :meth:`forward`, which holds the only size-dependent decisions.
        """
        return self.wavelet.inverse(self.generator(self.wavelet(x)))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"WDNet expects (B, 3, H, W) RGB, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        x = self.shift(x)
        if h % 4 == 0 and w % 4 == 0:
            return self.forward_core(x) + x
        if self.size_rule == "pad":
            ph, pw = -h % 4, -w % 4
            mode = "reflect" if min(h, w) > 3 else "replicate"
            xp = F.pad(x, (0, pw, 0, ph), mode=mode)
            return (self.forward_core(xp) + xp)[..., :h, :w]
        if h < 4 or w < 4:
            raise ValueError(f"WDNet needs images of at least 4x4 pixels, got {h}x{w}")
        core = x[..., : h - h % 4, : w - w % 4]
        return F.interpolate(self.forward_core(core), size=(h, w)) + x

    def forward_any_size(self, x: Tensor) -> Tensor:
        """What the engine runs at test/infer time: optional TIP2018 crop, :meth:`forward`, optional
        half-level offset (see the module docstring)."""
        if self.input_crop == "tip2018":
            x = tip2018_crop(x)
        out = self.forward(x)
        if self.emulate_truncation:
            out = out - 0.5 / 255
        return out


def tip2018_crop(x: Tensor) -> Tensor:
    """``predict_TIP2018.py`` pre-processing: central 2/3 box, PIL bilinear resize to 256x256.

    ``(B, 3, H, W)`` in [0, 1] holding 8-bit values -> ``(B, 3, 256, 256)``; each image goes
    through PIL on uint8, exactly as the official script does.
    """
    import numpy as np

    from restore.data.transforms import tip2018_preprocess

    images = (x.detach().float() * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = [tip2018_preprocess([np.ascontiguousarray(im)], ["<input>"])[0] for im in images]
    batch = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255
    return batch.to(device=x.device, dtype=x.dtype)
