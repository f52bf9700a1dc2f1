"""SIDD validation/benchmark blocks from the official ``.mat`` files.

``ValidationNoisyBlocksSrgb.mat`` / ``ValidationGtBlocksSrgb.mat`` (and the benchmark's
``BenchmarkNoisyBlocksSrgb.mat``, whose GT is withheld) are MATLAB v5 files holding one uint8
array of shape ``(40, 32, 256, 256, 3)`` = (image, block, H, W, RGB) under a key equal to the
file stem. The array is loaded once in the constructor (about 250 MB per file; DataLoader
workers share it copy-on-write after fork) so that a wrong file fails before any work starts.

Sample: ``{"input": (3,256,256), "target": (3,256,256) (only with gt_mat), "name":
"%04d_%02d" % (image, block) (0-based, image-major), "input_path": the noisy .mat path}``.
Optional crop/flip and the seeding follow :mod:`restore.data.base`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from restore.data.base import ProblemSink, SeededDataset, check_common, geometry, make_generator
from restore.data.image_io import image_to_tensor, to_channels
from restore.errors import DataError, RestoreError


def load_blocks(path: Path, key: str | None) -> np.ndarray:
    """The 5-D uint8 block array of a SIDD ``.mat`` file (key defaults to the file stem)."""
    import scipy.io

    if not path.exists():
        raise DataError(f"cannot read SIDD blocks '{path}': no such file")
    if path.is_dir():
        raise DataError(f"cannot read SIDD blocks '{path}': it is a folder, not a .mat file")
    if path.stat().st_size == 0:
        raise DataError(f"cannot read SIDD blocks '{path}': file is empty (0 bytes)")
    try:
        data = scipy.io.loadmat(str(path))
    except NotImplementedError:
        raise DataError(
            f"cannot read SIDD blocks '{path}': MATLAB v7.3 (HDF5) files are not supported; "
            "re-save it as v5 (save -v7) or use the official v5 download"
        ) from None
    except Exception as exc:  # scipy raises several types for corrupt files
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot read SIDD blocks '{path}': not a readable .mat file ({detail})") from None
    name = key or path.stem
    if name not in data:
        found = sorted(k for k in data if not k.startswith("__"))
        raise DataError(
            f"SIDD blocks '{path}' has no variable '{name}' (variables: {', '.join(found) or 'none'}); "
            "set the key option if it was renamed"
        )
    blocks = data[name]
    if not isinstance(blocks, np.ndarray) or blocks.ndim != 5 or blocks.shape[-1] != 3:
        shape = getattr(blocks, "shape", None)
        raise DataError(
            f"SIDD blocks '{path}': variable '{name}' has shape {shape}, expected "
            "(images, blocks, H, W, 3) such as (40, 32, 256, 256, 3)"
        )
    if blocks.dtype not in (np.uint8, np.uint16):
        raise DataError(f"SIDD blocks '{path}': variable '{name}' is {blocks.dtype}, expected uint8 (or uint16)")
    return blocks


class SIDDBlocksDataset(SeededDataset):
    """The 40x32 SIDD sRGB blocks of ``noisy_mat`` (and ``gt_mat`` when given)."""

    no_target_hint = (
        "the sidd_blocks set has no gt_mat (the benchmark blocks' ground truth is withheld); give gt_mat "
        "to score it, or keep it under datasets.test, where `restore test` restores it and saves the "
        "images without scores (for the SIDD server)"
    )

    def __init__(
        self,
        noisy_mat: str,
        gt_mat: str | None = None,
        noisy_key: str | None = None,
        gt_key: str | None = None,
        phase: Literal["train", "val", "test"] = "train",
        seed: int = 0,
        crop_size: int | None = None,
        flip_rotate: bool = False,
        max_images: int | None = None,
    ) -> None:
        super().__init__(phase, seed)
        check_common(crop_size, 3, max_images)
        self.noisy_mat = Path(noisy_mat)
        self.noisy = load_blocks(self.noisy_mat, noisy_key)
        self.gt: np.ndarray | None = None
        self.has_target = gt_mat is not None
        if gt_mat is not None:
            self.gt = load_blocks(Path(gt_mat), gt_key)
            if self.gt.shape != self.noisy.shape:
                raise DataError(
                    f"SIDD blocks '{gt_mat}' has shape {self.gt.shape} but '{noisy_mat}' has "
                    f"{self.noisy.shape}; noisy and GT files must match"
                )
        self.crop_size, self.flip_rotate = crop_size, flip_rotate
        n_img, n_blk = self.noisy.shape[:2]
        self.index = [(i, b) for i in range(n_img) for b in range(n_blk)]
        if max_images is not None:
            self.index = self.index[:max_images]
        self.names = [f"{i:04d}_{b:02d}" for i, b in self.index]

    def verify(self, decode: bool = False, on_problem: ProblemSink | None = None) -> int:
        """The arrays were loaded and checked by the constructor; only the crop size is left."""
        if self.crop_size is not None and len(self):
            from restore.data.transforms import check_crop_size

            i, b = self.index[0]
            h, w = self.noisy.shape[2:4]
            try:
                check_crop_size(h, w, self.crop_size, f"{self.noisy_mat}[{i}, {b}]")
            except RestoreError as exc:
                if on_problem is None:
                    raise
                on_problem(exc)
        return len(self)

    def load(self, index: int, sample_seed: int) -> dict[str, Any]:
        i, b = self.index[index]
        arrays = [np.ascontiguousarray(self.noisy[i, b])]
        if self.gt is not None:
            arrays.append(np.ascontiguousarray(self.gt[i, b]))
        where = f"{self.noisy_mat}[{i}, {b}]"
        arrays = geometry(
            [to_channels(a, 3) for a in arrays], [where] * len(arrays),
            make_generator(sample_seed, "geometry"), self.crop_size, self.flip_rotate,
        )
        sample: dict[str, Any] = {
            "input": image_to_tensor(arrays[0]),
            "name": self.names[index],
            "input_path": str(self.noisy_mat),
        }
        if self.gt is not None:
            sample["target"] = image_to_tensor(arrays[1])
        return sample
