"""The Python API: restore an image in three lines, score it in one.

::

    import restore
    model = restore.load("options/neighbor2neighbor/infer/n2n_gauss25.yml", weights="model_gauss25_b4e100r02.pth")
    clean = model(noisy)                     # numpy (H, W, C) uint8/uint16/float, PIL, tensor or path
    restore.score(clean, gt, protocol="basicsr")   # {"n_images": 1.0, "psnr": ..., "ssim": ...}

* :func:`load` -> :class:`Model`: ``model(image, mask=None)``, ``model.restore_folder(input, output)``;
* :func:`load_options`, :func:`list_architectures`, :func:`score`.

It sits above the engine (``restore.cli`` and ``restore.demo`` sit above it) and reuses the
engine's functions for every pixel, so its results equal ``restore infer``'s. ``import restore``
reaches it lazily (``restore.load`` imports it on first use).
"""

from __future__ import annotations

from restore import registry
from restore.api.model import Model, load
from restore.api.options import load_options
from restore.api.score import score


def list_architectures() -> list[str]:
    """The registered architecture names (what an option file's ``network.type`` may be)."""
    return list(registry.names("arch"))


__all__ = ["Model", "list_architectures", "load", "load_options", "score"]
