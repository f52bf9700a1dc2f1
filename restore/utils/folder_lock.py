"""An exclusive lock on a run or results folder, held for the whole run.

Why: two ``restore train`` (or ``restore test``) with the same name started together would
otherwise interleave their checkpoints, logs and results in one folder. The lock is an
``fcntl.flock`` on ``<folder>/.lock``; the kernel releases it when the process ends, however
it ends, so a crashed run never leaves a stale lock behind. The file also records the pid of
the holder, which the error message names.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from restore.errors import RestoreError
from restore.utils.files import output_error

LOCK_NAME = ".lock"


class FolderLock:
    """``with FolderLock(folder, what="run"):`` -- one holder at a time, across processes.

    Raises a one-line :class:`~restore.errors.RestoreError` when another live process holds
    it. On platforms without ``fcntl`` the lock is a no-op.
    """

    def __init__(self, folder: str | os.PathLike[str], what: str = "run") -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise output_error(self.path, exc, "create") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_pid(fd)
            os.close(fd)
            by = f" by process {holder}" if holder else ""
            raise RestoreError(
                f"the {self.what} folder '{self.folder}' is in use{by}; wait for it to finish "
                "or choose another name (--set name=...)"
            ) from None
        try:
            # written in place, not through atomic_write: the lock lives on this open file, and
            # renaming another file over it would drop the lock the next process checks
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass  # the pid is only for the message; the lock is held even on a full disk
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
