"""LAB-Net inference on the CPU in channels-last layout with reused buffers (same network, faster).

:meth:`LABNet.forward_lab <restore.methods.labnet.arch.LABNet.forward_lab>` runs this path when
nothing needs gradients or a graph (CPU, no autograd, no tracing, no autocast); the module path
(training, export, GPU) computes the same function. Outputs agree to float32 rounding (a test
compares both with a transcription of the official network in float64).

What the profile of the module path showed at 640x480 (2 threads) and what is done instead:

* Convolutions took ~75 % of the time; in channels-last (NHWC) oneDNN needs no reorders to and
  from its blocked layout, which in NCHW cost a copy of every input and output (extra page
  faults) and made the dilated 3x3 convolutions 10-30 % slower. Features live here as
  ``(H, W, C)`` tensors, one image at a time.
* ``F.pad(mode="reflect")`` is slow on channels-last tensors and allocated ~50 MB per call. The
  reflection padding is written into one reused buffer by slice copies instead.
* Each 1x1 fusion convolution after a ``torch.cat`` became matrix products accumulated into a
  slice of a reused buffer: no concatenation, no padding copy (``padding_mode="reflect"`` pads
  even by 0), and the three stage outputs land directly in the channel-attention input.
* Pairs of 1x1 convolutions reading the same concatenation (``conv12_l``/``conv12_ab``, ...)
  are one matrix product with stacked weights.
* The attention block's last 1x1 convolution reads ``[t, up(K)]`` (80 channels); nearest
  upsampling commutes with a per-pixel linear map, so ``W_k K + b`` is computed at the working
  resolution (32 channels) and upsampled by index selection into the output buffer, to which
  ``W_t t`` is added: the 48-channel full-resolution upsampling and the concatenation disappear.
* ``torch.std`` (Welford, double accumulators) took longer than the depthwise convolution it
  follows; the spread is a two-pass mean / sum of squares, in place on the edge response.
* Channel attention scales its input in place.

Every large buffer is allocated once per forward and reused across the eight blocks, so glibc's
mmap/munmap of big tensors (each fresh tensor page-faulted in again) happens far less often.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restore.methods.labnet.attention import local_spatial_attention

# The modules of :mod:`restore.methods.labnet.arch` this path reads; named here as plain modules
# (arch.py imports this file, so importing it back, even for type checking, would be a cycle).
BasicBlock = ChannelAttention = ConvLayer = LABNet = SpatialAttentionBlock = nn.Module

SLOPE = 0.2  # LeakyReLU after every convolution


class Workspace:
    """Named buffers reused within one forward; a buffer grows to the largest shape asked of it."""

    def __init__(self, like: Tensor) -> None:
        self.like = like
        self.flat: dict[str, Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...]) -> Tensor:
        """A contiguous tensor of ``shape`` over buffer ``name`` (contents undefined)."""
        numel = 1
        for n in shape:
            numel *= n
        buf = self.flat.get(name)
        if buf is None or buf.numel() < numel:
            buf = self.flat[name] = self.like.new_empty(numel)
        return buf[:numel].view(shape)


def reflect_pad(ws: Workspace, x: Tensor, p: int) -> Tensor:
    """``(H, W, C)`` of any strides -> reflection-padded ``(H + 2p, W + 2p, C)`` in the workspace,
    equal to ``F.pad(mode="reflect")`` (edge pixels not repeated)."""
    h, w, c = x.shape
    if p >= h or p >= w:
        raise ValueError(f"reflection padding {p} needs an input larger than {p} along each side, got {h}x{w}")
    buf = ws.get("pad", (h + 2 * p, w + 2 * p, c))
    buf[p : p + h, p : p + w].copy_(x)
    buf[p : p + h, :p].copy_(buf[p : p + h, p + 1 : 2 * p + 1].flip(1))
    buf[p : p + h, p + w :].copy_(buf[p : p + h, w - 1 : w + p - 1].flip(1))
    buf[:p].copy_(buf[p + 1 : 2 * p + 1].flip(0))
    buf[p + h :].copy_(buf[h - 1 : h + p - 1].flip(0))
    return buf


def conv3x3(ws: Workspace, x: Tensor, layer: ConvLayer, dilation: int) -> Tensor:
    """The official ConvLayer (reflect pad, dilated 3x3 conv, LeakyReLU) on ``(H, W, C)`` ->
    a new ``(H, W, C_out)`` (channels-last when the input is)."""
    conv = layer.conv2d
    padded = reflect_pad(ws, x, dilation).permute(2, 0, 1).unsqueeze(0)  # (1, C, Hp, Wp) channels-last
    weight = conv.weight.contiguous(memory_format=torch.channels_last)
    out = F.conv2d(padded, weight, conv.bias, dilation=dilation)
    return F.leaky_relu_(out, SLOPE)[0].permute(1, 2, 0)


def pointwise_into(out: Tensor, parts: list[tuple[Tensor, Tensor]], bias: Tensor | None) -> Tensor:
    """``out`` (H, W, C_out) = LeakyReLU(sum_i x_i @ w_i^T + bias): a 1x1 convolution over the
    channel concatenation of the ``x_i`` (H, W, C_i), with ``w_i`` its (C_out, C_i) weight columns."""
    flat = out.view(-1, out.shape[-1])
    for i, (x, w) in enumerate(parts):
        x2 = x.reshape(-1, x.shape[-1])  # a view for slices of channels-last buffers
        if i == 0:
            if bias is None:
                torch.mm(x2, w.t(), out=flat)
            else:
                torch.addmm(bias, x2, w.t(), out=flat)
        else:
            flat.addmm_(x2, w.t())
    F.leaky_relu_(flat, SLOPE)
    return out


def matrix(layer: ConvLayer) -> Tensor:
    """A 1x1 ConvLayer's weight as a (C_out, C_in) matrix."""
    return layer.conv2d.weight.flatten(1)


