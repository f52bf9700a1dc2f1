"""Clean images + one named synthetic degradation made on the fly (pre-training, synthetic sets).

Sample: ``{"input": degraded (C,h,w), "target": clean (C,H,W), "name", "input_path", "task"}``,
float32 in [0, 1]; ``task`` is the ``task`` option or the degradation's name. Degradations and
their names: :mod:`restore.data.degradations`.

Super-resolution (``bicubic_x<s>``): ``crop_size`` is the crop of the clean (HR) image and must
be a multiple of ``s``; the input is ``crop_size / s`` on a side (``sr_input: lr``, for an
architecture with ``scale = s``) or that LR image up-sampled back with the same MATLAB bicubic
(``sr_input: upsampled``, the input of a ``scale = 1`` network, as VDSR-style methods use).
Without a crop (val/test) the HR image is first cut to a multiple of ``s`` (right/bottom
pixels dropped, MATLAB's ``modcrop``).

Seeding as :mod:`restore.data.synthetic_noise`: the streams ``"geometry"`` (crop, flip) and
``"degradation"`` (parameters and pixels) are derived from the sample seed, so in val/test an
image's degradation is a pure function of ``(seed, name)``; ``repeat`` gives ``<name>#<k>``
copies with independent degradations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch

from restore.data.base import FolderDataset, geometry, make_generator
from restore.data.degradations import parse_degradation
from restore.data.image_io import image_to_tensor, list_images, read_image, to_channels
from restore.errors import ConfigError, ConfigKeyError, DataError


class DegradedFolderDataset(FolderDataset):
    """Degraded/clean pairs from a folder of clean images.

    Args (YAML options):
        root: folder of clean images (searched recursively unless ``recursive: false``).
        degradation: a name of :func:`restore.data.degradations.parse_degradation`
            (``bicubic_x2``, ``gauss30``, ``rain``, ``haze``, ...).
        degradation_args: overrides of the degradation's options (e.g. ``{angle: [-10, 10]}``).
        task: the sample's ``task`` tag (default: the degradation name).
        sr_input: ``lr`` or ``upsampled`` (super-resolution only, see the module docstring).
        repeat: use every image this many times with independent degradations.
        crop_size: side of the random crop of the CLEAN image (a multiple of the SR scale).
        phase, seed, flip_rotate, channels, max_images: as for every dataset.
    """

    def __init__(
        self,
        root: str,
        degradation: str,
        degradation_args: dict[str, Any] | None = None,
        task: str | None = None,
        sr_input: Literal["lr", "upsampled"] = "lr",
        repeat: int = 1,
        recursive: bool = True,
        phase: Literal["train", "val", "test"] = "train",
        seed: int = 0,
        crop_size: int | None = None,
        flip_rotate: bool = False,
        channels: Literal[1, 3] = 3,
        max_images: int | None = None,
    ) -> None:
        super().__init__(phase, seed, crop_size, flip_rotate, channels, max_images, repeat)
        if sr_input not in ("lr", "upsampled"):
            raise ConfigError(f"sr_input must be 'lr' or 'upsampled', got {sr_input!r}")
        self.degradation = parse_degradation(degradation, **(degradation_args or {}))
        s = self.degradation.scale
        if crop_size is not None and crop_size % s:
            raise ConfigError(
                f"crop_size {crop_size} is not a multiple of the scale {s} of {degradation!r} "
                "(crop_size is the clean HR crop)"
            )
        self.lr_scale = s
        self.sr_input = sr_input
        self.scale = 1 if sr_input == "upsampled" else s  # target size / input size
        self.task = task if task is not None else self.degradation.name
        self.root = Path(root)
        self.images = self.first_images(list_images(self.root, recursive))
        self.name_samples(self.images, self.root)

    @staticmethod
    def check_options(args: dict[str, Any]) -> None:
        """Load-time check (the option validator calls it): the degradation name, then each of
        its options alone (so the error names that key), then all together."""
        name, options = args.get("degradation"), args.get("degradation_args") or {}
        try:
            parse_degradation(name)
        except ConfigError as exc:
            raise ConfigKeyError(f"is invalid: {exc}", "degradation") from None
        for key, value in options.items():
            try:
                parse_degradation(name, **{key: value})
            except ConfigError as exc:
                raise ConfigKeyError(f"is invalid: {exc}", f"degradation_args.{key}") from None
        try:
            parse_degradation(name, **options)
        except ConfigError as exc:
            raise ConfigKeyError(f"is invalid: {exc}", "degradation_args") from None

    def sample_files(self, index: int) -> dict[str, Path]:
        return {"input": self.images[index % len(self.images)]}

    def sample_sizes(self) -> tuple[int, int] | None:
        """``(input side, target side)`` of every sample when cropped, else None (for batching)."""
        if self.crop_size is None:
            return None
        return self.crop_size // self.scale, self.crop_size

    def load(self, index: int, sample_seed: int) -> dict[str, Any]:
        path = self.images[index % len(self.images)]
        clean = to_channels(read_image(path), self.channels)
        (clean,) = geometry([clean], [path], make_generator(sample_seed, "geometry"), self.crop_size, self.flip_rotate)
        s = self.lr_scale
        if s > 1:
            h, w = clean.shape[:2]
            clean = clean[: h - h % s, : w - w % s]
            if clean.shape[0] == 0 or clean.shape[1] == 0:
                raise DataError(f"image '{path}' is smaller than the scale {s} of {self.degradation.name}")
        target = image_to_tensor(clean)
        degraded = self.degradation(target, make_generator(sample_seed, "degradation"))
        if s > 1 and self.sr_input == "upsampled":
            degraded = _upsample(degraded, s)
        return {
            "input": degraded,
            "target": target,
            "name": self.names[index],
            "input_path": str(path),
            "task": self.task,
        }


def _upsample(lr: torch.Tensor, s: int) -> torch.Tensor:
    """MATLAB bicubic up-sampling by ``s`` of ``(C, h, w)``, clipped to [0, 1]."""
    from restore.utils.matlab_resize import imresize

    h, w = lr.shape[-2:]
    up = imresize(lr[None].double(), (h * s, w * s))[0]
    return up.clamp(0.0, 1.0).to(lr.dtype)
