"""Scoring images in Python under a named protocol (the evaluator ``restore score`` uses)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from restore.api.convert import as_arrays
from restore.data.image_io import read_image, to_channels
from restore.metrics import DEFAULT_PROTOCOL, Evaluator


def _batch(image: Any, what: str, channels: int) -> torch.Tensor:
    """Any accepted image (or a path, read as restore score reads it) -> ``(N, C, H, W)``, dtype kept."""
    if isinstance(image, (str, os.PathLike)):
        arrays = [read_image(Path(image))]
    else:
        arrays = as_arrays(image, what)[0]
    return torch.stack([torch.from_numpy(np.ascontiguousarray(to_channels(a, channels).transpose(2, 0, 1)))
                        for a in arrays])


def score(pred: Any, gt: Any, protocol: str = DEFAULT_PROTOCOL, *, mask: Any = None, metrics: list[str] | None = None,
          crop_border: int | None = None) -> dict[str, float]:
    """Metrics of ``pred`` against ``gt`` under ``protocol`` (see ``restore.metrics.PROTOCOLS``).

    ``pred``/``gt``: the kinds :class:`~restore.api.model.Model` takes (numpy ``(H, W, C)``,
    PIL, tensor ``(C, H, W)`` / ``(N, C, H, W)``, path); uint8 is scored as it is, uint16 and
    float in [0, 1] are quantised by the protocol, grey is replicated to RGB, as ``restore
    score`` does. ``mask``: the shadow mask of the shadow protocols. Returns the dataset summary
    (``{"n_images": N, "psnr": ..., "ssim": ...}``: means over the batch).
    """
    evaluator = Evaluator(protocol, metrics=metrics, crop_border=crop_border)
    p, g = _batch(pred, "pred", 3), _batch(gt, "gt", 3)
    m = _batch(mask, "mask", 1) if mask is not None else None
    names = [f"image {i}" for i in range(p.shape[0])]
    evaluator.update(p, g, mask=m, names=names)
    return evaluator.summary()
