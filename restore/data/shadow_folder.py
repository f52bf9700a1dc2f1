"""Shadow removal triplets: shadow image, shadow mask, shadow-free target.

Sample: ``{"input": (3,H,W), "mask": (1,H,W), "target": (3,H,W) (only with a target),
"name", "input_path", "mask_path", "target_path"}``, float32. The mask is the raw file value
divided by 255 (65535 for 16-bit), **not binarised** — the model/evaluator applies its own
threshold (LAB-Net: ``> 0.9`` at test, ``> 0.5`` in training). Exception: an 8-bit mask file
whose maximum is 1 (stored as 0/1) is multiplied by 255 first, so it reads as {0, 1} like a
0/255 mask; read as 1/255 it would be "no shadow" to those thresholds but "shadow" to an
evaluator testing ``!= 0``. An all-zero mask (no shadow) stays zero. A 3-channel mask becomes
grey by BT.601 luma, an alpha channel is dropped (:func:`restore.data.image_io.to_channels`). Crop and
dihedral transforms are applied identically to image, mask and target; seeding as in
:mod:`restore.data.base`.

Layouts (``layout`` + ``root`` + ``split``; any folder can be overridden explicitly):

* ``istd`` (ISTD, ISTD+, DHAN-style SRD): ``<root>/<split>_A`` shadow, ``<split>_B`` mask,
  ``<split>_C`` shadow-free; identical file names (extensions may differ). ``<root>`` may also
  be the parent of the split folder (``root: ISTD`` + ``split: test`` finds ``ISTD/test/test_A``).
* ``srd`` (SRD as distributed): ``<root>/shadow`` and ``<root>/shadow_free`` (or
  ``<root>/<split>/...``) where ``IMG_1.jpg`` <-> ``IMG_1_free.jpg``; SRD ships no masks, so
  ``mask_dir`` is required.

``split`` defaults to ``train`` for phase train and ``test`` otherwise. ``with_target: false``
builds an inference set (image + mask only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from restore.data.base import FolderDataset, geometry, make_generator
from restore.data.image_io import image_to_tensor, list_images, read_image, to_channels
from restore.data.pairing import Pairing, pair_files
from restore.data.transforms import check_mask_size, check_pair_size
from restore.errors import ConfigError, DataError

#: SRD's ``_free`` suffix before any extension: ``IMG_1.jpg`` -> ``IMG_1_free.jpg``.
SRD_TARGET_RULE: list[str] = [r"(\.[A-Za-z0-9]+)$", r"_free\1"]


def find_split_root(root: Path, split: str, first: str) -> Path:
    """``root`` if it holds ``first`` (e.g. ``test_A``), else ``root/split`` if that does.

    Accepts both LAB-Net's data root (``<root>/test_A``) and the ISTD/SRD distribution
    (``ISTD/test/test_A``, ``SRD/test/shadow``) for ``root: ISTD, split: test``.
    """
    if (root / first).is_dir():
        return root
    if (root / split / first).is_dir():
        return root / split
    raise DataError(
        f"shadow data: neither '{root / first}' nor '{root / split / first}' is a folder "
        f"(layout expects <root>/{first} or <root>/{split}/{first})"
    )


def read_mask(path: Path) -> np.ndarray:
    """A mask file as ``(H, W, 1)`` in its stored dtype, an 8-bit 0/1 mask rescaled to 0/255."""
    return mask_from_array(read_image(path))


def mask_from_array(raw: np.ndarray) -> np.ndarray:
    """A decoded mask ``(H, W, C)`` as ``(H, W, 1)``: alpha dropped, an 8-bit 0/1 mask rescaled to 0/255."""
    if raw.ndim == 2:
        raw = raw[:, :, None]
    if raw.shape[2] in (2, 4):
        raw = raw[:, :, :-1]  # drop alpha first: its 255 must not hide a 0/1 mask
    if raw.dtype == np.uint8 and int(raw.max()) == 1:
        raw = raw * np.uint8(255)
    return to_channels(raw, 1)


class ShadowDataset(FolderDataset):
    """Shadow image + mask (+ shadow-free target) from an ISTD- or SRD-style layout.

    Args (YAML options):
        root, split, layout: the standard layout (see module docstring).
        image_dir, mask_dir, target_dir: explicit folders (override those from ``root``).
        with_target: load the shadow-free target (false for inference sets).
        pairing, pair_replace: image -> target rule (default same_name; ``srd`` layout
            defaults to regex adding ``_free``).
        mask_pairing, mask_replace: image -> mask rule.
        recursive, phase, seed, crop_size, flip_rotate, channels, max_images: as usual.
    """

    no_target_hint = (
        "the shadow_folder set has with_target: false; set with_target: true and give the shadow-free "
        "images (target_dir) to score it, or keep it under datasets.test, where `restore test` restores "
        "it and saves the images without scores"
    )

    def __init__(
        self,
        root: str | None = None,
        split: Literal["train", "test"] | None = None,
        layout: Literal["istd", "srd"] = "istd",
        image_dir: str | None = None,
        mask_dir: str | None = None,
        target_dir: str | None = None,
        with_target: bool = True,
        pairing: Literal["same_name", "sorted", "replace", "regex"] | None = None,
        pair_replace: list[str] | None = None,
        mask_pairing: Literal["same_name", "sorted", "replace", "regex"] = "same_name",
        mask_replace: list[str] | None = None,
        recursive: bool = True,
        phase: Literal["train", "val", "test"] = "train",
        seed: int = 0,
        crop_size: int | None = None,
        flip_rotate: bool = False,
        channels: Literal[1, 3] = 3,
        max_images: int | None = None,
    ) -> None:
        super().__init__(phase, seed, crop_size, flip_rotate, channels, max_images)
        if layout not in ("istd", "srd"):
            raise ConfigError(f"unknown shadow layout {layout!r} (istd or srd)")
        self.with_target = self.has_target = with_target

        derived: tuple[Path | None, Path | None, Path | None] = (None, None, None)
        if root is not None:
            s = split or ("train" if phase == "train" else "test")
            names = (f"{s}_A", f"{s}_B", f"{s}_C") if layout == "istd" else ("shadow", None, "shadow_free")
            base = find_split_root(Path(root), s, names[0])
            derived = tuple(base / n if n is not None else None for n in names)  # type: ignore[assignment]
        img = Path(image_dir) if image_dir is not None else derived[0]
        msk = Path(mask_dir) if mask_dir is not None else derived[1]
        tgt = Path(target_dir) if target_dir is not None else derived[2]
        if img is None:
            raise ConfigError("shadow_folder needs root (with layout/split) or image_dir")
        if msk is None:
            hint = "SRD ships no masks; " if layout == "srd" and root is not None else ""
            raise ConfigError(f"shadow_folder needs mask_dir ({hint}e.g. DHAN's extracted SRD masks)")
        if with_target and tgt is None:
            raise ConfigError("shadow_folder needs target_dir, or with_target: false for a set without targets")
        if pairing is None:
            if layout == "srd" and pair_replace is None:
                pairing, pair_replace = "regex", SRD_TARGET_RULE
            else:
                pairing = "same_name"
        self.image_dir, self.mask_dir = img, msk
        self.target_dir = tgt if with_target else None

        images = list_images(img, recursive)
        mask_pairs = pair_files(
            images, img, list_images(msk, recursive), msk,
            Pairing.from_options(mask_pairing, mask_replace, "mask_replace"), roles=("image", "mask"),
        )
        records = [(i, m, None) for i, m in mask_pairs]
        if with_target:
            assert tgt is not None
            target_pairs = pair_files(
                [i for i, _ in mask_pairs], img, list_images(tgt, recursive), tgt,
                Pairing.from_options(pairing, pair_replace), roles=("shadow", "shadow-free"),
            )
            records = [(i, m, t) for (i, m), (_, t) in zip(mask_pairs, target_pairs)]
        self.records: list[tuple[Path, Path, Path | None]] = self.first_images(records)
        self.name_samples([i for i, _, _ in self.records], img)

    def sample_files(self, index: int) -> dict[str, Path]:
        """Image, mask, then target (the order load() reads them); a 0/1 mask passes verify()."""
        in_path, m_path, t_path = self.records[index]
        files = {"input": in_path, "mask": m_path}
        if t_path is not None:
            files["target"] = t_path
        return files

    def load(self, index: int, sample_seed: int) -> dict[str, Any]:
        in_path, m_path, t_path = self.records[index]
        x = to_channels(read_image(in_path), self.channels)
        m = read_mask(m_path)
        check_mask_size(x, in_path, m, m_path)
        arrays, paths = [x, m], [in_path, m_path]
        if t_path is not None:
            y = to_channels(read_image(t_path), self.channels)
            check_pair_size(x, in_path, y, t_path)
            arrays.append(y)
            paths.append(t_path)
        arrays = geometry(arrays, paths, make_generator(sample_seed, "geometry"), self.crop_size, self.flip_rotate)
        sample: dict[str, Any] = {
            "input": image_to_tensor(arrays[0]),
            "mask": image_to_tensor(arrays[1]),
            "name": self.names[index],
            "input_path": str(in_path),
            "mask_path": str(m_path),
        }
        if t_path is not None:
            sample["target"] = image_to_tensor(arrays[2])
            sample["target_path"] = str(t_path)
        return sample
