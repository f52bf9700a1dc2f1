"""What every dataset shares: sample keys, per-sample seeds and the image pipeline.

Randomness contract
-------------------
``dataset[key]`` accepts ``index`` or ``(index, sample_seed)``. Every random choice of a sample
(crop window, dihedral transform, noise level and noise) comes from ``torch.Generator`` objects
seeded from the sample seed alone — never from a global RNG — so a sample is a pure function of
``(index, sample_seed)`` and the dataset options.

* ``(index, sample_seed)``: the engine's sampler supplies seeds from its own RNG, so training
  resumes exactly and does not depend on the number of DataLoader workers.
* plain ``index`` in ``val``/``test``: ``sample_seed = stable_seed(seed, name)`` — a SHA-256 of
  the dataset ``seed`` and the sample ``name`` (not Python's salted ``hash``), so every run,
  process and worker count sees identical degraded inputs, and adding or removing an image does
  not change the others.
* plain ``index`` in ``train``: drawn from torch's global RNG, which DataLoader seeds
  differently in every worker, so each epoch sees fresh randomness. DataLoader derives those
  worker seeds from the main process's RNG, which engines seed identically on every DDP rank,
  so under an initialised ``torch.distributed`` the draw is mixed with the rank
  (``stable_seed(drawn, "rank", rank)``); otherwise every rank would train on the same crops and
  noise. Engines should still prefer passing ``(index, seed)`` keys with per-rank seeds: that
  is the only form that resumes exactly.

Independent streams (``"geometry"``, ``"noise"``) are derived from the sample seed so that,
e.g., switching ``flip_rotate`` on does not change the noise of a sample.

Checking files up front
-----------------------
``dataset.verify()`` reads every sample's file headers (``verify(decode=True)``: the whole
files) and raises the one-line DataError that ``load()`` would raise for an empty, corrupt or
too large file or mismatched sizes, so ``--check`` and the engine can fail before training
rather than inside a DataLoader worker; ``verify(on_problem=...)`` reports every problem
instead of the first. Subclasses describe a sample's files with :meth:`SeededDataset.sample_files`.

Names are the input's path relative to its root, without extension (``posix`` separators);
they are unique within a set and are used for per-image CSV rows and output file names.
"""

from __future__ import annotations

import hashlib
import numbers
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset

from restore.errors import ConfigError, DataError, RestoreError

#: Receives each problem ``verify()`` finds when the caller wants them all (``--check``).
ProblemSink = Callable[[RestoreError], None]
T = TypeVar("T")

PHASES = ("train", "val", "test")
_SEED_MASK = (1 << 63) - 1


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from ``parts`` (joined by their ``str``); identical across runs/processes."""
    text = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") & _SEED_MASK


def make_generator(sample_seed: int, stream: str) -> torch.Generator:
    """A CPU generator for one named stream of one sample."""
    g = torch.Generator()
    g.manual_seed(stable_seed(sample_seed, stream))
    return g


def parse_key(key: Any, length: int) -> tuple[int, int | None]:
    """``index`` or ``(index, seed)`` -> ``(non-negative index, seed or None)``."""
    seed: int | None = None
    if isinstance(key, (tuple, list)):
        if len(key) != 2:
            raise TypeError(f"dataset key must be an int or (index, seed), got {key!r}")
        key, seed_value = key
        if isinstance(seed_value, torch.Tensor):
            seed_value = seed_value.item()
        if isinstance(seed_value, bool) or not isinstance(seed_value, numbers.Integral):
            raise TypeError(f"sample seed must be an int, got {seed_value!r}")
        seed = int(seed_value) & _SEED_MASK
    if isinstance(key, torch.Tensor):
        key = key.item()
    if isinstance(key, bool) or not isinstance(key, numbers.Integral):
        raise TypeError(f"dataset index must be an int, got {key!r}")
    index = int(key)
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"dataset index {key} out of range for {length} samples")
    return index, seed


def distributed_rank() -> int | None:
    """This process's rank under an initialised ``torch.distributed``, else None."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank())
    return None


