"""What differs between the quickstart's tasks: the option file, the folder of degraded photos
the batch-restore step cleans, and the words of the summary.

``denoise`` writes its noisy folder itself (:func:`write_noisy`);
``demoire`` writes the held-out set's own inputs (:func:`write_val_inputs`), so the folder it
restores holds exactly the moiré photos that were scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from restore.config import Options

OPTIONS = Path(__file__).resolve().parents[2] / "options" / "quickstart"
#: The photographs the denoising quickstart trains on: bundled in scikit-image's package
#: (skimage.data), none fetched from the network.
TRAIN_PHOTOS = (
    "astronaut", "rocket", "hubble_deep_field", "retina", "immunohistochemistry", "camera",
    "brick", "grass", "gravel", "moon", "clock", "coins",
)
#: The colour photographs among scikit-image's bundled ones (held-out coffee and chelsea aside).
#: Demoireing trains on these alone: on a grey photo "remove all colour" removes the moiré too,
#: a shortcut that then discolours colour photos.
COLOUR_TRAIN_PHOTOS = ("astronaut", "rocket", "hubble_deep_field", "retina", "immunohistochemistry")


@dataclass(frozen=True)
class QuickstartTask:
    """One task of ``restore quickstart --task NAME``."""

    options: Path  # the option file run when -opt is not given
    inputs: str  # data/<inputs>/: the degraded held-out photos that are batch-restored
    degradation: str  # how the held-out photos are degraded, for the summary
    input_label: str  # the summary's row for the degraded input (same width as "restored")
    train_folder: str = "train"  # data/<train_folder>/: the training photos
    train_photos: tuple[str, ...] = TRAIN_PHOTOS
    noise_sigma: float | None = None  # set: the inputs are Gaussian-noisy copies, else the val set's own inputs

    def write_inputs(self, options: Options, clean: Path, folder: Path) -> None:
        """Write the degraded held-out photos (from the photos in ``clean``) that the batch-restore step cleans."""
        if self.noise_sigma is not None:
            write_noisy(clean, folder, self.noise_sigma, options.seed)
        else:
            write_val_inputs(options, "heldout", folder)


TASKS = {
    "denoise": QuickstartTask(OPTIONS / "denoise_skimage.yml", "noisy",
                              "Gaussian sigma 25", "noisy input", noise_sigma=25.0),
    "demoire": QuickstartTask(OPTIONS / "demoire_skimage.yml", "moire",
                              "synthetic moire, preset 'moire'", "moire input", "train_colour", COLOUR_TRAIN_PHOTOS),
}


def write_val_inputs(options: Options, set_name: str, folder: Path) -> int:
    """Write the inputs of the validation set ``set_name`` as 8-bit PNGs named after its samples.

    The set synthesises its inputs per image from its seed (``phase: val``), so these are the
    very images it scores. Existing files are kept (a rerun reuses them). Returns how many
    images the folder holds for the set.
    """
    from restore.data.image_io import write_image

    dataset = options.datasets.val[set_name].dataset.build()
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(len(dataset)):
        name = Path(str(dataset.names[index])).with_suffix(".png").name
        if not (folder / name).exists():
            write_image(folder / name, dataset[index]["input"])
    return len(dataset)


def write_noisy(clean: Path, noisy: Path, sigma: float, seed: int) -> None:
    """Noisy 8-bit copies of the held-out photos: the folder the batch-restore step cleans."""
    import numpy as np

    from restore.data.image_io import list_images, read_image, write_image

    noisy.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for path in list_images(clean):
        out = noisy / path.name
        if not out.exists():
            image = read_image(path).astype(np.float64)
            write_image(out, np.clip(np.rint(image + rng.normal(0, sigma, image.shape)), 0, 255).astype(np.uint8))
