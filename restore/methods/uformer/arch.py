"""Uformer (Wang et al., CVPR 2022): a U-shaped transformer of locally-enhanced window blocks.

Four encoder stages (C, 2C, 4C, 8C channels; 4x4 stride-2 conv between them), a bottleneck of
16C, and four decoder stages that concatenate ``[upsampled, skip]`` (16C, 8C, 4C, 2C). Every
stage is a stack of LeWin blocks: LayerNorm -> attention inside non-overlapping 8x8 windows
(shifted by 4 in odd-indexed blocks, relative position bias, a learned per-window-position
"modulator" added to the windows of decoder blocks) -> LayerNorm -> LeFF (linear, depthwise 3x3
conv on the whole map, linear). The output conv predicts a residual added to the input.

State-dict keys, shapes and the ``relative_position_index`` buffers equal the official release,
so its ``{'state_dict': {'module.' + key: ...}}`` files load strictly (the engine unwraps them).
Features travel as ``(B, H, W, C)`` maps, the 2-D form of the official ``(B, H*W, C)`` tokens,
so the network also runs on rectangular inputs; H and W must be multiples of ``size_multiple``
(128 with the official options: four halvings, then 8-pixel windows).

``img_size`` does not change the weights but does change the computation (the official model
fixes each block's window and shift at construction from ``img_size / 2**level``): a block whose
nominal resolution is at most ``win_size`` gets no shift and a window of that resolution. With the
default 128 (every official test script) the two bottleneck blocks never shift; 256 (the GoPro
training build) shifts the second one.

Arbitrary image sizes (``forward_any_size``, used by the engine): ``pad="square"`` (default)
is the official test procedure, centred zero padding to a square whose side is a multiple of
``size_multiple``, then cropping back; ``pad="multiple"`` pads height and width separately at the
bottom/right (``pad_mode``, reflect) to the multiple, which is cheaper for wide images but not
what the released numbers used.

Not ported: ``token_mlp='fastleff'`` (needs the external ``torch_dwconv`` package) and the
``cross_modulator`` (unused by the release). ``token_projection='conv'`` and the
``ffn``/``mlp`` feed-forward are reconstructions (no released weights to check their keys).
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restore.archs.window_attention import Stage, init_transformer_weights
from restore.errors import ConfigError

# The named variants of the official ``get_arch`` (all with modulator=True).
VARIANTS: dict[str, dict[str, Any]] = {
    "T": {"embed_dim": 16, "depths": [2, 2, 2, 2, 2, 2, 2, 2, 2], "modulator": True},
    "S": {"embed_dim": 32, "depths": [2, 2, 2, 2, 2, 2, 2, 2, 2], "modulator": True},
    "B": {"embed_dim": 32, "depths": [1, 2, 8, 8, 2, 8, 8, 2, 1], "modulator": True},
}


class _Conv(nn.Module):
    """A conv applied to a (B, H, W, C) map, kept in a Sequential for the official key ``<name>.0``."""

    def __init__(self, conv: nn.Module, attr: str) -> None:
        super().__init__()
        setattr(self, attr, nn.Sequential(conv))
        self.attr = attr

    def forward(self, x: Tensor) -> Tensor:
        return getattr(self, self.attr)(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class Uformer(nn.Module):
    """Uformer on (B, dd_in, H, W) -> (B, in_chans, H, W); H, W multiples of ``size_multiple``.

    Defaults are the official class defaults except ``img_size`` (128, the official test builds;
    the class default is 256). The official named models are :class:`UformerT`, ``S``, ``B``.

    restore additions (official behaviour by default): ``pad`` (see the module docstring);
    ``mask_input`` makes ``forward(x, mask)`` take a (B, 1, H, W) mask concatenated to the image
    (``dd_in`` must be ``in_chans + 1``; the engine then passes a dataset's ``mask``);
    ``residual`` adds the input image to the output (None: the official rule, ``dd_in == 3``).
    """

    pad_mode = "reflect"

    def __init__(
        self,
        img_size: int = 128,
        in_chans: int = 3,
        dd_in: int = 3,
        embed_dim: int = 32,
        depths: list[int] = (2, 2, 2, 2, 2, 2, 2, 2, 2),
        num_heads: list[int] = (1, 2, 4, 8, 16, 16, 8, 4, 2),
        win_size: int = 8,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        token_projection: Literal["linear", "conv"] = "linear",
        token_mlp: Literal["leff", "ffn", "mlp"] = "leff",
        shift_flag: bool = True,
        modulator: bool = False,
        use_checkpoint: bool = False,
        pad: Literal["square", "multiple"] = "square",
        mask_input: bool = False,
        residual: bool | None = None,
    ) -> None:
        super().__init__()
        depths, num_heads = list(depths), list(num_heads)
        self._check(depths, num_heads, embed_dim, token_projection, token_mlp, pad, img_size, win_size)
        image_channels = dd_in - 1 if mask_input else dd_in
        if mask_input and image_channels != in_chans:
            raise ConfigError(f"Uformer mask_input needs dd_in == in_chans + 1 (image + mask), got dd_in={dd_in}")
        self.residual = dd_in == 3 if residual is None else residual
        if self.residual and image_channels != in_chans:
            raise ConfigError(f"Uformer residual needs {in_chans} image input channels, got {image_channels}")
        self.mask_input, self.pad = mask_input, pad
        self.in_nc, self.dd_in = image_channels, dd_in
        self.input_keys = ("input", "mask") if mask_input else ("input",)

        enc_dpr = torch.linspace(0, drop_path_rate, sum(depths[:4]), device="cpu").tolist()
        dec_dpr = torch.linspace(0, drop_path_rate, sum(depths[5:]), device="cpu").tolist()[::-1]
        block = dict(win_size=win_size, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale, drop=drop_rate,
                     attn_drop=attn_drop_rate, token_projection=token_projection, token_mlp=token_mlp)

        def stage(i: int, dim: int, level: int, dpr: list[float], mod: bool) -> Stage:
            return Stage(depths[i], dpr, shift_flag, use_checkpoint, dim=dim, resolution=img_size // 2**level,
                         heads=num_heads[i], modulator=mod, **block)

        c = embed_dim
        self.input_proj = nn.Module()
        self.input_proj.proj = nn.Sequential(nn.Conv2d(dd_in, c, 3, padding=1), nn.LeakyReLU(inplace=True))
        self.output_proj = nn.Module()
        self.output_proj.proj = nn.Sequential(nn.Conv2d(2 * c, in_chans, 3, padding=1))
        self.pos_drop = nn.Dropout(drop_rate)
        for i in range(4):
            dpr = enc_dpr[sum(depths[:i]) : sum(depths[: i + 1])]
            self.add_module(f"encoderlayer_{i}", stage(i, c * 2**i, i, dpr, False))
            self.add_module(f"dowsample_{i}", _Conv(nn.Conv2d(c * 2**i, c * 2 ** (i + 1), 4, 2, 1), "conv"))
        self.conv = stage(4, 16 * c, 4, [drop_path_rate] * depths[4], False)
        for i in range(4):
            cin = 16 * c if i == 0 else c * 2 ** (5 - i)
            dpr = dec_dpr[sum(depths[5 : 5 + i]) : sum(depths[5 : 6 + i])]
            self.add_module(f"upsample_{i}", _Conv(nn.ConvTranspose2d(cin, c * 2 ** (3 - i), 2, 2), "deconv"))
            self.add_module(f"decoderlayer_{i}", stage(5 + i, c * 2 ** (4 - i), 3 - i, dpr, modulator))
        self.size_multiple = math.lcm(*(s.blocks[0].win_size * 2**lvl for s, lvl in self._stages() if len(s.blocks)))
        self.apply(init_transformer_weights)

    @staticmethod
    def _check(depths: list[int], heads: list[int], c: int, projection: str, mlp: str, pad: str, img_size: int,
               win_size: int) -> None:
        if len(depths) != 9 or len(heads) != 9:
            raise ConfigError(f"Uformer depths and num_heads need 9 entries (4 encoder, bottleneck, 4 decoder), got "
                              f"{len(depths)} and {len(heads)}")
        dims = [c, 2 * c, 4 * c, 8 * c, 16 * c, 16 * c, 8 * c, 4 * c, 2 * c]
        if any(d % h for d, h in zip(dims, heads)):
            raise ConfigError(f"Uformer stage widths {dims} must be divisible by num_heads {heads}")
        for name, value, choices in (("token_projection", projection, ("linear", "conv")),
                                     ("token_mlp", mlp, ("leff", "ffn", "mlp")), ("pad", pad, ("square", "multiple"))):
            if value not in choices:
                raise ConfigError(f"Uformer {name} must be one of {', '.join(choices)}, got {value!r}")
        if img_size < 16 or win_size < 1:
            raise ConfigError(f"Uformer img_size must be at least 16 and win_size positive, got {img_size}, {win_size}")

    def _stages(self) -> list[tuple[Stage, int]]:
        """Every stage with its down-sampling level (0 = full resolution)."""
        levels = [0, 1, 2, 3, 4, 3, 2, 1, 0]
        names = [f"encoderlayer_{i}" for i in range(4)] + ["conv"] + [f"decoderlayer_{i}" for i in range(4)]
        return [(getattr(self, n), lvl) for n, lvl in zip(names, levels)]

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """(B, dd_in, H, W) [+ (B, 1, H, W) mask with ``mask_input``] -> (B, in_chans, H, W)."""
        image = x
        if self.mask_input:
            if mask is None:
                raise ValueError("this Uformer was built with mask_input=True: call it as model(image, mask)")
            x = torch.cat([x, mask.to(x.dtype)], dim=1)
        h, w = x.shape[-2:]
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(f"Uformer needs H and W divisible by {self.size_multiple}, got {h}x{w} "
                             "(forward_any_size pads any size)")
        y = self.pos_drop(self.input_proj.proj(x).permute(0, 2, 3, 1))
        skips = []
        for i in range(4):
            y = getattr(self, f"encoderlayer_{i}")(y)
            skips.append(y)
            y = getattr(self, f"dowsample_{i}")(y)
        y = self.conv(y)
        for i in range(4):
            y = torch.cat([getattr(self, f"upsample_{i}")(y), skips[3 - i]], dim=-1)
            y = getattr(self, f"decoderlayer_{i}")(y)
        y = self.output_proj.proj(y.permute(0, 3, 1, 2))
        return image + y if self.residual else y

    def forward_any_size(self, x: Tensor, *extra: Tensor) -> Tensor:
        """Any (B, C, H, W) (+ same-size mask) -> (B, in_chans, H, W), by the ``pad`` rule.

        ``square``: the official ``expand2square``: a zero canvas of side
        ``ceil(max(H, W) / size_multiple) * size_multiple`` holding the image at offset
        ``((side - H) // 2, (side - W) // 2)``; the model sees the zero border; the output is cut back.
        """
        h, w = x.shape[-2:]
        m = self.size_multiple
        if self.pad == "multiple":
            from restore.archs.contract import pad_to_multiple

            out = self(*(pad_to_multiple(t, m, self.pad_mode)[0] for t in (x, *extra)))
            return out[..., :h, :w]
        side = -(-max(h, w) // m) * m
        top, left = (side - h) // 2, (side - w) // 2
        pads = (left, side - w - left, top, side - h - top)
        out = self(*(F.pad(t, pads) for t in (x, *extra)))
        return out[..., top : top + h, left : left + w]


def _variant_class(name: str) -> type[Uformer]:
    """Uformer with one named variant's ``embed_dim``, ``depths`` and ``modulator`` (registry
    ``uformer_t/s/b``); every other option stays, and the signature says so for option checking."""
    preset = VARIANTS[name]

    class Variant(Uformer):
        def __init__(self, **kwargs: Any) -> None:
            fixed = sorted(set(preset) & set(kwargs))
            if fixed:
                raise ConfigError(f"uformer_{name.lower()} fixes {', '.join(fixed)}; use type 'uformer' to change it")
            super().__init__(**preset, **kwargs)

    params = [p for k, p in inspect.signature(Uformer.__init__).parameters.items() if k not in preset]
    Variant.__init__.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    Variant.__init__.__annotations__ = {k: v for k, v in Uformer.__init__.__annotations__.items() if k not in preset}
    Variant.__name__ = Variant.__qualname__ = f"Uformer{name}"
    Variant.__doc__ = f"Uformer-{name} (official named variant: {preset})."
    return Variant


UformerT, UformerS, UformerB = _variant_class("T"), _variant_class("S"), _variant_class("B")