def spatial_std_(edges: Tensor) -> Tensor:
    """Unbiased std over all pixels of ``(H, W, C)`` -> ``(C,)``; overwrites ``edges``."""
    flat = edges.reshape(-1, edges.shape[-1])
    n = flat.shape[0]
    flat = flat.sub_(flat.mean(dim=0)).square_()
    return flat.sum(dim=0).div_(n - 1).sqrt_()


def depthwise_channels_last(weight: Tensor) -> Tensor:
    """A depthwise weight (C, 1, k, k) with explicit channels-last strides. ``.contiguous(
    memory_format=channels_last)`` leaves it as it is (one input channel: both layouts match), and
    the convolution then copies its whole channels-last input to NCHW first (measured: 3x slower)."""
    kh, kw = weight.shape[-2:]
    return torch.empty_strided(weight.shape, (kh * kw, 1, kw, 1), dtype=weight.dtype,
                               device=weight.device).copy_(weight)


def channel_attention_(att: ChannelAttention, f: Tensor) -> Tensor:
    """``f`` (H, W, C) scaled in place by the channel weights."""
    edges = F.conv2d(f.permute(2, 0, 1).unsqueeze(0), depthwise_channels_last(att.convop.weight), groups=f.shape[-1])
    spread = spatial_std_(edges[0].permute(1, 2, 0))
    w = torch.sigmoid(att.linear2(F.leaky_relu(att.linear1(spread), SLOPE)))
    return f.mul_(w)


def basic_block(ws: Workspace, blk: BasicBlock, x: Tensor) -> Tensor:
    """``BasicBlock`` on ``(H, W, C_in)`` -> a new ``(H, W, C_out)``; the three stage outputs are
    written into one reused ``(H, W, 3c)`` buffer, the channel attention's input."""
    h, w, _ = x.shape
    c = blk.conv14.conv2d.out_channels
    stages = ws.get("stages", (h, w, 3 * c))
    current = x
    for s, dilations in enumerate(blk.DILATIONS, start=1):
        outs = [conv3x3(ws, current, getattr(blk, f"conv{s}{j}"), d) for j, d in enumerate(dilations, start=1)]
        fuse = getattr(blk, f"conv{s}4")
        weights = matrix(fuse).split([o.shape[-1] for o in outs], dim=1)
        current = pointwise_into(stages[..., (s - 1) * c : s * c], list(zip(outs, weights)), fuse.conv2d.bias)
        del outs
    channel_attention_(blk.channel_attention, stages)
    fused = pointwise_into(ws.get("fused", (h, w, c)), [(stages, matrix(blk.conv41))], blk.conv41.conv2d.bias)
    return conv3x3(ws, fused, blk.conv42, 1)


def pair_into(ws: Workspace, a: Tensor, b: Tensor, left: ConvLayer, right: ConvLayer) -> tuple[Tensor, Tensor]:
    """``left([a, b])`` and ``right([a, b])`` (two 1x1 ConvLayers on one concatenation) as one
    product with stacked weights; returns views of one ``(H, W, 2c)`` buffer."""
    c = left.conv2d.out_channels
    weight = torch.cat([matrix(left), matrix(right)])
    bias = torch.cat([left.conv2d.bias, right.conv2d.bias])
    out = ws.get("pair", (a.shape[0], a.shape[1], 2 * c))
    pointwise_into(out, [(a, weight[:, : a.shape[-1]]), (b, weight[:, a.shape[-1] :])], bias)
    return out[..., :c], out[..., c:]


