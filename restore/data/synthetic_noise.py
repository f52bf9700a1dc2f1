"""Clean images + synthetic noise made on the fly (Gaussian/Poisson denoising, N2N).

Sample: ``{"input": noisy (C,H,W), "target": clean (C,H,W), "name", "input_path", "noise_level"}``
(float32; the noisy input is not clipped unless ``clip``/``quantize``; ``noise_level`` is the
sigma on 0..255 or the lambda actually used for this sample).

Seeding (see :mod:`restore.data.base`): in val/test the noise of each (image, repeat) is a pure
function of ``(seed, name)``, so two runs, two dataset instances or any DataLoader worker count
see the same noisy images; in train every draw is fresh. With ``repeat = r > 1`` (N2N evaluates
Kodak x10, BSD300 x3, Set14 x20) each image appears r times with independent noise, named
``<name>#<k>`` for k = 0..r-1, in repeat-major order (all images for k = 0, then k = 1, ...).
N2N's own numpy stream (``np.random.seed(101)``) is not reproduced: numbers are comparable on
average, not bit-identical.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from restore.data.base import SeededDataset, check_common, check_unique_names, geometry, make_generator
from restore.data.image_io import image_to_tensor, list_images, read_image, to_channels
from restore.data.noise import parse_noise
from restore.data.pairing import strip_image_ext
from restore.errors import ConfigError


class SyntheticNoiseDataset(SeededDataset):
    """Noisy/clean pairs from a folder of clean images.

    Args (YAML options):
        root: folder of clean images (searched recursively unless ``recursive: false``).
        noise: N2N noise name, e.g. ``gauss25``, ``gauss5_50``, ``poisson30``, ``poisson5_50``.
        clip: clamp the noisy image to [0, 1]; quantize: round it to 8-bit levels (implies clip).
        repeat: evaluate every image this many times with independent noise.
        phase, seed, crop_size, flip_rotate, channels, max_images: as for every dataset.
    """

    def __init__(
        self,
        root: str,
        noise: str = "gauss25",
        clip: bool = False,
        quantize: bool = False,
        repeat: int = 1,
        recursive: bool = True,
        phase: Literal["train", "val", "test"] = "train",
        seed: int = 0,
        crop_size: int | None = None,
        flip_rotate: bool = False,
        channels: Literal[1, 3] = 3,
        max_images: int | None = None,
    ) -> None:
        super().__init__(phase, seed)
        check_common(crop_size, channels, max_images)
        if repeat < 1:
            raise ConfigError(f"repeat must be >= 1, got {repeat}")
        self.noise = parse_noise(noise, clip=clip, quantize=quantize)
        self.root = Path(root)
        self.crop_size, self.flip_rotate, self.channels = crop_size, flip_rotate, channels
        self.repeat = repeat
        images = list_images(self.root, recursive)
        if max_images is not None:
            images = images[:max_images]
        self.images = images
        base = [strip_image_ext(p.relative_to(self.root).as_posix()) for p in images]
        check_unique_names(base, images)
        if repeat == 1:
            self.names = base
        else:
            self.names = [f"{n}#{k}" for k in range(repeat) for n in base]

    def sample_files(self, index: int) -> dict[str, Path]:
        return {"input": self.images[index % len(self.images)]}

    def load(self, index: int, sample_seed: int) -> dict[str, Any]:
        path = self.images[index % len(self.images)]
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
