"""LAB-Net (Yang et al., arXiv 2208.13039): lightweight shadow removal in OpenCV's 8-bit LAB.

Two cross-linked branches ("L" and "AB" by name only) of Basic Blocks: three stages of three
parallel dilated 3x3 convolutions (widths c/2, c, 3c/2; dilations 1/4/16, 2/8/32, 4/16/64, reflect
padding), each fused by a 1x1 conv, an enhanced channel attention over the three stages, then
1x1 + 3x3 convolutions. Four local spatial attention blocks (LSA) let shadow pixels attend to
the ring of non-shadow pixels just outside the shadow. LeakyReLU(0.2) after every convolution,
the last one included; no normalisation; the global residual is added before the final conv.
State-dict keys and shapes equal the official ones (304 tensors, 933,355 parameters at c = 32).

As users call it: ``forward(rgb, mask)`` takes an RGB image ``(B, 3, H, W)`` in [0, 1] and the
raw shadow mask ``(B, 1, H, W)`` in [0, 1] (1 = shadow) and returns RGB ``(B, 3, H, W)`` exactly as
the official test path produces it: RGB -> OpenCV 8-bit LAB / 255, mask binarised (``> 0.9`` in
eval mode, ``> 0.5`` in train mode, the official thresholds) and dilated with an 11x11 square,
the network, then LAB x255 clipped and truncated to uint8 and converted back with OpenCV. That
path is not differentiable; training uses ``forward(lab, mask, lab=True)`` (LAB/255 in and out)
with the loss in LAB space (``train.step: {type: labnet}``, :mod:`restore.methods.labnet.loss`).

H and W must exceed 64 (reflection padding of 64): :meth:`LABNet.forward_any_size` pads smaller
images (not in the official code, which fails on them). The official test also resizes every
image (PIL nearest) to 640x480 (ISTD) or 840x640 (SRD): the data sets' native sizes, so it is
not reproduced here; other sizes run at their own size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restore.errors import ConfigError
from restore.methods.labnet import fast
from restore.methods.labnet.attention import local_spatial_attention
from restore.methods.labnet.lab import lab8_to_rgb, rgb_to_lab8

MASK_DILATION = 11  # flat square structuring element of the official mask_d
MIN_SIZE = 65  # reflection padding of 64 needs H, W > 64


class ConvLayer(nn.Module):
    """Reflect-padded (dilated) convolution + LeakyReLU(0.2); the official ``ConvLayer`` with
    ``norm='None'`` (its only use here). Key ``conv2d.{weight,bias}``."""

    def __init__(self, cin: int, cout: int, kernel_size: int, dilation: int = 1) -> None:
        super().__init__()
        pad = (kernel_size + (dilation - 1) * (kernel_size - 1)) // 2
        # Reflection padding by 0 would still copy the input: a 1x1 conv gets no padding mode.
        self.conv2d = nn.Conv2d(cin, cout, kernel_size, padding=pad, dilation=dilation,
                                padding_mode="reflect" if pad else "zeros")

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(self.conv2d(x), 0.2, inplace=True)  # the conv output is not needed for backward


class ChannelAttention(nn.Module):
    """Enhanced channel attention: channel weights from the spatial std of an edge response.

    ``convop`` is a depthwise 3x3 conv without padding or bias. The official module creates it
    as a Laplacian, but it is an ordinary trainable weight that the official Kaiming init
    overwrites; it is always loaded from the checkpoint, never regenerated.
    (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        self.linear1 = nn.Linear(channels, channels // reduction)
        self.linear2 = nn.Linear(channels // reduction, channels)
        self.convop = nn.Conv2d(channels, channels, 3, groups=channels, bias=False)

    def forward(self, v: Tensor) -> Tensor:
        spread = self.convop(v).std(dim=(2, 3))  # unbiased, as torch.std
        w = torch.sigmoid(self.linear2(F.leaky_relu(self.linear1(spread), 0.2)))
        return v * w[:, :, None, None]


class BasicBlock(nn.Module):
    """Three stages of parallel dilated convs, channel attention over their outputs, 1x1 + 3x3.

    (B, cin, H, W) -> (B, cout, H, W); ``c`` must be a multiple of 8 (widths c/2, c, 3c/2 and the
    attention's 3c/8 hidden units).
    """

    DILATIONS = ((1, 4, 16), (2, 8, 32), (4, 16, 64))

    def __init__(self, cin: int, cout: int, c: int) -> None:
        super().__init__()
        widths = (c // 2, c, 3 * c // 2)
        for stage, dilations in enumerate(self.DILATIONS, start=1):
            for j, (width, d) in enumerate(zip(widths, dilations), start=1):
                setattr(self, f"conv{stage}{j}", ConvLayer(cin if stage == 1 else c, width, 3, d))
            setattr(self, f"conv{stage}4", ConvLayer(3 * c, c, 1))
        self.conv41 = ConvLayer(3 * c, c, 1)
        self.conv42 = ConvLayer(c, cout, 3)
        self.channel_attention = ChannelAttention(3 * c)

    def forward(self, u: Tensor) -> Tensor:
        stages = []
        h = u
        for stage in (1, 2, 3):
            parallel = [getattr(self, f"conv{stage}{j}")(h) for j in (1, 2, 3)]
            h = getattr(self, f"conv{stage}4")(torch.cat(parallel, dim=1))
            stages.append(h)
        return self.conv42(self.conv41(self.channel_attention(torch.cat(stages, dim=1))))


class SpatialAttentionBlock(nn.Module):
    """Local spatial attention (LSA) at the working resolution ``size`` (nearest down and up).

    ``t`` (B, c, H, W) -> (B, c, H, W): ``convfinal([t, up(K)])`` where K = ``conv_ns`` features of
    the downsampled ``t`` whose shadow positions were replaced by attention over the ring
    (queries from ``conv_s``), see :func:`local_spatial_attention`.
    """

    def __init__(self, c: int) -> None:
        super().__init__()
        cq = 3 * c // 2
        self.conv_s = ConvLayer(c, cq, 3)
        self.conv_ns = ConvLayer(c, cq, 3)
        self.convfinal = ConvLayer(c + cq, c, 1)

    def forward(self, t: Tensor, shadow: Tensor, ring: Tensor, size: tuple[int, int]) -> Tensor:
        small = F.interpolate(t, size=size)  # mode 'nearest', as the official code
        q, k = self.conv_s(small), self.conv_ns(small)
        if q.requires_grad:
            # A batch without shadow (or ring) leaves conv_s unused; DistributedDataParallel needs
            # every parameter in the graph, so tie q in with an exact zero.
            k = k + 0.0 * q.sum()
        k = local_spatial_attention(q.flatten(2), k.flatten(2), shadow, ring).reshape(k.shape)
        return self.convfinal(torch.cat([t, F.interpolate(k, size=t.shape[-2:])], dim=1))


class LABNet(nn.Module):
    """LAB-Net; official configuration ``channels=32`` (933,355 parameters).

    Args:
        channels: feature width c (a multiple of 8; official 32).
        down_size: working resolution of the local spatial attention, an int or ``[H, W]``
            (official: 256 for ISTD, 128 for SRD). The official ``down_w, down_h`` are passed to
            ``F.interpolate(size=(down_w, down_h))``, i.e. ``down_w`` is the height; the
            official values are square.
        mask_threshold: shadow = mask > this in eval mode (official test: 0.9).
        train_mask_threshold: the same in train mode (official training: 0.5).

    The official constructor's ``in_channels``/``out_channels`` are not exposed: the L and AB
    heads (1 + 2 channels) and the global residual fix both at 3.
    """

    input_keys = ("input", "mask")
    in_nc = 3
    # What an exported graph (ONNX Runtime / OpenVINO backends) stands in for: the pure-torch
    # core; the OpenCV LAB conversions and the mask preparation stay in Python around it.
    export_core = "forward_lab"

    def __init__(
        self,
        channels: int = 32,
        down_size: int | list[int] = 256,
        mask_threshold: float = 0.9,
        train_mask_threshold: float = 0.5,
    ) -> None:
        super().__init__()
        if channels < 8 or channels % 8:
            raise ConfigError(f"labnet channels must be a positive multiple of 8 (official 32), got {channels}")
        size = [down_size, down_size] if isinstance(down_size, int) else list(down_size)
        if len(size) != 2 or any(not isinstance(v, int) or v < 1 for v in size):
            raise ConfigError(f"labnet down_size must be a positive int or [height, width], got {down_size!r}")
        self.down_size = (size[0], size[1])
        self.mask_threshold, self.train_mask_threshold = mask_threshold, train_mask_threshold
        c = channels
        # Registration order = the official state-dict order.
        self.convst = ConvLayer(3, 3, 3)
        self.basicblock1 = BasicBlock(4, c, c)
        self.basicblock2 = BasicBlock(4, c, c)
        self.conv12_l = ConvLayer(2 * c, c, 1)
        self.basicblock3 = BasicBlock(c, c, c)
        self.conv12_ab = ConvLayer(2 * c, c, 1)
        self.basicblock4 = BasicBlock(c, c, c)
        self.conv34_l = ConvLayer(2 * c, c, 1)
        self.spaatt1 = SpatialAttentionBlock(c)
        self.basicblock5 = BasicBlock(c, c, c)
        self.conv34_ab = ConvLayer(2 * c, c, 1)
        self.spaatt2 = SpatialAttentionBlock(c)
        self.basicblock6 = BasicBlock(c, c, c)
        self.conv56_l = ConvLayer(2 * c, c, 1)
        self.spaatt3 = SpatialAttentionBlock(c)
        self.basicblock7 = BasicBlock(c, 1, c)
        self.conv56_ab = ConvLayer(2 * c, c, 1)
        self.spaatt4 = SpatialAttentionBlock(c)
        self.basicblock8 = BasicBlock(c, 2, c)
        self.convfinal = ConvLayer(3, 3, 3)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Official init (``init_weights('kaiming')``): Kaiming-normal fan_in, a=0, on every conv
        and linear weight (``convop`` included), zero biases."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def prepare_mask(self, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Raw mask (B, 1, H, W) -> (binary mask, mask dilated by an 11x11 square), both float.

        The threshold is the train-mode one while ``self.training``, else the test one.
        """
        threshold = self.train_mask_threshold if self.training else self.mask_threshold
        binary = (mask > threshold).to(mask.dtype if mask.is_floating_point() else torch.float32)
        return binary, F.max_pool2d(binary, MASK_DILATION, stride=1, padding=MASK_DILATION // 2)

    def attention_regions(self, mask: Tensor, mask_d: Tensor) -> tuple[Tensor, Tensor]:
        """Shadow and ring positions at the working resolution, bool (B, N); shared by the 4 LSA
        blocks (the official code recomputes the same sets in each)."""
        m = F.interpolate(mask, size=self.down_size)
        md = F.interpolate(mask_d, size=self.down_size)
        return (m == 1).flatten(1), (md - m == 1).flatten(1)

    def forward_lab(self, lab: Tensor, mask: Tensor, mask_d: Tensor) -> Tensor:
        """The official ``LABNet.forward``: LAB/255 (B, 3, H, W), binary mask and dilated mask
        (B, 1, H, W) -> LAB/255 (B, 3, H, W), not clamped.

        Plain CPU inference (no autograd, tracing or autocast) takes the channels-last path of
        :mod:`restore.methods.labnet.fast`; everything else runs the modules.
        """
        if self._fast_inference(lab):
            return fast.forward_lab(self, lab, mask, mask_d)
        return self.forward_modules(lab, mask, mask_d)

    @staticmethod
    def _fast_inference(lab: Tensor) -> bool:
        return (
            lab.device.type == "cpu"
            and lab.dtype in (torch.float32, torch.float64)
            and not torch.is_grad_enabled()
            and not torch.is_autocast_enabled("cpu")
            and not torch.jit.is_tracing()
            and not torch.jit.is_scripting()
            and not torch.compiler.is_compiling()
        )

    def forward_modules(self, lab: Tensor, mask: Tensor, mask_d: Tensor) -> Tensor:
        """``forward_lab`` through the modules (differentiable, traceable, any device)."""
        shadow, ring = self.attention_regions(mask, mask_d)
        size = self.down_size
        image = self.convst(lab)
        both = torch.cat([image, mask], dim=1)
        b12 = torch.cat([self.basicblock1(both), self.basicblock2(both)], dim=1)
        b34 = torch.cat([self.basicblock3(self.conv12_l(b12)), self.basicblock4(self.conv12_ab(b12))], dim=1)
        l34 = self.spaatt1(self.conv34_l(b34), shadow, ring, size)
        ab34 = self.spaatt2(self.conv34_ab(b34), shadow, ring, size)
        b56 = torch.cat([self.basicblock5(l34), self.basicblock6(ab34)], dim=1)
        l56 = self.spaatt3(self.conv56_l(b56), shadow, ring, size)
        ab56 = self.spaatt4(self.conv56_ab(b56), shadow, ring, size)
        out = torch.cat([self.basicblock7(l56), self.basicblock8(ab56)], dim=1)
        return self.convfinal(out + lab)

    def forward(self, x: Tensor, mask: Tensor, *, lab: bool = False) -> Tensor:
        """RGB (B, 3, H, W) in [0, 1] + raw mask (B, 1, H, W) -> RGB, as the official test path.

        ``lab=True``: ``x`` is already OpenCV LAB / 255 and the LAB / 255 output is returned,
        differentiably (training; see the module docstring).
        """
        binary, dilated = self.prepare_mask(mask)
        if lab:
            return self.forward_lab(x, binary, dilated)
        if self.training and torch.is_grad_enabled():
            raise ConfigError(
                "labnet's RGB output goes through OpenCV's 8-bit LAB and is not differentiable: "
                "train it with train.step: {type: labnet} (loss in LAB space, as the official code)"
            )
        return lab8_to_rgb(self.forward_lab(rgb_to_lab8(x), binary, dilated))

    def forward_any_size(self, x: Tensor, mask: Tensor) -> Tensor:
        """``forward`` at any size: images of 64 pixels or fewer along an axis are padded (reflect,
        or replicate where reflect cannot reach) to 65 and the output cropped back."""
        h, w = x.shape[-2:]
        ph, pw = max(0, MIN_SIZE - h), max(0, MIN_SIZE - w)
        if not (ph or pw):
            return self(x, mask)

        def pad(t: Tensor) -> Tensor:
            t = F.pad(t, (0, 0, 0, ph), mode="reflect" if ph < h else "replicate")
            return F.pad(t, (0, pw, 0, 0), mode="reflect" if pw < w else "replicate")

        return self(pad(x), pad(mask))[..., :h, :w]