def nearest_index(src: int, dst: int, device: torch.device) -> Tensor:
    """Source index of each of ``dst`` positions under ``F.interpolate(mode="nearest")`` from ``src``."""
    grid = torch.arange(src, dtype=torch.float64, device=device).view(1, 1, src, 1)
    return F.interpolate(grid, size=(dst, 1)).view(-1).long()


def spatial_attention(ws: Workspace, blk: SpatialAttentionBlock, t: Tensor, shadow: Tensor, ring: Tensor,
                      size: tuple[int, int], up: tuple[Tensor, Tensor], name: str) -> Tensor:
    """``SpatialAttentionBlock`` on ``(H, W, c)`` -> a view of workspace buffer ``name``.

    ``shadow``, ``ring``: bool (1, N) at the working resolution ``size``; ``up``: the nearest
    row and column source indices from ``size`` back to (H, W).
    """
    h, w, c = t.shape
    small = F.interpolate(t.permute(2, 0, 1).unsqueeze(0), size=size)
    q, k = blk.conv_s(small), blk.conv_ns(small)
    k = local_spatial_attention(q.flatten(2), k.flatten(2), shadow, ring).reshape(k.shape)
    final = blk.convfinal.conv2d
    w_t, w_k = matrix(blk.convfinal).split([c, k.shape[1]], dim=1)
    z = F.conv2d(k, w_k[:, :, None, None], final.bias)[0].permute(1, 2, 0)  # (h', w', c) at working size
    out = ws.get(name, (h, w, c))
    torch.index_select(z.index_select(0, up[0]), 1, up[1], out=out)  # nearest upsampling
    out.view(-1, c).addmm_(t.reshape(-1, c), w_t.t())
    return F.leaky_relu_(out, SLOPE)


@torch.no_grad()
def forward_lab(net: LABNet, lab: Tensor, mask: Tensor, mask_d: Tensor) -> Tensor:
    """``LABNet.forward_lab`` (LAB/255 (B, 3, H, W), binary and dilated masks (B, 1, H, W)) ->
    LAB/255 (B, 3, H, W), one image at a time in channels-last layout."""
    shadow, ring = net.attention_regions(mask, mask_d)
    size = net.down_size
    h, w = lab.shape[-2:]
    up = (nearest_index(size[0], h, lab.device), nearest_index(size[1], w, lab.device))
    outputs = []
    for i in range(lab.shape[0]):
        ws = Workspace(lab)
        x = lab[i].permute(1, 2, 0)
        both = ws.get("both", (h, w, 4))
        both[..., :3] = conv3x3(ws, x, net.convst, 1)
        both[..., 3] = mask[i, 0]
        b1, b2 = basic_block(ws, net.basicblock1, both), basic_block(ws, net.basicblock2, both)
        l12, ab12 = pair_into(ws, b1, b2, net.conv12_l, net.conv12_ab)
        del b1, b2
        b3, b4 = basic_block(ws, net.basicblock3, l12), basic_block(ws, net.basicblock4, ab12)
        l34, ab34 = pair_into(ws, b3, b4, net.conv34_l, net.conv34_ab)
        del b3, b4
        regions = (shadow[i : i + 1], ring[i : i + 1], size, up)
        l34 = spatial_attention(ws, net.spaatt1, l34, *regions, "lsa_l")
        ab34 = spatial_attention(ws, net.spaatt2, ab34, *regions, "lsa_ab")
        b5, b6 = basic_block(ws, net.basicblock5, l34), basic_block(ws, net.basicblock6, ab34)
        l56, ab56 = pair_into(ws, b5, b6, net.conv56_l, net.conv56_ab)
        del b5, b6
        l56 = spatial_attention(ws, net.spaatt3, l56, *regions, "lsa_l")
        ab56 = spatial_attention(ws, net.spaatt4, ab56, *regions, "lsa_ab")
        heads = torch.cat([basic_block(ws, net.basicblock7, l56), basic_block(ws, net.basicblock8, ab56)], dim=-1)
        outputs.append(conv3x3(ws, heads.add_(x), net.convfinal, 1).permute(2, 0, 1))
        del ws
    return torch.stack(outputs)
