"""Clean images + synthetic noise made on the fly (Gaussian/Poisson denoising, N2N).

Sample: ``{"input": noisy (C,H,W), "target": clean (C,H,W), "name", "input_path", "noise_level"}``
(float32; the noisy input is not clipped unless ``clip``/``quantize``; ``noise_level`` is the
sigma on 0..255 or the lambda actually used for this sample).

Seeding (see :mod:`restore.data.base`): in val/test the noise of each (image, repeat) is a pure
function of ``(seed, name)``, so two runs, two dataset instances or any DataLoader worker count
see the same noisy images; in train every draw is fresh. With ``repeat = r > 1`` (N2N evaluates
Kodak x10, BSD300 x3, Set14 x20) each image appears r times with independent noise, named
``<name>#<k>`` for k = 0..r-1, in repeat-major order (all images for k = 0, then k = 1, ...).

``noise_stream: official`` (val/test only) reproduces Neighbor2Neighbor's validation noise
instead, draw for draw: one numpy legacy stream seeded with ``stream_seed`` (101) at the start
of the set, consumed image by image in the same repeat-major order, level first, noise drawn
in (H, W, C) order, with the official float32/float64 casts. With the released weights this
gives the official noisy images themselves. The official code runs Kodak, BSD300 and Set14 in
one stream; here each set starts at the seed, so only the first set of that chain (Kodak) is
bit-identical. Item k needs the stream state after items 0..k-1 (Poisson draws consume a
data-dependent count), so states are computed in order once and cached.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from restore.data.base import FolderDataset, geometry, make_generator
from restore.data.image_io import image_to_tensor, list_images, read_image, to_channels
from restore.data.noise import parse_noise
from restore.errors import ConfigError


class SyntheticNoiseDataset(FolderDataset):
    """Noisy/clean pairs from a folder of clean images.

    Args (YAML options):
        root: folder of clean images (searched recursively unless ``recursive: false``).
        noise: N2N noise name, e.g. ``gauss25``, ``gauss5_50``, ``poisson30``, ``poisson5_50``.
        clip: clamp the noisy image to [0, 1]; quantize: round it to 8-bit levels (implies clip).
        repeat: evaluate every image this many times with independent noise.
        noise_stream: ``per_image`` (seeded per image name) or ``official`` (N2N's numpy stream).
        stream_seed: the seed of the official stream.
        phase, seed, crop_size, flip_rotate, channels, max_images: as for every dataset.
    """

    def __init__(
        self,
        root: str,
        noise: str = "gauss25",
        clip: bool = False,
        quantize: bool = False,
        repeat: int = 1,
        noise_stream: Literal["per_image", "official"] = "per_image",
        stream_seed: int = 101,
        recursive: bool = True,
        phase: Literal["train", "val", "test"] = "train",
        seed: int = 0,
        crop_size: int | None = None,
        flip_rotate: bool = False,
        channels: Literal[1, 3] = 3,
        max_images: int | None = None,
    ) -> None:
        super().__init__(phase, seed, crop_size, flip_rotate, channels, max_images, repeat)
        self.noise = parse_noise(noise, clip=clip, quantize=quantize)
        self.root = Path(root)
        if noise_stream == "official":
            if phase == "train":
                raise ConfigError("noise_stream: official reproduces N2N's validation noise; use it in val/test sets")
            if crop_size is not None or flip_rotate or channels != 3 or clip or quantize:
                raise ConfigError(
                    "noise_stream: official adds noise to whole RGB images as N2N does; drop crop_size, "
                    "flip_rotate, channels, clip and quantize"
                )
        self.noise_stream = noise_stream
        self._states: dict[int, Any] = {0: np.random.RandomState(stream_seed).get_state()}
        self.images = self.first_images(list_images(self.root, recursive))
        self.name_samples(self.images, self.root)

    def sample_files(self, index: int) -> dict[str, Path]:
        return {"input": self.images[index % len(self.images)]}

    def load(self, index: int, sample_seed: int) -> dict[str, Any]:
        path = self.images[index % len(self.images)]
        if self.noise_stream == "official":
            return self._load_official(index, path)
        clean = to_channels(read_image(path), self.channels)
        (clean,) = geometry([clean], [path], make_generator(sample_seed, "geometry"), self.crop_size, self.flip_rotate)
        target = image_to_tensor(clean)
        g = make_generator(sample_seed, "noise")
        level = self.noise.draw_level(g)
        noisy = self.noise.apply_level(target, level, g)
        return {
            "input": noisy,
            "target": target,
            "name": self.names[index],
            "input_path": str(path),
            "noise_level": level,
        }

    def _clean(self, index: int) -> np.ndarray:
        """The clean image as N2N validates it: float32 (H, W, 3) = uint8 / 255."""
        return image_to_tensor(to_channels(read_image(self.images[index % len(self.images)]), 3)).permute(1, 2, 0).numpy()

    def _official_draw(self, rng: np.random.RandomState, x: np.ndarray) -> tuple[np.ndarray, float]:
        """One call of N2N's ``add_valid_noise`` on float32 (H, W, C) ``x``; returns (noisy, level)."""
        m = self.noise
        if m.kind == "gauss":
            std = rng.uniform(low=m.low / 255.0, high=m.high / 255.0, size=(1, 1, 1)) if m.is_range else m.low / 255.0
            noisy = np.array(x + rng.normal(size=x.shape) * std, dtype=np.float32)
            return noisy, float(np.asarray(std).reshape(-1)[0]) * 255.0
        lam = rng.uniform(low=m.low, high=m.high, size=(1, 1, 1)) if m.is_range else m.low
        noisy = np.array(rng.poisson(lam * x) / lam, dtype=np.float32)
        return noisy, float(np.asarray(lam).reshape(-1)[0])

    def _load_official(self, index: int, path: Path) -> dict[str, Any]:
        start = max(k for k in self._states if k <= index)
        rng = np.random.RandomState()
        rng.set_state(self._states[start])
        for k in range(start, index + 1):
            clean = self._clean(k)
            noisy, level = self._official_draw(rng, clean)
            self._states[k + 1] = rng.get_state()
        return {
            "input": torch.from_numpy(np.ascontiguousarray(noisy.transpose(2, 0, 1))),
            "target": torch.from_numpy(np.ascontiguousarray(clean.transpose(2, 0, 1))),
            "name": self.names[index],
            "input_path": str(path),
            "noise_level": level,
        }
