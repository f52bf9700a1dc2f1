"""Noisy images only, no ground truth (self-supervised training such as Neighbor2Neighbor,
or batch inference on a folder).

Sample: ``{"input": (C,H,W) float32 in [0,1], "name", "input_path"}`` — there is **no**
``"target"`` key at all, so code cannot silently compare against something that does not exist.
Seeding of the crop/flip draws as in :mod:`restore.data.base`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from restore.data.base import FolderDataset, geometry, make_generator
from restore.data.image_io import filter_names, image_to_tensor, list_images, read_image, to_channels


class NoisyFolderDataset(FolderDataset):
    """Every image under ``root`` (optionally filtered by the glob ``pattern`` on file names)."""

    has_target = False
    no_target_hint = (
        "a noisy_folder set holds inputs only; under datasets.test `restore test` restores it and saves "
        "the images without scores (or use `restore infer`); to score, use paired_folder (noisy + clean "
        "folders) or synthetic_noise (clean images)"
    )

    def __init__(
        self,
        root: str,
        pattern: str | None = None,
        recursive: bool = True,
        phase: Literal["train", "val", "test"] = "train",
        seed: int = 0,
        crop_size: int | None = None,
        flip_rotate: bool = False,
        channels: Literal[1, 3] = 3,
        max_images: int | None = None,
    ) -> None:
        super().__init__(phase, seed, crop_size, flip_rotate, channels, max_images)
        self.root = Path(root)
        self.images = self.first_images(filter_names(list_images(self.root, recursive), pattern, root, "pattern"))
        self.name_samples(self.images, self.root)

    def sample_files(self, index: int) -> dict[str, Path]:
        return {"input": self.images[index]}

    def load(self, index: int, sample_seed: int) -> dict[str, Any]:
        path = self.images[index]
        x = to_channels(read_image(path), self.channels)
        (x,) = geometry([x], [path], make_generator(sample_seed, "geometry"), self.crop_size, self.flip_rotate)
        return {"input": image_to_tensor(x), "name": self.names[index], "input_path": str(path)}
