"""The experiment folder of a training run, and everything it logs.

``experiments/<name>/``::

    options.yml            the fully resolved options of the run
    train.log              a copy of the console output
    log.jsonl              one JSON object per logged step or validation ({"iter": ..., ...})
    tensorboard/           TensorBoard events: every logged scalar, sample restorations
    checkpoints/iter_<N>.pth   full training state (the last ``keep_checkpoints``)
    models/best_<set>_<metric>.pth, models/final.pth   weights for test/infer
    .lock                  held by the running process (:class:`restore.utils.folder_lock.FolderLock`)

Only rank 0 writes; the other ranks get a :class:`RunLog` that does nothing. Any of the
artefacts above (but the lock) means the run exists: only ``--resume`` continues it.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import torch

from restore.utils.files import check_inside, output_error

CHECKPOINT_RE = re.compile(r"iter_(\d+)\.pth$")
# What makes a folder "a run": any of these files, or any of these folders with something in it.
ARTEFACT_FILES = ("options.yml", "train.log", "log.jsonl")
ARTEFACT_FOLDERS = ("checkpoints", "models", "tensorboard")


class ExperimentDir:
    """The paths of ``<experiments_root>/<name>/`` and what is already in it."""

    def __init__(self, root: str | Path, name: str) -> None:
        self.root = Path(root) / name
        self.checkpoints = self.root / "checkpoints"
        self.models = self.root / "models"
        self.options = self.root / "options.yml"
        self.jsonl = self.root / "log.jsonl"
        self.console = self.root / "train.log"
        self.tensorboard = self.root / "tensorboard"

    def create(self) -> None:
        """Make the run's folders (each checked to resolve inside the run folder)."""
        for folder in (self.root, self.checkpoints, self.models):
            if folder != self.root:
                check_inside(folder, self.root)
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise output_error(folder, exc, "create") from None

    def artefacts(self) -> list[str]:
        """The run artefacts already here (``options.yml``, ``models/``, ...): non-empty means
        "this run exists", which only ``--resume`` may continue. A folder holding nothing but
        the lock file (left by a run that failed before writing) is not a run."""
        found = [name for name in ARTEFACT_FILES if (self.root / name).exists()]
        for name in ARTEFACT_FOLDERS:
            folder = self.root / name
            if folder.is_symlink() or (folder.is_dir() and any(folder.iterdir())) or folder.is_file():
                found.append(name + "/")
        return found

    def weights_files(self) -> list[Path]:
        """``models/*.pth`` (final and best weights), sorted."""
        return sorted(self.models.glob("*.pth")) if self.models.is_dir() else []

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
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise output_error(path, exc, "delete") from None


class RunLog:
    """Console (+ train.log copy), JSONL and TensorBoard, on rank 0 only.

    Until :meth:`attach` it only prints, and keeps the lines for train.log: nothing is written
    into the run folder before the run has claimed it and every check has passed. Appends are
    unbuffered writes; a failed one (disk full) is cut back to the previous end of the file and
    reported as one line naming the file.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._pending: list[str] = []
        self._console: int | None = None
        self._jsonl: int | None = None
        self._paths: dict[int, Path] = {}
        self._tb: Any = None

    def attach(self, exp: ExperimentDir, tensorboard: bool = True) -> None:
        """Open the run's log files (appending) and write the lines kept so far."""
        if not self.enabled:
            return
        self._console = self._open(exp.console, exp.root)
        self._jsonl = self._open(exp.jsonl, exp.root)
        for line in self._pending:
            self._append(self._console, line)
        self._pending = []
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            check_inside(exp.tensorboard, exp.root)
            try:
                self._tb = SummaryWriter(str(exp.tensorboard))
            except OSError as exc:
                raise output_error(exp.tensorboard, exc, "create") from None

    def _open(self, path: Path, root: Path) -> int:
        # train.log and log.jsonl grow a line at a time, so they stay appends (O_APPEND) rather than
        # going through atomic_write: rewriting the whole log per line would cost O(n^2), and a
        # failed append is cut back to the last whole line (_append). TensorBoard's event files are
        # appended by its own SummaryWriter in the same way.
        check_inside(path, root)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as exc:
            raise output_error(path, exc, "open") from None
        self._paths[fd] = path
        return fd

    def _append(self, fd: int, text: str) -> None:
        data = text.encode("utf-8")
        try:
            size = os.fstat(fd).st_size
        except OSError as exc:
            raise output_error(self._paths[fd], exc) from None
        try:
            while data:
                data = data[os.write(fd, data):]
        except OSError as exc:
            try:
                os.ftruncate(fd, size)  # no half line at the end of the log
            except OSError:
                pass
            raise output_error(self._paths[fd], exc) from None

    def info(self, message: str) -> None:
        """Print a line (rank 0) and copy it to train.log with a timestamp."""
        if not self.enabled:
            return
        from tqdm import tqdm

        tqdm.write(message, file=sys.stdout)
        sys.stdout.flush()  # redirected to a file, lines must still appear as they happen
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n"
        if self._console is None:
            self._pending.append(line)
        else:
            self._append(self._console, line)

    def scalars(self, iteration: int, values: dict[str, float]) -> None:
        """One JSONL record, and each value as a TensorBoard scalar."""
        if not self.enabled or self._jsonl is None:
            return
        record = {"iter": iteration, "time": round(time.time(), 3), **values}
        self._append(self._jsonl, json.dumps(record, allow_nan=True) + "\n")
        if self._tb is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)):
                    self._tb.add_scalar(key, value, iteration)

    def images(self, iteration: int, tag: str, image: torch.Tensor) -> None:
        """A (3, H, W) float image in [0, 1] (e.g. input | output | target side by side)."""
        if self.enabled and self._tb is not None:
            self._tb.add_image(tag, image.clamp(0, 1), iteration)

    def close(self) -> None:
        for fd in (self._console, self._jsonl):
            if fd is not None:
                os.close(fd)
        if self._tb is not None:
            try:
                self._tb.close()
            except OSError:
                pass
        self._console = self._jsonl = self._tb = None
        self._paths = {}
