"""One image of batch-restore in three stages: load, restore, write.

Why three: ``restore infer`` runs loading and writing on background threads around the
network (:mod:`restore.engine.background`), and batches same-size images, so each stage is a
function of its own. :func:`restore_image` chains them for one image: the plain sequential path,
which the pipeline must match output for output.

Shapes: an image ``(H, W, C)`` uint8/uint16 is loaded as float32 ``(C, H, W)`` in [0, 1] (with
a ``(1, H, W)`` mask when the network takes one); a batch of same-size loads goes through the
network as ``(B, C, H, W)``; each output ``(C', sH, sW)`` is clamped to [0, 1] and rounded to
the input's bit depth (8 bits for JPEG/BMP targets) when it is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from restore.data.image_io import (
    SIXTEEN_BIT_EXTENSIONS,
    image_to_tensor,
    quantize,
    read_image,
    to_channels,
    write_image,
)
from restore.data.shadow_folder import read_mask
from restore.engine.batch_plan import Job
from restore.engine.inference import Restorer
from restore.errors import DataError


@dataclass
class Loaded:
    """A decoded input, ready for the network: ``image`` (C, H, W) float32, ``mask`` (1, H, W) or None."""

    job: Job
    image: Tensor
    mask: Tensor | None
    bit_depth: int

    @property
    def key(self) -> tuple[object, ...]:
        """Images with equal keys can share a batch (same shape, both with or without a mask)."""
        return (tuple(self.image.shape), self.mask is None)

    @property
    def pixels(self) -> int:
        return int(self.image.shape[-1] * self.image.shape[-2])


def channels_for(array: np.ndarray, in_nc: int | None) -> np.ndarray:
    """The image with the network's channel count (alpha dropped when the network does not say)."""
    if in_nc in (1, 3):
        return to_channels(array, in_nc)
    return to_channels(array, 1 if array.shape[2] in (1, 2) else 3)


def load(job: Job, in_nc: int | None) -> Loaded:
    """Read and convert ``job.source`` (and its mask); a DataError names the file that is wrong."""
    image = read_image(job.source)
    return from_arrays(job, image, read_mask(job.mask) if job.mask is not None else None, in_nc)


def from_arrays(job: Job, image: np.ndarray, mask: np.ndarray | None, in_nc: int | None) -> Loaded:
    """Convert a decoded ``image`` (H, W, C) and ``mask`` (H, W, 1) as :func:`load` does a file's.

    The Python API (:mod:`restore.api`) enters here with arrays it was handed; ``job`` then
    only names them in errors. uint8/uint16 are scaled to [0, 1]; float32 is taken as [0, 1]
    and kept (its ``bit_depth`` is then 8 and means nothing).
    """
    if mask is not None and mask.shape[:2] != image.shape[:2]:
        raise DataError(f"mask '{job.mask}' is {mask.shape[1]}x{mask.shape[0]} but input '{job.source}' "
                        f"is {image.shape[1]}x{image.shape[0]}")
    bit_depth = 16 if image.dtype == np.uint16 else 8
    tensor_mask = image_to_tensor(mask) if mask is not None else None
    return Loaded(job, image_to_tensor(channels_for(image, in_nc)), tensor_mask, bit_depth)


def run(restorer: Restorer, batch: Sequence[Loaded], device: torch.device) -> list[Tensor | DataError]:
    """The network on a batch of same-key loads: each image's CPU output ``(C', sH, sW)``, or the
    DataError that refuses it (an output with NaN or inf values: clamping would turn it into a
    plausible-looking black or white image)."""
    x = torch.stack([item.image for item in batch]).to(device)
    extra = [torch.stack([item.mask for item in batch]).to(device)] if batch[0].mask is not None else []
    with torch.inference_mode():
        y = restorer(x, *extra)
        bad = (~torch.isfinite(y)).flatten(1).sum(1).tolist()
        y = y.float().cpu()
    return [
        DataError(f"'{item.job.source}': the network output has {n} non-finite values (NaN or inf) out of "
                  f"{y[i].numel()}; nothing written (are the weights broken?)") if n else y[i]
        for i, (item, n) in enumerate(zip(batch, bad))
    ]


def write(job: Job, output: Tensor, bit_depth: int) -> None:
    """Write ``output`` (C, H, W) float to ``job.target`` atomically (quantising clamps to [0, 1])."""
    if job.target.suffix.lower() not in SIXTEEN_BIT_EXTENSIONS:
        bit_depth = 8  # JPEG/BMP hold 8 bits only
    write_image(job.target, to_array(output, bit_depth), bit_depth=bit_depth)


def to_array(output: Tensor, bit_depth: int) -> np.ndarray:
    """A network output ``(C, H, W)`` float as the ``(H, W, C)`` uint8/uint16 that is written
    (clamped to [0, 1], rounded half to even; see :func:`restore.data.image_io.quantize`)."""
    return quantize(output.permute(1, 2, 0).numpy(), bit_depth)


def restore_image(restorer: Restorer, job: Job, in_nc: int | None, device: torch.device) -> None:
    """Load, restore and write one image, one stage after the other (raises the DataError of a bad output)."""
    loaded = load(job, in_nc)
    [output] = run(restorer, [loaded], device)
    if isinstance(output, DataError):
        raise output
    write(job, output, loaded.bit_depth)
