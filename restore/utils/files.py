"""Every file restore writes goes through here: atomic, inside its folder, one-line errors.

Why one helper: a run killed mid-write (Ctrl-C, SIGKILL, a full disk) must never leave a
truncated checkpoint, image or CSV where a good one was, and an OS error on the output side
(disk full, read-only folder, a name too long) must reach the user as one line naming the
path, not as a traceback from deep inside ``torch.save`` or ``cv2``.

* :func:`atomic_write` writes to a temporary file ``.<name>.<random>.tmp`` in the destination
  folder, flushes and fsyncs it, then renames it over the destination. On any failure the
  temporary file is removed and the destination is left as it was.
* :func:`check_inside` resolves a path (following links) and refuses it when it does not lie
  under the folder it belongs to.
* :func:`check_plain_name` is the load-time rule for every option value that becomes a folder
  or file name (run names, data set names).
* :func:`remove_stale_temporaries` deletes the temporaries that a killed write left behind.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from restore.errors import OutputError, RestoreError

TMP_SUFFIX = ".tmp"
# 255 bytes is the file-name limit of every common Linux/macOS file system; a name that
# becomes a folder also gets suffixes ("best_<set>_<metric>.pth"), so keep well under it.
MAX_NAME_BYTES = 120
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_REASONS = {
    errno.ENOSPC: "no space left on the device (disk full)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENAMETOOLONG: "file name too long",
    errno.EISDIR: "it is a folder",
    errno.ENOTDIR: "a parent is not a folder",
    errno.ENOENT: "no such file or folder",
    errno.EEXIST: "it already exists",
    errno.EIO: "input/output error",
}


def os_error_reason(exc: OSError) -> str:
    """A short human reason for ``exc`` ("disk full", "permission denied", ...)."""
    if exc.errno in _REASONS:
        return _REASONS[exc.errno]
    return exc.strerror or type(exc).__name__


def output_error(path: str | os.PathLike[str], exc: OSError, what: str = "write") -> OutputError:
    """The one-line error for an OS failure while writing ``path``."""
    return OutputError(f"cannot {what} '{path}': {os_error_reason(exc)}")


def _umask() -> int:
    """The process umask, read from ``/proc`` where possible (``os.umask`` must set it to read it)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def atomic_write(
    path: str | os.PathLike[str],
    data: bytes | str | Callable[[IO[bytes]], None],
    *,
    fsync: bool = True,
    inside: str | os.PathLike[str] | None = None,
) -> Path:
    """Write ``data`` to ``path`` atomically and return the path.

    ``data`` is bytes, text (UTF-8), or a function that writes to the open binary handle
    (``lambda fh: torch.save(obj, fh)``). Parent folders are created. The file gets the
    permissions a plain ``open()`` would give (``0o666`` minus the umask). ``inside``, when
    given, is the folder the resolved destination must lie in (:func:`check_inside`).
    Raises :class:`~restore.errors.OutputError` (one line naming ``path``) on any OS error,
    leaving no temporary file behind.
    """
    path = Path(path)
    if inside is not None:
        check_inside(path, inside)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise output_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, str):
                handle.write(data.encode("utf-8"))
            elif isinstance(data, (bytes, bytearray, memoryview)):
                handle.write(data)
            else:
                data(handle)
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        if path.is_dir() and not path.is_symlink():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise output_error(path, exc) from None
        if isinstance(exc, RuntimeError) and _is_disk_full(exc):  # torch.save wraps ENOSPC
            raise OutputError(f"cannot write '{path}': {_REASONS[errno.ENOSPC]}") from None
        raise
    return path


def _is_disk_full(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "no space left" in text or "file write failed" in text or "unexpected pos" in text


def check_inside(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> Path:
    """``path`` resolved (links followed); an :class:`OutputError` unless it lies under ``root``.

    Why: a name from an option file, or a link planted in an output folder, must never send
    a write elsewhere.
    """
    resolved = Path(path).resolve()
    base = Path(root).resolve()
    if resolved != base and base not in resolved.parents:
        raise OutputError(f"refusing to write '{path}': it resolves to '{resolved}', outside '{root}'")
    return resolved


def plain_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a folder/file name, or None when it can.

    A plain name is a non-empty string without path separators, control characters, a
    leading dot, or more than :data:`MAX_NAME_BYTES` bytes.
    """
    if not isinstance(name, str) or not name.strip():
        return "must be a non-empty string"
    if "/" in name or "\\" in name:
        return "must be a plain name, without '/' or '\\'"
    if name.startswith("."):
        return "must not start with '.'"
    if _CONTROL.search(name):
        return "must not contain control characters"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return f"is {len(name.encode('utf-8'))} bytes long (at most {MAX_NAME_BYTES})"
    return None


def check_plain_name(name: object, where: str) -> str:
    """``name`` if it is a plain folder name, else a one-line :class:`RestoreError` naming ``where``."""
    problem = plain_name_problem(name)
    if problem is not None:
        raise RestoreError(f"{where}: {name!r} {problem}")
    assert isinstance(name, str)
    return name


def remove_stale_temporaries(folder: str | os.PathLike[str], recursive: bool = True) -> int:
    """Delete ``.<name>.<random>.tmp`` files that killed writes left in ``folder``; return the count.

    Call it only on a folder this process owns exclusively (a locked run folder), since a
    concurrent writer's temporary file looks the same.
    """
    root = Path(folder)
    if not root.is_dir():
        return 0
    pattern = "**/.*" + TMP_SUFFIX if recursive else ".*" + TMP_SUFFIX
    removed = 0
    for tmp in root.glob(pattern):
        if tmp.is_file() and not tmp.is_symlink():
            try:
                tmp.unlink()
                removed += 1
            except OSError:
                pass
    return removed
