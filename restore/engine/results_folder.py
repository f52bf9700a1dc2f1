"""The results folder of ``restore test``: locked, staged, and swapped into place at the end.

Why: a run that fails half-way (a file that decodes badly mid-set, Ctrl-C, a full disk) must not
leave a half-written ``results/<name>/`` behind, nor destroy the previous run's results; and two
runs with the same name must not write into one folder. So:

* the folder is locked for the whole run (:class:`~restore.utils.folder_lock.FolderLock`);
* everything is written into ``<results>/.partial/`` first; every path is resolved and refused
  unless it lies inside that staging folder;
* :meth:`ResultsFolder.commit` moves each staged entry (set folders, top-level files) into place,
  the previous entry of the same name aside into ``.old/`` first, and then deletes ``.old/``;
* on failure the staging folder is deleted, and a results folder this run created is removed
  again, so nothing is left where nothing was.

Entries are moved, never followed: a link planted at ``<results>/<set>`` is moved aside (and
removed), never written through.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from restore.errors import OutputError
from restore.utils.files import atomic_write, check_inside, output_error, plain_name_problem
from restore.utils.folder_lock import LOCK_NAME, FolderLock

STAGING = ".partial"
ASIDE = ".old"
#: top-level files of a results folder; no set may carry one of these names
TOP_LEVEL = ("summary.md", "results.json", "report.html", "table.md", "table.csv", "table.tex")


def check_set_name(name: str) -> str:
    """A set name must be a plain folder name that is none of the top-level files (one line)."""
    problem = plain_name_problem(name)
    if problem is None and name in TOP_LEVEL:
        problem = f"is the name of a results file ({', '.join(TOP_LEVEL)})"
    if problem is not None:
        raise OutputError(f"test set {name!r} cannot name a results folder: it {problem}")
    return name


class ResultsFolder:
    """``with ResultsFolder(root) as folder:`` write with :meth:`write` / :meth:`path`, then
    :meth:`commit`. ``main``: this process owns the folder (rank 0); other ranks only write
    images into the staging folder the main rank prepared."""

    def __init__(self, root: str | os.PathLike[str], main: bool = True) -> None:
        self.root = Path(root)
        self.staging = self.root / STAGING
        self.main = main
        self._lock: FolderLock | None = None
        self._created: Path | None = None  # topmost folder this run created
        self._committed = False

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> ResultsFolder:
        """Lock the folder, remove what a killed run left, and create the staging folder."""
        if self.root.exists() and not self.root.is_dir():
            raise OutputError(f"results folder '{self.root}' is a file, not a folder; move it or choose another name")
        if not self.main:
            return self
        self._created = _topmost_missing(self.root)
        self._lock = FolderLock(self.root, "results").acquire()
        for stale in (self.staging, self.root / ASIDE):
            _remove(stale)
        try:
            self.staging.mkdir()
        except OSError as exc:
            self.close(failed=True)
            raise output_error(self.staging, exc, "create") from None
        return self

    def close(self, failed: bool) -> None:
        """Release the lock; after a failure, delete the staging folder (and a folder we created)."""
        if not self.main:
            return
        if failed and not self._committed:
            _remove(self.staging)
            if self._created is not None:
                _remove_if_ours(self.root, self._created)
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> ResultsFolder:
        return self.open()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close(failed=exc is not None)

    # ------------------------------------------------------------------ writing
    def path(self, relative: str | os.PathLike[str]) -> Path:
        """``<staging>/<relative>``, resolved and refused unless strictly inside the staging folder."""
        target = self.staging / relative
        resolved = check_inside(target, self.staging)
        if resolved == self.staging.resolve():
            raise OutputError(f"refusing to write '{target}': it is the results folder itself")
        return target

    def write(self, relative: str | os.PathLike[str], text: str) -> Path:
        """Write a staged file atomically (one-line error on any OS failure)."""
        return atomic_write(self.path(relative), text, inside=self.staging)

    def final(self, relative: str | os.PathLike[str]) -> Path:
        """Where a staged entry ends up after :meth:`commit`."""
        return self.root / relative

    def commit(self, entries: Iterable[str]) -> None:
        """Move the staged top-level ``entries`` into place; the previous ones are deleted after."""
        aside = self.root / ASIDE
        moved: list[tuple[Path, Path]] = []
        try:
            for name in entries:
                if name in ("", ".", "..") or "/" in name or os.sep in name:
                    raise ValueError(f"not a top-level entry name: {name!r}")  # caller bug
                staged, final = self.staging / name, self.root / name
                if final.is_symlink() or final.exists():
                    aside.mkdir(exist_ok=True)
                    os.replace(final, aside / name)
                os.replace(staged, final)
                moved.append((staged, final))
        except OSError as exc:
            raise OutputError(
                f"cannot move the results into '{self.root}': {exc.strerror or exc}; the new results are in "
                f"'{self.staging}', the previous ones in '{aside}'"
            ) from None
        self._committed = True
        _remove(aside)
        _remove(self.staging)


def _topmost_missing(path: Path) -> Path | None:
    """The highest ancestor of ``path`` (or ``path``) that does not exist yet."""
    missing = None
    for p in (path, *path.parents):
        if p.exists() or p.is_symlink():
            break
        missing = p
    return missing


def _remove(path: Path) -> None:
    """Delete a file, link or folder tree without following links; errors are ignored."""
    try:
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
    except OSError:
        pass


def _remove_if_ours(root: Path, created: Path) -> None:
    """Remove ``root`` (holding only the lock file) and its empty parents up to ``created``."""
    try:
        if {p.name for p in root.iterdir()} <= {LOCK_NAME}:
            _remove(root / LOCK_NAME)
        for p in (root, *root.parents):
            p.rmdir()
            if p == created:
                break
    except OSError:
        pass
