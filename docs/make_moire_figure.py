"""Remake ``docs/images/moire_examples.png``: clean | synthetic moiré (three seeds) | strong.

Uses two photographs bundled with scikit-image (no download) and the ``moire`` /
``moire_strong`` degradations of :mod:`restore.data.moire`; every image is seeded, so the
figure is the same on every run (up to OpenCV version differences in demosaicing and JPEG).

    python docs/make_moire_figure.py [--out docs/images/moire_examples.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from restore.data.degradations import parse_degradation
from restore.data.image_io import write_image

ROOT = Path(__file__).resolve().parents[1]
SIDE = 192
#: (skimage.data name, top, left) of each row's crop.
CROPS = (("astronaut", 30, 150), ("coffee", 110, 200))
#: (column title, degradation name, seed).
COLUMNS = (("clean", None, 0), ("moire, seed 1", "moire", 1), ("moire, seed 2", "moire", 2),
           ("moire, seed 3", "moire", 3), ("moire_strong, seed 4", "moire_strong", 4))


def crop(name: str, top: int, left: int) -> torch.Tensor:
    """A ``SIDE x SIDE`` crop of a bundled photo, (3, H, W) float32 in [0, 1]."""
    import skimage.data

    image = np.asarray(getattr(skimage.data, name)())[top : top + SIDE, left : left + SIDE, :3]
    return torch.from_numpy(image.copy()).permute(2, 0, 1).float() / 255


def title(text: str, width: int, height: int = 22) -> np.ndarray:
    """A white strip with black text, uint8 (height, width, 3)."""
    import cv2

    strip = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(strip, text, (6, height - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def figure() -> np.ndarray:
    """The whole figure, uint8 (H, W, 3) RGB."""
    gap = np.full((SIDE, 4, 3), 255, np.uint8)
    header = [title(text, SIDE) for text, _, _ in COLUMNS]
    rows = [np.concatenate([p for h in header for p in (h, gap[:22])][:-1], axis=1)]
    for name, top, left in CROPS:
        clean = crop(name, top, left)
        tiles = []
        for _, degradation, seed in COLUMNS:
            out = clean if degradation is None else parse_degradation(degradation)(clean, torch.Generator().manual_seed(seed))
            tiles += [(out.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), gap]
        rows += [np.concatenate(tiles[:-1], axis=1), np.full((4, rows[0].shape[1], 3), 255, np.uint8)]
    return np.concatenate(rows[:-1], axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "images" / "moire_examples.png"))
    args = parser.parse_args()
    print(write_image(args.out, figure()))


if __name__ == "__main__":
    main()
