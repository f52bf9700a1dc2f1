"""DDA's training classes: a pool of scored patches, split by score quantiles, drawn per class.

DDA (shared/specs/dda.md §4) scores its training patches with the moiré prior, splits them into
as many classes as the supernet has widths by the quantiles of the scores (terciles for three),
and draws a batch from every class at every iteration. Here:

* the **pool** is ``patches`` training samples, the keys ``(j mod N, stable_seed("dda-pool", j))``
  of the training set (N images): each key is one fixed patch (crop, flips and degradation are a
  pure function of the key), so a patch keeps its score and its class for the whole run;
* :func:`quantile_boundaries` gives the class boundaries (numpy's linear-interpolation
  quantiles at ``k / n``), :func:`classify` the class of a score (the number of boundaries at
  or below it);
* :class:`ClassBatches` hands the trainer's DataLoader the keys of each micro-batch:
  ``per_class`` keys of class 0, then of class 1, ... Each class is walked in epochs of its own
  (a permutation per epoch from ``(seed, class, epoch)``), and the ``i``-th batch depends on
  ``i`` alone, so a resumed run continues the same stream;
* :class:`ClassCache` is the file ``dda_classes.json`` of the run folder holding the scores and
  boundaries, with a fingerprint of the data set, score and pool size; a resumed run (or a
  rerun on the same data) reads it instead of scoring again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from restore.data.base import stable_seed
from restore.errors import DataError
from restore.utils.files import atomic_write

FORMAT = "restore-dda-classes-v1"
FILE_NAME = "dda_classes.json"
Key = tuple[int, int]


def pool_keys(n_images: int, patches: int) -> list[Key]:
    """The ``patches`` training keys of the pool, every image in turn (see the module docstring)."""
    return [(j % n_images, stable_seed("dda-pool", j)) for j in range(patches)]


def quantile_boundaries(scores: Sequence[float], n_classes: int) -> list[float]:
    """The ``n_classes - 1`` score boundaries: the ``k / n_classes`` quantiles (linear interpolation)."""
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    if not len(scores):
        raise ValueError("no scores")
    q = [k / n_classes for k in range(1, n_classes)]
    return [float(v) for v in np.quantile(np.asarray(scores, dtype=np.float64), q)] if q else []


def classify(scores: Sequence[float] | np.ndarray, boundaries: Sequence[float]) -> np.ndarray:
    """Class of every score: how many boundaries are <= it (0 = lowest scores)."""
    return np.searchsorted(np.asarray(boundaries, dtype=np.float64), np.asarray(scores, dtype=np.float64),
                           side="right").astype(np.int64)


@dataclass
class ScoredPool:
    """The pool's keys, their scores, the boundaries and the class of every key."""

    keys: list[Key]
    scores: list[float]
    boundaries: list[float]

    @property
    def classes(self) -> list[list[Key]]:
        labels = classify(self.scores, self.boundaries)
        return [[k for k, c in zip(self.keys, labels) if c == cls] for cls in range(len(self.boundaries) + 1)]

    def check(self, widths: Sequence[float]) -> None:
        """A class without patches cannot train its width: one line saying why."""
        for cls, members in enumerate(self.classes):
            if not members:
                raise DataError(
                    f"train.step 'dda': no training patch falls in class {cls} (width {widths[cls]}): the "
                    f"{len(self.scores)} patch scores have boundaries {self.boundaries}, so too many are tied; "
                    "use more patches or another score"
                )


class ClassCache:
    """``<run>/dda_classes.json``: a scored pool and the fingerprint it belongs to."""

    def __init__(self, run_folder: Path) -> None:
        self.path = Path(run_folder) / FILE_NAME
        self.root = Path(run_folder)

    @staticmethod
    def fingerprint(dataset: Any, names: Sequence[str], score: str, patches: int, n_classes: int) -> str:
        """SHA-256 of what the pool depends on: the dataset section, its sample names, the score,
        the pool size and the number of classes."""
        text = json.dumps({"dataset": dataset, "names": list(names), "score": score, "patches": patches,
                           "classes": n_classes}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def read(self, fingerprint: str) -> ScoredPool | None:
        """The cached pool when the file exists and matches ``fingerprint``; None otherwise."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("fingerprint") != fingerprint:
            return None
        try:
            keys = [(int(i), int(s)) for i, s in data["keys"]]
            return ScoredPool(keys, [float(v) for v in data["scores"]], [float(b) for b in data["boundaries"]])
        except (KeyError, TypeError, ValueError):
            return None

    def write(self, fingerprint: str, pool: ScoredPool, score: str, widths: Sequence[float]) -> Path:
        """Write the pool atomically (inside the run folder)."""
        sizes = [len(c) for c in pool.classes]
        data = {"format": FORMAT, "fingerprint": fingerprint, "score": score, "widths": list(widths),
                "boundaries": pool.boundaries, "class_sizes": sizes,
                "keys": [list(k) for k in pool.keys], "scores": pool.scores}
        return atomic_write(self.path, json.dumps(data) + "\n", inside=self.root)


class ClassBatches:
    """Endless key lists for the trainer's DataLoader: ``per_class`` keys of every class in turn.

    ``start``: samples of this rank's stream already trained (a multiple of ``n * per_class``).
    Ranks draw disjoint shares of every class epoch (as the trainer's own sampler does).
    """

    def __init__(self, classes: list[list[Key]], per_class: int, seed: int, rank: int = 0, world_size: int = 1,
                 start: int = 0) -> None:
        if per_class < 1 or any(not c for c in classes):
            raise ValueError("every class needs patches and per_class must be >= 1")
        self.classes, self.per_class, self.seed = classes, per_class, int(seed)
        self.rank, self.world_size = rank, world_size
        per_iteration = per_class * len(classes)
        if start % per_iteration:
            raise ValueError(f"start {start} is not a multiple of the {per_iteration} samples of one batch")
        self.first = start // per_iteration
        self._epochs: dict[int, tuple[int, list[int]]] = {}

    def _order(self, cls: int, epoch: int) -> list[int]:
        cached = self._epochs.get(cls)
        if cached is None or cached[0] != epoch:
            n = len(self.classes[cls])
            g = torch.Generator()
            g.manual_seed(stable_seed(self.seed, "dda-class", cls, epoch))
            per_rank = -(-n // self.world_size)
            total = per_rank * self.world_size
            perm = torch.randperm(n, generator=g).tolist()
            perm = (perm * (total // n + 1))[:total]
            cached = (epoch, perm[self.rank :: self.world_size])
            self._epochs[cls] = cached
        return cached[1]

    def key(self, cls: int, position: int) -> Key:
        """This rank's ``position``-th draw from class ``cls``."""
        per_rank = -(-len(self.classes[cls]) // self.world_size)
        epoch, offset = divmod(position, per_rank)
        return self.classes[cls][self._order(cls, epoch)[offset]]

    def batch(self, i: int) -> list[Key]:
        """The keys of micro-batch ``i``: class 0's, then class 1's, ..."""
        return [self.key(c, i * self.per_class + j) for c in range(len(self.classes)) for j in range(self.per_class)]

    def __iter__(self) -> Iterator[list[Key]]:
        i = self.first
        while True:
            yield self.batch(i)
            i += 1

    def __len__(self) -> int:  # endless; DataLoader only asks for progress hints
        return 2**62
