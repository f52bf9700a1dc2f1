"""LAB-Net's official network and test procedure, transcribed from the specification
(shared/specs/labnet.md §1-2) as the official code runs them, op for op, on a plain state dict.

Independent of :mod:`restore.methods.labnet.arch`: every convolution is the official
``ReflectionPad2d(p)`` (applied even when p = 0) -> ``Conv2d`` -> ``LeakyReLU(0.2)`` (not in
place), every concatenation is materialised, each attention block resizes the features and both
masks itself and builds the full |shadow| x |ring| softmax matrix with boolean indexing. The
tests prove the optimised network equal to it; ``benchmarks/`` times it as "the official time".
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

State = dict[str, Tensor]
DILATIONS = ((1, 4, 16), (2, 8, 32), (4, 16, 64))


def conv_layer(state: State, name: str, x: Tensor, dilation: int = 1) -> Tensor:
    """The official ``ConvLayer(norm='None')``: reflection pad, conv, LeakyReLU(0.2)."""
    weight, bias = state[f"{name}.conv2d.weight"], state[f"{name}.conv2d.bias"]
    k = weight.shape[-1]
    p = (k + (dilation - 1) * (k - 1)) // 2
    x = F.pad(x, (p, p, p, p), mode="reflect")
    return F.leaky_relu(F.conv2d(x, weight, bias, dilation=dilation), 0.2)


def channel_attention(state: State, name: str, v: Tensor) -> Tensor:
    """Depthwise 3x3 conv without padding, unbiased spatial std, two linears, sigmoid, scale."""
    edges = F.conv2d(v, state[f"{name}.convop.weight"], groups=v.shape[1])
    s = edges.std(dim=(2, 3))
    h = F.leaky_relu(F.linear(s, state[f"{name}.linear1.weight"], state[f"{name}.linear1.bias"]), 0.2)
    w = torch.sigmoid(F.linear(h, state[f"{name}.linear2.weight"], state[f"{name}.linear2.bias"]))
    return v * w.view(w.shape[0], w.shape[1], 1, 1)


def basic_block(state: State, name: str, u: Tensor) -> Tensor:
    stages, h = [], u
    for stage, dilations in enumerate(DILATIONS, start=1):
        parallel = [conv_layer(state, f"{name}.conv{stage}{j}", h, d) for j, d in enumerate(dilations, start=1)]
        h = conv_layer(state, f"{name}.conv{stage}4", torch.cat(parallel, dim=1))
        stages.append(h)
    f = channel_attention(state, f"{name}.channel_attention", torch.cat(stages, dim=1))
    return conv_layer(state, f"{name}.conv42", conv_layer(state, f"{name}.conv41", f))


def spatial_attention(state: State, name: str, t: Tensor, mask: Tensor, mask_d: Tensor, down_w: int,
                      down_h: int) -> Tensor:
    """The official LSA: per sample, ``K[:, S] = (softmax(Q_S^T K_R / sqrt(C)) K_R^T)^T``."""
    b, _, h, w = t.shape
    size = (down_w, down_h)  # the official call: down_w is the height
    small = F.interpolate(t, size=size)
    m, md = F.interpolate(mask, size=size), F.interpolate(mask_d, size=size)
    q = conv_layer(state, f"{name}.conv_s", small)
    k = conv_layer(state, f"{name}.conv_ns", small)
    c = q.shape[1]
    q, k = q.view(b, c, -1), k.view(b, c, -1)
    for i in range(b):
        shadow = m[i].view(-1) == 1
        ring = (md[i] - m[i]).view(-1) == 1
        kr = k[i][:, ring]
        a = torch.softmax(q[i][:, shadow].t() @ kr / math.sqrt(c), dim=-1)
        k[i][:, shadow] = (a @ kr.t()).t()
    k_up = F.interpolate(k.view(b, c, *size), size=(h, w))
    return conv_layer(state, f"{name}.convfinal", torch.cat([t, k_up], dim=1))


def official_forward_lab(state: State, lab: Tensor, mask: Tensor, mask_d: Tensor, down_w: int = 256,
                         down_h: int = 256) -> Tensor:
    """``LABNet.forward(input_lab, maskgt, mask_d, down_w, down_h)``: LAB/255 (B, 3, H, W) and
    {0, 1} masks (B, 1, H, W) -> LAB/255 (B, 3, H, W), not clamped."""
    image = conv_layer(state, "convst", lab)
    both = torch.cat([image, mask], dim=1)
    b1, b2 = basic_block(state, "basicblock1", both), basic_block(state, "basicblock2", both)
    b3 = basic_block(state, "basicblock3", conv_layer(state, "conv12_l", torch.cat([b1, b2], dim=1)))
    b4 = basic_block(state, "basicblock4", conv_layer(state, "conv12_ab", torch.cat([b1, b2], dim=1)))
    l34 = conv_layer(state, "conv34_l", torch.cat([b3, b4], dim=1))
    l34 = spatial_attention(state, "spaatt1", l34, mask, mask_d, down_w, down_h)
    ab34 = conv_layer(state, "conv34_ab", torch.cat([b3, b4], dim=1))
    ab34 = spatial_attention(state, "spaatt2", ab34, mask, mask_d, down_w, down_h)
    b5, b6 = basic_block(state, "basicblock5", l34), basic_block(state, "basicblock6", ab34)
    l56 = conv_layer(state, "conv56_l", torch.cat([b5, b6], dim=1))
    l56 = spatial_attention(state, "spaatt3", l56, mask, mask_d, down_w, down_h)
    ab56 = conv_layer(state, "conv56_ab", torch.cat([b5, b6], dim=1))
    ab56 = spatial_attention(state, "spaatt4", ab56, mask, mask_d, down_w, down_h)
    b7, b8 = basic_block(state, "basicblock7", l56), basic_block(state, "basicblock8", ab56)
    return conv_layer(state, "convfinal", torch.cat([b7, b8], dim=1) + lab)


def official_test_image(state: State, rgb: np.ndarray, mask: np.ndarray, down: int = 256) -> np.ndarray:
    """The official ``test.py`` for one image: uint8 RGB (H, W, 3) and uint8 mask (H, W) -> uint8 RGB.

    cv2 RGB -> 8-bit LAB, ToTensor; mask / 255 > 0.9 dilated by an 11x11 square; the network;
    x255, clip, truncate (``tensor2im``); cv2 LAB -> RGB.
    """
    lab = torch.from_numpy(cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)).permute(2, 0, 1)[None].float().div(255)
    m = (mask.astype(np.float32) / 255 > 0.9).astype(np.float32)
    md = cv2.dilate(m, np.ones((11, 11), np.uint8))
    with torch.no_grad():
        out = official_forward_lab(state, lab, torch.from_numpy(m)[None, None], torch.from_numpy(md)[None, None],
                                   down, down)
    codes = np.clip(out[0].permute(1, 2, 0).numpy() * 255.0, 0, 255).astype(np.uint8)
    return cv2.cvtColor(codes, cv2.COLOR_LAB2RGB)
