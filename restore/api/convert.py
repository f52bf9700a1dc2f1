"""What a user hands the Python API, as the arrays the engine takes, and the result handed back.

Accepted images (:func:`as_arrays`):

* numpy ``(H, W)`` or ``(H, W, C)`` (C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA), uint8, uint16
  or float in ``[0, 1]`` (float16/32/64; computed in float32);
* a PIL image (``L``, ``LA``, ``RGB``, ``RGBA``, 16-bit ``I;16``, float ``F``; palette and
  other modes are converted to RGB(A) first);
* a torch tensor ``(H, W)``, ``(C, H, W)`` or a batch ``(N, C, H, W)``, float in ``[0, 1]`` or
  uint8, on any device.

Each becomes a list of ``(H, W, C)`` numpy arrays (one per batch item) plus a :class:`Returned`
that says how to give the result back: same container, dtype, device and dimensionality, the
channel count being the network's output (a grey input to a colour network comes back RGB). A
path is not handled here: the model reads it exactly as ``restore infer`` does.

Every refusal is a one-line :class:`~restore.errors.DataError` naming what was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from restore.data.image_header import check_decoded_size
from restore.errors import DataError

_CHANNELS = "1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA)"
_FLOATS = (np.float16, np.float32, np.float64)


@dataclass(frozen=True)
class Returned:
    """How a result goes back: ``kind`` numpy / pil / tensor, and what to restore of the input.

    ``dtype``: numpy dtype (numpy, PIL) or torch dtype (tensor); ``flat``: the input had no
    channel axis; ``batched``: a 4-D tensor; ``device``: the tensor's device.
    """

    kind: str
    dtype: Any
    flat: bool = False
    batched: bool = False
    device: torch.device | None = None


def _check_array(array: np.ndarray, what: str, label: str) -> np.ndarray:
    """``(H, W)`` / ``(H, W, C)`` of a supported dtype, values in [0, 1] when float -> ``(H, W, C)``."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or not 1 <= array.shape[2] <= 4:
        hint = ""
        if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[2] > 4:
            hint = " (this looks like (C, H, W): pass array.transpose(1, 2, 0))"
        raise DataError(f"{what}: expected (H, W) or (H, W, C) with C = {_CHANNELS}, got shape {tuple(array.shape)}{hint}")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * np.uint8(255)
    if array.dtype not in (np.uint8, np.uint16, *_FLOATS):
        raise DataError(f"{what}: unsupported dtype {array.dtype} (use uint8, uint16 or float in [0, 1])")
    if array.dtype in _FLOATS:
        array = array.astype(np.float32, copy=False)
        if not np.isfinite(array).all():
            raise DataError(f"{what}: contains NaN or infinite values")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise DataError(f"{what}: float values must lie in [0, 1], got {low:.4g}..{high:.4g} "
                            "(divide 8-bit values by 255, or np.clip a noisy image)")
    check_decoded_size(label, array.shape[0], array.shape[1])  # RESTORE_MAX_PIXELS, as for files
    return np.ascontiguousarray(array)


def _pil_array(image: Any) -> np.ndarray:
    """A PIL image's pixels; modes other than the plain ones are converted to RGB(A) first."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(image).astype(np.uint16)
    if mode == "I":  # 32-bit integers: PIL's mode for many 16-bit PNGs
        array = np.asarray(image)
        if array.size and (array.min() < 0 or array.max() > 65535):
            raise DataError(f"PIL image of mode 'I' has values outside 0..65535 ({array.min()}..{array.max()})")
        return array.astype(np.uint16)
    if mode not in ("L", "LA", "RGB", "RGBA", "F"):
        image = image.convert("RGBA" if "A" in mode or "transparency" in image.info else "RGB")
    return np.asarray(image)


def as_arrays(image: Any, what: str = "image") -> tuple[list[np.ndarray], Returned]:
    """``image`` (see the module docstring) -> ``(H, W, C)`` arrays (uint8, uint16 or float32) and how to return."""
    label = f"<{what}>"
    if isinstance(image, torch.Tensor):
        return _tensor_arrays(image, what, label)
    if _is_pil(image):
        array = _check_array(_pil_array(image), what, label)
        return [array], Returned("pil", array.dtype)
    if isinstance(image, np.ndarray):
        dtype = image.dtype if image.dtype != np.bool_ else np.dtype(np.uint8)
        return [_check_array(image, what, label)], Returned("numpy", dtype, flat=image.ndim == 2)
    raise DataError(f"{what}: expected a numpy array, a PIL image, a torch tensor or a path, got {type(image).__name__}")


def _tensor_arrays(t: torch.Tensor, what: str, label: str) -> tuple[list[np.ndarray], Returned]:
    if t.ndim not in (2, 3, 4):
        raise DataError(f"{what}: expected a tensor (H, W), (C, H, W) or (N, C, H, W), got shape {tuple(t.shape)}")
    if not (t.is_floating_point() or t.dtype in (torch.uint8, torch.bool)):
        raise DataError(f"{what}: unsupported tensor dtype {t.dtype} (use float in [0, 1] or uint8)")
    dtype = torch.uint8 if t.dtype == torch.bool else t.dtype
    returned = Returned("tensor", dtype, flat=t.ndim == 2, batched=t.ndim == 4, device=t.device)
    batch = t.detach()[(None,) * (4 - t.ndim)]  # (N, C, H, W)
    if batch.shape[1] > 4:
        raise DataError(f"{what}: expected C = {_CHANNELS} in a (C, H, W) tensor, got shape {tuple(t.shape)}")
    if batch.dtype in (torch.bfloat16, torch.float16):
        batch = batch.float()
    arrays = [_check_array(item.cpu().numpy().transpose(1, 2, 0), what, label) for item in batch]
    return arrays, returned


def _is_pil(image: Any) -> bool:
    return type(image).__module__.startswith("PIL.") and hasattr(image, "mode") and hasattr(image, "getbands")


def give_back(outputs: list[np.ndarray], returned: Returned) -> Any:
    """The restored ``(H', W', C')`` arrays (dtype of the input: uint8/uint16 quantised as
    ``restore infer`` writes them, float32 clamped to [0, 1]) in the input's container."""
    if returned.kind == "tensor":
        chw = [torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))) for a in outputs]
        out = torch.stack(chw) if returned.batched else chw[0]
        if returned.flat and out.shape[0] == 1:
            out = out[0]
        return out.to(device=returned.device, dtype=returned.dtype)
    [array] = outputs
    if returned.kind == "pil":
        from PIL import Image

        return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    if returned.flat and array.shape[2] == 1:
        array = array[:, :, 0]
    return array.astype(returned.dtype, copy=False)
