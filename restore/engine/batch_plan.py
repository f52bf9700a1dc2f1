"""Where batch-restore reads and writes: the job list, and the rules that keep writes safe.

Why its own module: ``restore infer --overwrite`` replaces files, so a wrong target loses
data. The rules, each checked on *resolved* paths (links followed):

* the output folder is not the input or mask folder and does not lie inside either (a
  one-line error for the whole run, before anything is read);
* every single target is checked again right before it is written
  (:class:`TargetGuard`): it must resolve inside the output folder and must not resolve onto
  a file the run reads or into a folder it reads from. A link planted inside the output
  folder (``out/sub -> ../in``) would otherwise send ``out/sub/a.png`` onto ``in/a.png``.
  Such a target is refused with one line; the run goes on with the others;
* one run at a time per output folder (:func:`output_lock`, an ``flock`` on the folder
  itself, so no lock file appears among the results), which makes it safe to delete the
  temporary files a killed run left there (:func:`remove_stale_image_temporaries`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from restore.data.image_io import IMAGE_EXTENSIONS, list_images
from restore.errors import ConfigError, DataError, OutputError
from restore.utils.files import output_error
from restore.utils.shorten import shorten_list

#: Output formats ``fmt`` may name, and the extension each one writes.
FORMATS: dict[str, str] = {"png": ".png", "jpg": ".jpg", "tif": ".tif", "bmp": ".bmp"}

#: ``atomic_write``'s temporary name for an image: ``.<name>.<ext>.<random>.tmp``.
_IMAGE_TMP = re.compile(
    r"^\.(?P<name>.+(?:" + "|".join(re.escape(e) for e in IMAGE_EXTENSIONS) + r"))\.[^./]+\.tmp$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Job:
    """One image to restore: where it is read, where it goes, and its mask (if any)."""

    source: Path
    target: Path
    mask: Path | None = None


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (both already resolved)."""
    return path == folder or folder in path.parents


def check_output_folder(input_dir: Path, output_dir: Path, what: str = "input") -> None:
    """Refuse an output folder equal to, or inside, a folder the run reads from (links followed)."""
    inp, out = input_dir.resolve(), output_dir.resolve()
    if out == inp:
        raise DataError(f"output folder '{output_dir}' is the {what} folder '{input_dir}'; "
                        "restore infer never writes into its input (choose another --output)")
    if _inside(out, inp):
        raise DataError(f"output folder '{output_dir}' is inside the {what} folder '{input_dir}'; "
                        "restore infer never writes into its input (choose another --output)")


def _mask_index(mask_dir: Path) -> dict[str, list[Path]]:
    """Mask files by relative path without extension (``sub/a``), so any image extension pairs."""
    index: dict[str, list[Path]] = {}
    for path in list_images(mask_dir):
        index.setdefault(path.relative_to(mask_dir).with_suffix("").as_posix(), []).append(path)
    return index


