"""Fault injection for tests: OS errors at a chosen write, and read-only folders.

Why: a full disk or a read-only file system cannot be had on demand, and tests run as root,
where ``chmod`` stops nothing. These context managers patch the few OS entry points a write
goes through, for paths under one folder only, so a test can run the real CLI in-process
(``restore.cli.main.main([...])``) and watch it meet the fault.

* :func:`failing_writes` -- the N-th data write under a folder (and, by default, every later
  one: a full disk stays full) raises ``OSError(ENOSPC)`` (or any errno). Counted: writes to
  handles from ``os.fdopen`` (``atomic_write``) and from ``open()``/``Path.open()`` in a
  writing mode, and ``os.write``.
* :func:`read_only` -- creating, opening for writing, renaming or deleting anything under a
  folder raises ``OSError(EROFS)`` (or any errno), as on a read-only mount.

Linux only (file descriptors are named through ``/proc/self/fd``).
"""

from __future__ import annotations

import builtins
import errno as errnos
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _under(path: Any, folder: Path) -> bool:
    try:
        resolved = Path(os.fsdecode(path)).resolve()
    except (TypeError, ValueError, OSError):
        return False
    return resolved == folder or folder in resolved.parents


def _fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


@dataclass
class WriteFaults:
    """What :func:`failing_writes` saw: writes counted under the folder, and the failed path."""

    folder: Path
    at: int
    error: int
    sticky: bool
    count: int = 0
    failed: list[str] = field(default_factory=list)

    def tick(self, path: str) -> None:
        if not _under(path, self.folder):
            return
        self.count += 1
        if self.count == self.at or (self.sticky and self.count > self.at):
            self.failed.append(path)
            raise OSError(self.error, os.strerror(self.error), path)


class _Handle:
    """A file object whose writes go through the fault plan first."""

    def __init__(self, inner: Any, path: str, plan: WriteFaults) -> None:
        self._inner, self._path, self._plan = inner, path, plan

    def write(self, data: Any) -> int:
        self._plan.tick(self._path)
        return self._inner.write(data)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __enter__(self) -> _Handle:
        self._inner.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._inner.__exit__(*exc)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._inner)


def _writing(mode: str) -> bool:
    return any(c in mode for c in "wax+")


@contextmanager
def failing_writes(
    folder: str | os.PathLike[str], at: int = 1, error: int = errnos.ENOSPC, sticky: bool = True
) -> Iterator[WriteFaults]:
    """Make the ``at``-th data write under ``folder`` (and later ones when ``sticky``) raise
    ``OSError(error)``; yields the :class:`WriteFaults` record."""
    plan = WriteFaults(Path(folder).resolve(), at, error, sticky)
    real_fdopen, real_write, real_open, real_io_open = os.fdopen, os.write, builtins.open, io.open

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        handle = real_fdopen(fd, *args, **kwargs)
        mode = args[0] if args else kwargs.get("mode", "r")
        return _Handle(handle, _fd_path(fd), plan) if _writing(mode) else handle

    def write(fd: int, data: Any) -> int:
        plan.tick(_fd_path(fd))
        return real_write(fd, data)

    def make_open(real: Any) -> Any:
        def opener(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            handle = real(file, mode, *args, **kwargs)
            if _writing(mode) and not isinstance(file, int):
                return _Handle(handle, os.fsdecode(file), plan)
            return handle

        return opener

    os.fdopen, os.write = fdopen, write
    builtins.open, io.open = make_open(real_open), make_open(real_io_open)
    try:
        yield plan
    finally:
        os.fdopen, os.write, builtins.open, io.open = real_fdopen, real_write, real_open, real_io_open


@contextmanager
def read_only(folder: str | os.PathLike[str], error: int = errnos.EROFS) -> Iterator[list[str]]:
    """Refuse every change under ``folder`` with ``OSError(error)``; yields the refused paths."""
    root = Path(folder).resolve()
    refused: list[str] = []
    real = {name: getattr(os, name) for name in ("mkdir", "open", "replace", "rename", "unlink", "rmdir")}
    real_open, real_io_open = builtins.open, io.open

    def refuse(path: Any) -> None:
        if _under(path, root):
            refused.append(os.fsdecode(path))
            raise OSError(error, os.strerror(error), os.fsdecode(path))

    def guarded(name: str) -> Any:
        def call(path: Any, *args: Any, **kwargs: Any) -> Any:
            if name != "open" or (args and args[0] & _WRITE_FLAGS) or kwargs.get("flags", 0) & _WRITE_FLAGS:
                refuse(path)
            if name in ("replace", "rename") and args:
                refuse(args[0])
            return real[name](path, *args, **kwargs)

        return call

    def make_open(real_fn: Any) -> Any:
        def opener(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            if _writing(mode) and not isinstance(file, int):
                refuse(file)
            return real_fn(file, mode, *args, **kwargs)

        return opener

    for name in real:
        setattr(os, name, guarded(name))
    builtins.open, io.open = make_open(real_open), make_open(real_io_open)
    try:
        yield refused
    finally:
        for name, fn in real.items():
            setattr(os, name, fn)
        builtins.open, io.open = real_open, real_io_open