def check_phase(phase: str) -> str:
    if phase not in PHASES:
        raise ConfigError(f"phase must be one of {', '.join(PHASES)}, got {phase!r}")
    return phase


def check_common(crop_size: int | None, channels: int, max_images: int | None) -> None:
    """Validate the options every dataset shares (one-line ConfigError)."""
    if crop_size is not None and crop_size <= 0:
        raise ConfigError(f"crop_size must be a positive int or null, got {crop_size}")
    if channels not in (1, 3):
        raise ConfigError(f"channels must be 1 or 3, got {channels!r}")
    if max_images is not None and max_images <= 0:
        raise ConfigError(f"max_images must be a positive int or null, got {max_images}")


def check_unique_names(names: Sequence[str], paths: Sequence[Path]) -> None:
    """Names must be unique (two files differing only by extension would clash)."""
    seen: dict[str, Path] = {}
    for name, path in zip(names, paths):
        if name in seen:
            raise DataError(
                f"two images share the name '{name}': '{seen[name]}' and '{path}'; "
                "sample names must be unique within a set (remove or rename one)"
            )
        seen[name] = path


class SeededDataset(Dataset):
    """Base class: key parsing and sample-seed derivation; subclasses implement :meth:`load`.

    Subclasses set ``self.names`` (one unique name per sample) in their constructor.
    """

    names: list[str]
    #: Whether samples carry a ``target``; a set without one is restored but cannot be scored.
    has_target: bool = True
    #: What to do about a missing target, in this dataset's words (the evaluator's error line).
    no_target_hint: str = ""
    #: Options read by :meth:`SeededDataset.verify` (subclasses set them from their arguments).
    scale: int = 1
    crop_size: int | None = None

    def __init__(self, phase: str, seed: int) -> None:
        self.phase = check_phase(phase)
        self.seed = int(seed)
        self.names = []

    def __len__(self) -> int:
        return len(self.names)

    def sample_seed(self, index: int) -> int:
        """The seed used when ``__getitem__`` gets a plain index (see the module docstring)."""
        if self.phase == "train":
            drawn = int(torch.randint(0, _SEED_MASK, (), dtype=torch.int64).item())
            rank = distributed_rank()
            return drawn if rank is None else stable_seed(drawn, "rank", rank)
        return stable_seed(self.seed, self.names[index])

    def __getitem__(self, key: Any) -> dict[str, Any]:
        index, seed = parse_key(key, len(self))
        if seed is None:
            seed = self.sample_seed(index)
        return self.load(index, seed)

    def load(self, index: int, sample_seed: int) -> dict[str, Any]:
        raise NotImplementedError

    def sample_files(self, index: int) -> dict[str, Path]:
        """The image files sample ``index`` reads, by role: ``input`` first, then ``mask`` and/or
        ``target``, in the order ``load()`` reads them (so :meth:`verify` fails like it)."""
        raise NotImplementedError

    def crop_input_size(self, height: int, width: int) -> tuple[int, int]:
        """Input size as the random crop sees it (after any pre-processing such as TIP2018)."""
        return height, width

    def verify(self, decode: bool = False, on_problem: ProblemSink | None = None) -> int:
        """Check every sample's files; return the number of samples checked.

        Each file must be a non-empty regular file with a decodable header, within
        ``RESTORE_MAX_PIXELS``; a ``target`` must be ``scale`` times the input, a ``mask`` the
        input's size, and the input must hold ``crop_size``. Raises the one-line DataError
        ``load()`` would raise. Only headers are read unless ``decode`` (``--check``), which
        decodes every file fully, so a file truncated after its header is caught too. With
        ``on_problem`` every problem is passed to it and checking goes on (``--check`` lists
        them all); without it the first one is raised. Files shared by several samples
        (``repeat``) are read once.
        """
        from restore.data.image_io import read_image_size
        from restore.data.transforms import check_crop_size, check_mask_size, check_pair_size

        sizes: dict[Path, tuple[int, int] | None] = {}

        def size_of(path: Path) -> tuple[int, int] | None:
            if path not in sizes:
                sizes[path] = None
                sizes[path] = _attempt(lambda: read_image_size(path, decode=decode), on_problem)
            return sizes[path]

        for index in range(len(self)):
            files = self.sample_files(index)
            in_path = files["input"]
            in_size = size_of(in_path)
            for role, path in files.items():
                if role not in ("input", "mask", "target"):
                    raise ValueError(f"unknown file role {role!r} (input, mask or target)")
                size = size_of(path) if role != "input" else None
                if in_size is None or size is None:
                    continue
                if role == "mask":
                    _attempt(lambda: check_mask_size(in_size, in_path, size, path), on_problem)
                else:
                    _attempt(lambda: check_pair_size(in_size, in_path, size, path, self.scale), on_problem)
            if self.crop_size is not None and in_size is not None:
                crop = self.crop_size
                _attempt(lambda: check_crop_size(*self.crop_input_size(*in_size), crop, in_path), on_problem)
        return len(self)


