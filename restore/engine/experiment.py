"""The experiment folder of a training run, and everything it logs.

``experiments/<name>/``::

    options.yml            the fully resolved options of the run
    train.log              a copy of the console output
    log.jsonl              one JSON object per logged step or validation ({"iter": ..., ...})
    tensorboard/           TensorBoard events: every logged scalar, sample restorations
    checkpoints/iter_<N>.pth   full training state (the last ``keep_checkpoints``)
    models/best_<set>_<metric>.pth, models/final.pth   weights for test/infer

Only rank 0 writes; the other ranks get a :class:`RunLog` that does nothing.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import torch

CHECKPOINT_RE = re.compile(r"iter_(\d+)\.pth$")


class ExperimentDir:
    def __init__(self, root: str | Path, name: str) -> None:
        self.root = Path(root) / name
        self.checkpoints = self.root / "checkpoints"
        self.models = self.root / "models"
        self.options = self.root / "options.yml"
        self.jsonl = self.root / "log.jsonl"
        self.console = self.root / "train.log"
        self.tensorboard = self.root / "tensorboard"

    def create(self) -> None:
        for folder in (self.root, self.checkpoints, self.models):
            folder.mkdir(parents=True, exist_ok=True)

    def checkpoint_path(self, iteration: int) -> Path:
        return self.checkpoints / f"iter_{iteration:08d}.pth"

    def list_checkpoints(self) -> list[tuple[int, Path]]:
        """``(iteration, path)`` of every complete checkpoint, oldest first."""
        if not self.checkpoints.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.checkpoints.iterdir() if (m := CHECKPOINT_RE.match(p.name))]
        return sorted(found)

    def latest_checkpoint(self) -> Path | None:
        found = self.list_checkpoints()
        return found[-1][1] if found else None

    def prune(self, keep: int) -> None:
        """Delete all but the ``keep`` most recent checkpoints."""
        for _, path in self.list_checkpoints()[:-keep] if keep > 0 else []:
            path.unlink(missing_ok=True)


class RunLog:
    """Console (+ train.log copy), JSONL and TensorBoard, on rank 0 only."""

    def __init__(self, exp: ExperimentDir | None, enabled: bool, tensorboard: bool = True) -> None:
        self.enabled = enabled and exp is not None
        self._console: TextIO | None = None
        self._jsonl: TextIO | None = None
        self._tb: Any = None
        if self.enabled:
            assert exp is not None
            self._console = open(exp.console, "a", encoding="utf-8")
            self._jsonl = open(exp.jsonl, "a", encoding="utf-8")
            if tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(exp.tensorboard))

    def info(self, message: str) -> None:
        """Print a line (rank 0) and copy it to train.log with a timestamp."""
        if not self.enabled:
            return
        from tqdm import tqdm

        tqdm.write(message, file=sys.stdout)
        assert self._console is not None
        self._console.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
        self._console.flush()

    def scalars(self, iteration: int, values: dict[str, float]) -> None:
        """One JSONL record, and each value as a TensorBoard scalar."""
        if not self.enabled:
            return
        assert self._jsonl is not None
        record = {"iter": iteration, "time": round(time.time(), 3), **values}
        self._jsonl.write(json.dumps(record, allow_nan=True) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)):
                    self._tb.add_scalar(key, value, iteration)

    def images(self, iteration: int, tag: str, image: torch.Tensor) -> None:
        """A (3, H, W) float image in [0, 1] (e.g. input | output | target side by side)."""
        if self.enabled and self._tb is not None:
            self._tb.add_image(tag, image.clamp(0, 1), iteration)

    def close(self) -> None:
        for handle in (self._console, self._jsonl):
            if handle is not None:
                handle.close()
        if self._tb is not None:
            self._tb.close()
        self._console = self._jsonl = self._tb = None
