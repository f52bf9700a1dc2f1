"""Owning a run folder: locked for the whole run, still ours at every save, opened only once
every check has passed.

Why: two ``restore train`` of one name must never interleave their files, and a run whose
folder was deleted (or replaced by another run) mid-way must not write into the new one.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from restore.config import Options, options_to_yaml
from restore.engine import distributed
from restore.engine.experiment import ExperimentDir, RunLog
from restore.errors import OutputError, RestoreError
from restore.utils.files import atomic_write, remove_stale_temporaries
from restore.utils.folder_lock import LOCK_NAME, FolderLock


def _file_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of ``path``, or None when it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class RunFolderLock:
    """``with RunFolderLock(exp, is_main, distributed):`` -- rank 0 holds the run folder's
    :class:`FolderLock`; when it cannot, every rank raises the same one-line error."""

    def __init__(self, exp: ExperimentDir, is_main: bool, is_distributed: bool) -> None:
        self.exp = exp
        self.lock = FolderLock(exp.root, "run") if is_main else None
        self.is_distributed = is_distributed
        self._id: tuple[int, int] | None = None

    def __enter__(self) -> RunFolderLock:
        error: RestoreError | None = None
        if self.lock is not None:
            try:
                if self.exp.root.exists() and not self.exp.root.is_dir():
                    raise OutputError(f"cannot use '{self.exp.root}' as the run folder: it exists and is not a folder")
                self.lock.acquire()
            except RestoreError as exc:
                error = exc
        if self.is_distributed:
            message = distributed.broadcast_object(str(error) if error is not None else None)
            if message and error is None:
                error = RestoreError(str(message))
        if error is not None:
            raise error
        if self.lock is not None:
            self._id = _file_id(self.lock.path)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.lock is not None:
            self.lock.release()
        self._id = None

    def check(self) -> None:
        """Before a save (rank 0): the folder must still be the one locked. Deleted or replaced
        mid-run, another run may hold the new one: write nothing, one line."""
        if self._id is not None and _file_id(self.exp.root / LOCK_NAME) != self._id:
            raise RestoreError(
                f"the run folder '{self.exp.root}' was removed or replaced while this run was using it; "
                "stopping without writing into it"
            )


def open_run_folder(exp: ExperimentDir, options: Options, log: RunLog, tensorboard: bool) -> None:
    """The run's first writes (rank 0, lock held): its folders, stale temporaries of killed
    writes removed, ``options.yml``, and the log files (with the lines printed so far)."""
    exp.create()
    removed = remove_stale_temporaries(exp.root)
    atomic_write(exp.options, options_to_yaml(options), inside=exp.root)
    log.attach(exp, tensorboard)
    if removed:
        log.info(f"removed {removed} temporary file(s) that a killed write had left in {exp.root}")