class FolderDataset(SeededDataset):
    """Base class of the datasets that read image files from folders.

    It takes the options they all share (checked here once, one-line ConfigError) and names
    their samples (:meth:`name_samples`); subclasses list their files, cut them with
    :meth:`first_images` and implement :meth:`load` and :meth:`sample_files`.
    ``repeat = r > 1`` uses every file r times, named ``<name>#<k>`` for k = 0..r-1 in
    repeat-major order (all files for k = 0, then k = 1, ...).
    """

    def __init__(
        self,
        phase: str,
        seed: int,
        crop_size: int | None,
        flip_rotate: bool,
        channels: int,
        max_images: int | None,
        repeat: int = 1,
    ) -> None:
        super().__init__(phase, seed)
        check_common(crop_size, channels, max_images)
        if repeat < 1:
            raise ConfigError(f"repeat must be >= 1, got {repeat}")
        self.crop_size, self.flip_rotate, self.channels = crop_size, flip_rotate, channels
        self.max_images, self.repeat = max_images, repeat

    def first_images(self, items: list[T]) -> list[T]:
        """``items`` (files or tuples of files, in sorted order) cut to ``max_images``."""
        return items if self.max_images is None else items[: self.max_images]

    def name_samples(self, inputs: Sequence[Path], root: Path) -> None:
        """Set ``names``: each input's path relative to ``root`` without extension, unique, then the
        ``#<k>`` copies when ``repeat > 1``."""
        from restore.data.pairing import strip_image_ext

        base = [strip_image_ext(p.relative_to(root).as_posix()) for p in inputs]
        check_unique_names(base, inputs)
        self.names = base if self.repeat == 1 else [f"{n}#{k}" for k in range(self.repeat) for n in base]


def _attempt(check: Callable[[], T], on_problem: ProblemSink | None) -> T | None:
    """``check()``; a RestoreError goes to ``on_problem`` (None returned) or, without one, is raised."""
    try:
        return check()
    except RestoreError as exc:
        if on_problem is None:
            raise
        on_problem(exc)
        return None


def geometry(
    arrays: list[np.ndarray],
    paths: Sequence[object],
    generator: torch.Generator,
    crop_size: int | None,
    flip_rotate: bool,
    scales: Sequence[int] | None = None,
) -> list[np.ndarray]:
    """Random crop (if ``crop_size``) then random dihedral (if ``flip_rotate``), same for all."""
    from restore.data.transforms import random_crop, random_dihedral

    if crop_size is not None:
        arrays = random_crop(arrays, crop_size, generator, scales, path=paths[0])
    if flip_rotate:
        arrays = random_dihedral(arrays, generator)
    return arrays
