"""Geometric transforms applied identically to every image of one sample.

A sample is a list of aligned ``(H, W, C)`` numpy arrays (input, target, mask, ...). Random
choices are drawn from an explicit ``torch.Generator`` — never from a global RNG — so a sample
seed fully determines them (see :mod:`restore.data.base`). Draw order per sample is fixed:
TIP2018 jitter (if used), then the crop window, then the dihedral index.

Working on numpy before the tensor conversion keeps crops cheap (only the window is converted).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from restore.errors import DataError

#: An image array ``(H, W, ...)`` or just its ``(H, W)`` (as read from a header by ``verify()``).
ArrayOrHW = np.ndarray | tuple[int, int]


def _hw(image: ArrayOrHW) -> tuple[int, int]:
    if isinstance(image, np.ndarray):
        return int(image.shape[0]), int(image.shape[1])
    return int(image[0]), int(image[1])


def _size(image: ArrayOrHW) -> str:
    h, w = _hw(image)
    return f"{w}x{h}"


def randint(generator: torch.Generator, low: int, high: int) -> int:
    """Uniform integer in ``[low, high)`` from ``generator``."""
    return int(torch.randint(low, high, (1,), generator=generator).item())


def check_pair_size(
    first: ArrayOrHW, first_path: object, second: ArrayOrHW, second_path: object, scale: int = 1
) -> None:
    """Raise DataError unless ``second`` is ``scale`` times ``first`` in both dimensions.

    Used for input/target pairs ("a pair whose sizes differ"); sizes are written WxH. Takes
    arrays or ``(H, W)`` tuples so that ``verify()`` raises the very message ``load()`` would.
    """
    h, w = _hw(first)
    if _hw(second) != (h * scale, w * scale):
        want = f"{w * scale}x{h * scale}"
        extra = f" ({scale}x the input)" if scale != 1 else ""
        raise DataError(
            f"pair sizes differ: input '{first_path}' is {_size(first)} (WxH) but target "
            f"'{second_path}' is {_size(second)}, expected {want}{extra}"
        )


def check_mask_size(image: ArrayOrHW, image_path: object, mask: ArrayOrHW, mask_path: object) -> None:
    """Raise DataError unless the mask has the image's height and width (arrays or ``(H, W)``)."""
    if _hw(mask) != _hw(image):
        raise DataError(
            f"mask '{mask_path}' is {_size(mask)} (WxH) but its image '{image_path}' is "
            f"{_size(image)}; a mask must have the size of its image"
        )


def check_crop_size(height: int, width: int, size: int, path: object = "image") -> None:
    """Raise DataError if a ``size x size`` crop does not fit in a ``height x width`` image."""
    if height < size or width < size:
        raise DataError(
            f"image '{path}' is {width}x{height} (WxH), smaller than crop_size {size}; "
            "remove it or lower crop_size"
        )


def random_crop_window(
    height: int, width: int, size: int, generator: torch.Generator, path: object = "image"
) -> tuple[int, int]:
    """Top-left corner ``(top, left)`` of a uniformly placed ``size x size`` window."""
    check_crop_size(height, width, size, path)
    top = randint(generator, 0, height - size + 1)
    left = randint(generator, 0, width - size + 1)
    return top, left


def crop(array: np.ndarray, top: int, left: int, size: int, scale: int = 1) -> np.ndarray:
    """The window at ``(top, left)`` of side ``size`` (all multiplied by ``scale``)."""
    t, lf, s = top * scale, left * scale, size * scale
    return array[t : t + s, lf : lf + s]


def random_crop(
    arrays: Sequence[np.ndarray],
    size: int,
    generator: torch.Generator,
    scales: Sequence[int] | None = None,
    path: object = "image",
) -> list[np.ndarray]:
    """Crop one window, placed on ``arrays[0]``, out of every array of the sample.

    ``scales[i]`` is array i's size relative to ``arrays[0]`` (1 for aligned images; e.g. 4 for
    an SR target, which gets a ``4*size`` window at 4x the offset).
    """
    scales = [1] * len(arrays) if scales is None else list(scales)
    h, w = arrays[0].shape[:2]
    top, left = random_crop_window(h, w, size, generator, path)
    return [crop(a, top, left, size, s) for a, s in zip(arrays, scales)]


