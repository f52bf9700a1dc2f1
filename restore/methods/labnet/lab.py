"""OpenCV's 8-bit CIELAB, batched over torch tensors (the colour space LAB-Net works in).

LAB-Net's official code converts with ``cv2.cvtColor`` on uint8 images and divides the codes by
255. OpenCV's uint8 path is fixed-point and table based: a float re-implementation of its
formula (sRGB decoding, D65 XYZ, ``L = L*·255/100``, ``a = a* + 128``, ``b = b* + 128``) differs
by 1-2 codes on 6-14 % of pixels, so for bit-exact parity these functions call OpenCV itself.
They are therefore not differentiable: training computes its loss in this LAB space (inputs
and targets converted once, before the network) rather than through these conversions.

The 8-bit round trip RGB -> LAB -> RGB is lossy on its own (mean 0.7, up to ~24 codes on random
colours); that is part of the official pipeline.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor


def _hwc_uint8(codes: Tensor) -> np.ndarray:
    """``(B, 3, H, W)`` uint8 tensor -> contiguous ``(B, H, W, 3)`` numpy array on the CPU."""
    return np.ascontiguousarray(codes.permute(0, 2, 3, 1).cpu().numpy())


def _convert(images: np.ndarray, code: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """cv2.cvtColor on every image of a ``(B, H, W, 3)`` uint8 batch -> ``(B, 3, H, W)`` codes / 255."""
    out = np.stack([cv2.cvtColor(img, code) for img in images])
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(device).to(dtype).div_(255)


def rgb_to_lab8(rgb: Tensor) -> Tensor:
    """RGB ``(B, 3, H, W)`` in [0, 1] -> OpenCV 8-bit LAB / 255, same shape, device and dtype.

    The RGB values are first rounded to 8-bit codes (exact for images read from 8-bit files:
    ``uint8 / 255`` in float32 times 255 rounds back to the code), as the official code reads
    uint8 files. As ``ToTensor()`` does, the LAB codes are divided by 255.
    """
    if rgb.ndim != 4 or rgb.shape[1] != 3:
        raise ValueError(f"expected an RGB batch (B, 3, H, W), got {tuple(rgb.shape)}")
    codes = rgb.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    dtype = rgb.dtype if rgb.is_floating_point() else torch.float32
    return _convert(_hwc_uint8(codes), cv2.COLOR_RGB2LAB, rgb.device, dtype)


def lab8_codes(lab: Tensor) -> Tensor:
    """LAB / 255 floats -> uint8 codes as the official ``tensor2im``: x255, clip, **truncate**."""
    return (lab.detach().float() * 255.0).clamp(0, 255).to(torch.uint8)


def lab8_to_rgb(lab: Tensor) -> Tensor:
    """OpenCV 8-bit LAB / 255 ``(B, 3, H, W)`` -> RGB in [0, 1] (multiples of 1/255), as LAB-Net's
    ``test.py`` writes its outputs: truncation to uint8 codes, then ``cv2.COLOR_LAB2RGB``.

    Always float32 (a bf16 ``k / 255`` would not round back to ``k``)."""
    if lab.ndim != 4 or lab.shape[1] != 3:
        raise ValueError(f"expected a LAB batch (B, 3, H, W), got {tuple(lab.shape)}")
    return _convert(_hwc_uint8(lab8_codes(lab)), cv2.COLOR_LAB2RGB, lab.device, torch.float32)