def plan_jobs(input_dir: str | Path, output_dir: str | Path, *, mask_dir: str | Path | None = None,
              fmt: str | None = None) -> list[Job]:
    """Every image under ``input_dir`` with its output path (and mask), in sorted order.

    Raises a one-line DataError for: an output folder that is, or lies inside, a folder the
    run reads; two inputs that would be written to the same output (``a.jpg`` and ``a.png``
    with ``fmt``); inputs without a mask, or with two. Targets that resolve into what the run
    reads are refused one by one at write time (:class:`TargetGuard`).
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if fmt is not None and fmt not in FORMATS:
        raise ConfigError(f"unknown output format {fmt!r} (use {', '.join(FORMATS)})")
    if not input_dir.is_dir():
        raise DataError(f"input folder '{input_dir}' " + ("is not a folder" if input_dir.exists() else "does not exist"))
    check_output_folder(input_dir, output_dir)
    if mask_dir is not None:
        if not Path(mask_dir).is_dir():
            raise DataError(f"mask folder '{mask_dir}' " + ("is not a folder" if Path(mask_dir).exists() else "does not exist"))
        check_output_folder(Path(mask_dir), output_dir, what="mask")
    sources = list_images(input_dir)
    masks = _mask_index(Path(mask_dir)) if mask_dir is not None else None

    jobs: list[Job] = []
    claimed: dict[Path, Path] = {}
    unmasked: list[Path] = []
    for source in sources:
        rel = source.relative_to(input_dir)
        target = output_dir / (rel.with_suffix(FORMATS[fmt]) if fmt else rel)
        if target in claimed:
            raise DataError(f"inputs '{claimed[target]}' and '{source}' would both be written to '{target}' "
                            "(same name, different extension); restore them separately")
        claimed[target] = source
        mask = None
        if masks is not None:
            found = masks.get(rel.with_suffix("").as_posix(), [])
            if len(found) > 1:
                raise DataError(f"input '{source}' has several masks in '{mask_dir}': "
                                + ", ".join(f"'{p.name}'" for p in found))
            if not found:
                unmasked.append(source)
                continue
            mask = found[0]
        jobs.append(Job(source, target, mask))
    if unmasked:
        first = shorten_list([f"'{u}'" for u in unmasked], 1)
        raise DataError(f"no mask in '{mask_dir}' for input {first} "
                        "(masks are paired by relative path and name, any image extension)")
    return jobs


def _resolve(path: Path) -> Path | None:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a link loop
        return None


class TargetGuard:
    """Says why a target must not be written, from the resolved paths of everything the run reads.

    Protected: every input and mask file, every folder the listing walked to find them, and
    the input and mask folders themselves, all resolved: a link inside the input tree counts
    where it leads.
    """

    def __init__(self, jobs: list[Job], input_dir: str | Path, output_dir: str | Path,
                 mask_dir: str | Path | None = None) -> None:
        self.output_dir = Path(output_dir)
        self.output_root = self.output_dir.resolve()
        self.files: dict[Path, str] = {}
        self.folders: dict[Path, str] = {}
        roots = [(Path(input_dir), "input")] + ([(Path(mask_dir), "mask")] if mask_dir is not None else [])
        for root, what in roots:
            self.folders[root.resolve()] = f"the {what} folder '{root}'"
        for job in jobs:
            for path, what in ((job.source, "input"), (job.mask, "mask")):
                if path is None:
                    continue
                real, folder = _resolve(path), _resolve(path.parent)  # a folder the listing walked
                if real is not None:
                    self.files.setdefault(real, f"the {what} file '{path}'")
                if folder is not None:
                    self.folders.setdefault(folder, f"the {what} folder '{path.parent}'")

    def problem(self, target: Path) -> str | None:
        """One line saying why ``target`` is refused, or None when it may be written."""
        real = _resolve(target)
        if real is None:
            return f"refusing to write '{target}': its path cannot be resolved (a link loop?)"
        hit = self.files.get(real)
        if hit is None:
            hit = next((self.folders[p] for p in (real, *real.parents) if p in self.folders), None)
        if hit is not None:
            return (f"refusing to write '{target}': it resolves to '{real}', into {hit}; "
                    "restore infer never writes into what it reads")
        if not _inside(real, self.output_root):
            return (f"refusing to write '{target}': it resolves to '{real}', outside the output folder "
                    f"'{self.output_dir}' (through a link)")
        return None


@contextmanager
def output_lock(folder: str | Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the output folder itself (created if needed) while the
    run writes; a second ``restore infer`` into the same folder gets one line. The kernel drops
    the lock when the process ends, however it ends. A file system without ``flock`` runs
    unlocked."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        raise output_error(folder, exc, "create") from None
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(f"output folder '{folder}' is in use by another restore infer; wait for it "
                              "to finish or choose another --output") from None
        except (ImportError, OSError):
            pass
        yield
    finally:
        os.close(fd)


def remove_stale_image_temporaries(output_dir: str | Path) -> int:
    """Delete ``.<name>.<ext>.<random>.tmp`` files a killed write left under ``output_dir``.

    Only files matching that pattern, only regular files (not links), only where they lie
    inside the resolved output folder; links to folders are not followed. Call it only while
    holding :func:`output_lock`. Returns the number removed.
    """
    root = Path(output_dir)
    real_root = _resolve(root)
    if real_root is None or not root.is_dir():
        return 0
    removed = 0
    for dirpath, _dirnames, filenames in os.walk(root, followlinks=False):
        for name in filenames:
            if not _IMAGE_TMP.match(name):
                continue
            path = Path(dirpath) / name
            real = _resolve(path)
            if path.is_symlink() or not path.is_file() or real is None or not _inside(real, real_root):
                continue
            try:
                path.unlink()
                removed += 1
            except OSError:
                pass
    return removed
