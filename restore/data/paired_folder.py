"""Degraded/clean image pairs from two folders (derain, demoire, real denoising, ...).

Sample: ``{"input": (C,H,W), "target": (C,sH,sW), "name", "input_path", "target_path"}``,
float32 in ``[0, 1]`` (s = ``scale``, 1 unless the set is super-resolution). Pairing rules are
described in :mod:`restore.data.pairing`; per-sample seeding in :mod:`restore.data.base`
(``dataset[(index, seed)]`` from the engine's sampler, or a plain index: seeded by the
sample name in val/test, by torch's global RNG in train).

Pipeline per sample: read both -> channel rule -> size check -> optional TIP2018
pre-processing (central 2/3 crop + 256x256 PIL-bilinear resize; +-6 px jitter in train) ->
random crop -> random dihedral transform -> tensors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from restore.data.base import FolderDataset, geometry, make_generator
from restore.data.image_io import filter_names, image_to_tensor, list_images, read_image, to_channels
from restore.data.pairing import Pairing, pair_files
from restore.data.transforms import TIP2018_SIZE, check_pair_size, tip2018_preprocess
from restore.errors import ConfigError


class PairedFolderDataset(FolderDataset):
    """Pairs ``input_dir`` images with ``target_dir`` images by a pairing rule.

    Args (YAML options):
        input_dir, target_dir: folders of degraded and clean images (may be the same folder).
        pairing, pair_replace: the pairing rule and its ``[from, to]`` strings.
        input_pattern, target_pattern: optional glob on file names (e.g. ``"*NOISY*"``).
        recursive: also list sub-folders.
        phase, seed: see :mod:`restore.data.base`.
        crop_size: square random crop of the input (target: ``scale * crop_size``).
        flip_rotate: one of the 8 flips/rotations per sample.
        channels: 3 (RGB) or 1 (grey), see :func:`restore.data.image_io.to_channels`.
        scale: target size / input size (1 for restoration).
        preprocess: ``"tip2018"`` for the TIP2018 demoire protocol.
        max_images: keep only the first N pairs (sorted by input path).
    """

    def __init__(
        self,
        input_dir: str,
        target_dir: str,
        pairing: Literal["same_name", "sorted", "replace", "regex"] = "same_name",
        pair_replace: list[str] | None = None,
        input_pattern: str | None = None,
        target_pattern: str | None = None,
        recursive: bool = True,
        phase: Literal["train", "val", "test"] = "train",
        seed: int = 0,
        crop_size: int | None = None,
        flip_rotate: bool = False,
        channels: Literal[1, 3] = 3,
        scale: int = 1,
        preprocess: Literal["tip2018"] | None = None,
        max_images: int | None = None,
    ) -> None:
        super().__init__(phase, seed, crop_size, flip_rotate, channels, max_images)
        if scale < 1:
            raise ConfigError(f"scale must be >= 1, got {scale}")
        if preprocess not in (None, "tip2018"):
            raise ConfigError(f"unknown preprocess {preprocess!r} (known: tip2018)")
        if preprocess is not None and scale != 1:
            raise ConfigError("preprocess 'tip2018' cannot be combined with scale != 1")
        rule = Pairing.from_options(pairing, pair_replace)
        self.input_dir, self.target_dir = Path(input_dir), Path(target_dir)
        self.scale, self.preprocess = scale, preprocess

        inputs = filter_names(list_images(self.input_dir, recursive), input_pattern, input_dir, "input_pattern")
        targets = filter_names(
            list_images(self.target_dir, recursive), target_pattern, target_dir, "target_pattern"
        )
        self.pairs = self.first_images(pair_files(inputs, self.input_dir, targets, self.target_dir, rule))
        self.name_samples([i for i, _ in self.pairs], self.input_dir)

    def sample_files(self, index: int) -> dict[str, Path]:
        in_path, t_path = self.pairs[index]
        return {"input": in_path, "target": t_path}

    def crop_input_size(self, height: int, width: int) -> tuple[int, int]:
        """TIP2018 resizes to 256x256 before the crop (sizes must match before that, as in load)."""
        if self.preprocess == "tip2018":
            return TIP2018_SIZE, TIP2018_SIZE
        return height, width

    def load(self, index: int, sample_seed: int) -> dict[str, Any]:
        in_path, t_path = self.pairs[index]
        x = to_channels(read_image(in_path), self.channels)
        y = to_channels(read_image(t_path), self.channels)
        check_pair_size(x, in_path, y, t_path, self.scale)
        g = make_generator(sample_seed, "geometry")
        arrays = [x, y]
        if self.preprocess == "tip2018":
            arrays = tip2018_preprocess(arrays, [in_path, t_path], g if self.phase == "train" else None)
        arrays = geometry(arrays, [in_path, t_path], g, self.crop_size, self.flip_rotate, [1, self.scale])
        return {
            "input": image_to_tensor(arrays[0]),
            "target": image_to_tensor(arrays[1]),
            "name": self.names[index],
            "input_path": str(in_path),
            "target_path": str(t_path),
        }