def dihedral(array: np.ndarray, k: int) -> np.ndarray:
    """Element ``k`` (0..7) of the dihedral group on an ``(H, W, ...)`` array.

    ``k % 4`` counter-clockwise quarter turns, then a left-right flip when ``k >= 4``;
    ``k = 0`` is the identity. Returns a contiguous copy (torch cannot wrap negative strides).
    """
    if not 0 <= k < 8:
        raise ValueError(f"dihedral index must be in 0..7, got {k}")
    out = np.rot90(array, k % 4, axes=(0, 1))
    if k >= 4:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def dihedral_tensor(tensor: torch.Tensor, k: int) -> torch.Tensor:
    """The same transform as :func:`dihedral` on a ``(..., H, W)`` tensor."""
    if not 0 <= k < 8:
        raise ValueError(f"dihedral index must be in 0..7, got {k}")
    out = torch.rot90(tensor, k % 4, dims=(-2, -1))
    return out.flip(-1) if k >= 4 else out


def inverse_dihedral_tensor(tensor: torch.Tensor, k: int) -> torch.Tensor:
    """Undo :func:`dihedral_tensor` (e.g. for self-ensemble outputs)."""
    if not 0 <= k < 8:
        raise ValueError(f"dihedral index must be in 0..7, got {k}")
    out = tensor.flip(-1) if k >= 4 else tensor
    return torch.rot90(out, -(k % 4), dims=(-2, -1))


def random_dihedral(arrays: Sequence[np.ndarray], generator: torch.Generator) -> list[np.ndarray]:
    """Draw one of the 8 flips/rotations and apply it to every array of the sample."""
    k = randint(generator, 0, 8)
    return [dihedral(a, k) for a in arrays]


TIP2018_SIZE = 256
TIP2018_JITTER = 6


def tip2018_box(width: int, height: int, dx: int = 0, dy: int = 0) -> tuple[int, int, int, int]:
    """The TIP2018 central-2/3 PIL crop box ``(left, upper, right, lower)``, shifted by the jitter."""
    return (
        int(width / 6) + dx,
        int(height / 6) + dy,
        int(5 * width / 6) + dx,
        int(5 * height / 6) + dy,
    )


def tip2018_preprocess(
    arrays: Sequence[np.ndarray],
    paths: Sequence[object],
    generator: torch.Generator | None = None,
) -> list[np.ndarray]:
    """TIP2018 protocol (WDNet/ESDNet): crop the central 2/3, PIL-bilinear resize to 256x256.

    The box is computed from ``arrays[0]`` (the moire image) and used for every array. With a
    ``generator`` (training) the box is shifted by ``dx, dy ~ U{-6..6}`` (same for all arrays);
    PIL pads with zeros where a shifted box leaves the image. 8-bit images only.
    """
    from PIL import Image

    h, w = arrays[0].shape[:2]
    dx = dy = 0
    if generator is not None:
        dx = randint(generator, -TIP2018_JITTER, TIP2018_JITTER + 1)
        dy = randint(generator, -TIP2018_JITTER, TIP2018_JITTER + 1)
    box = tip2018_box(w, h, dx, dy)
    out = []
    for array, path in zip(arrays, paths):
        if array.dtype != np.uint8:
            raise DataError(f"image '{path}': TIP2018 pre-processing needs 8-bit images, got {array.dtype}")
        img = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
        img = img.crop(box).resize((TIP2018_SIZE, TIP2018_SIZE), Image.BILINEAR)
        res = np.asarray(img)
        out.append(np.ascontiguousarray(res[:, :, None] if res.ndim == 2 else res))
    return out
