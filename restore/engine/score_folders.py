"""``restore score`` helpers: find result/ground-truth/mask triples in any standard layout, and
write the score files safely.

Why here: the datasets pair files by ``same_name``, ``sorted``, ``replace`` or ``regex`` (see
:mod:`restore.data.pairing`); scoring must pair ``restore test``'s saved images (named after the
*inputs*) with the ground truth by the same rules, or it cannot read the layouts of
``datasets/README.md`` directly. Rain100L keeps ``rainy/`` inside the ground-truth folder, so
listing can be non-recursive or filtered by a glob; TIP2018 scores the ground truth after the
same crop-and-resize the dataset applied (``gt_preprocess='tip2018'``).

Score files (``--csv``, ``--json``) are written atomically (no empty or truncated file on a full
disk), never over one of the images being scored, never through a folder; a character device
or pipe (``/dev/stdout``, ``/dev/null``) is written directly.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from restore.errors import DataError, OutputError

Triple = tuple[Path, Path, "Path | None"]


def folder(path: str | os.PathLike[str], what: str) -> Path:
    """An existing folder, else a one-line DataError naming the option."""
    p = Path(path)
    if not p.is_dir():
        raise DataError(f"{what} folder '{p}' not found" if not p.exists() else f"{what} path '{p}' is not a folder")
    return p


def find_triples(
    pred: str | os.PathLike[str],
    gt: str | os.PathLike[str],
    mask: str | os.PathLike[str] | None,
    rule: str,
    replace: Sequence[str] | None = None,
    *,
    recursive: bool = True,
    pred_glob: str | None = None,
    gt_glob: str | None = None,
) -> list[Triple]:
    """``[(result, ground truth, mask or None), ...]`` in result order.

    Results pair with the ground truth by ``rule`` (+ ``replace``: ``[from, to]`` for replace and
    regex, applied to the result's file name); masks pair with the *results* (both carry the
    input's name) by the same name, or by position when ``rule`` is ``sorted``.
    """
    from restore.data.image_io import filter_names, list_images
    from restore.data.pairing import Pairing, pair_files

    pairing = Pairing.from_options(rule, list(replace) if replace is not None else None, "--pair-replace")
    pred_dir, gt_dir = folder(pred, "--pred"), folder(gt, "--gt")
    preds = filter_names(list_images(pred_dir, recursive), pred_glob, pred_dir, "--pred-glob")
    gts = filter_names(list_images(gt_dir, recursive), gt_glob, gt_dir, "--gt-glob")
    pairs = pair_files(preds, pred_dir, gts, gt_dir, pairing, roles=("result", "ground-truth"))
    if mask is None:
        return [(p, g, None) for p, g in pairs]
    mask_dir = folder(mask, "--mask")
    mask_rule = Pairing.from_options("sorted" if rule == "sorted" else "same_name", None)
    used = [p for p, _ in pairs]
    masks = dict(pair_files(used, pred_dir, list_images(mask_dir, recursive), mask_dir, mask_rule,
                            roles=("result", "mask")))
    return [(p, g, masks[p]) for p, g in pairs]


def load_target(path: Path, channels: int, preprocess: str | None = None) -> np.ndarray:
    """A ground-truth image ``(H, W, C)`` as stored, after the dataset's pre-processing if any."""
    from restore.data.image_io import read_image, to_channels

    array = to_channels(read_image(path), channels)
    if preprocess == "tip2018":
        from restore.data.transforms import tip2018_preprocess

        (array,) = tip2018_preprocess([array], [path])
    elif preprocess is not None:
        raise DataError(f"unknown --gt-preprocess {preprocess!r} (known: tip2018)")
    return np.array(array)  # writable, owned: torch.from_numpy warns about read-only views


def size_hint(pred_hw: tuple[int, ...], gt_hw: tuple[int, ...], preprocess: str | None) -> str:
    """Advice for a size mismatch that has a known cause (TIP2018 outputs are 256x256)."""
    from restore.data.transforms import TIP2018_SIZE

    if preprocess is None and tuple(pred_hw) == (TIP2018_SIZE, TIP2018_SIZE) and tuple(gt_hw) != tuple(pred_hw):
        return "; TIP2018 outputs are 256x256 crops: add --gt-preprocess tip2018"
    return ""


def check_outputs(targets: Sequence[tuple[str, str | None]], scored: Iterable[Path]) -> None:
    """Refuse score-file targets that would destroy something, before any scoring is written.

    ``targets``: ``(option, path or None)``. A target must not be a folder, must not be one of
    the ``scored`` images, and two options must not name the same file.
    """
    seen: dict[str, str] = {}
    images = {os.path.realpath(p) for p in scored}
    for option, path in targets:
        if path is None:
            continue
        real = os.path.realpath(path)
        if os.path.isdir(real):
            raise OutputError(f"cannot write {option} '{path}': it is a folder")
        if real in images:
            raise OutputError(f"refusing to write {option} '{path}': it is one of the images being scored")
        if real in seen:
            raise OutputError(f"{seen[real]} and {option} name the same file '{path}'")
        seen[real] = option


def write_output(path: str | os.PathLike[str], text: str) -> Path:
    """Write a score file: atomically for a regular (or new) file, directly to a character device
    or pipe, refused for anything else; every OS error is one line naming ``path``."""
    from restore.utils.files import atomic_write, output_error

    p = Path(path)
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise output_error(p, exc) from None
    if mode is not None and (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
        # /dev/stdout or a pipe: a stream, not a file, so it cannot be renamed over atomically
        try:
            with open(p, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            raise output_error(p, exc) from None
        return p
    if mode is not None and stat.S_ISDIR(mode):
        raise OutputError(f"cannot write '{p}': it is a folder")
    if mode is not None and not stat.S_ISREG(mode):
        raise OutputError(f"refusing to write '{p}': it is not a regular file")
    # through a link to a regular file: replace the file it points to, keep the link
    return atomic_write(os.path.realpath(p) if p.is_symlink() else p, text)


def write_outputs(files: Sequence[tuple[str | os.PathLike[str], str]]) -> list[Path]:
    """:func:`write_output` each ``(path, text)`` in order; when one fails, the files this call
    created before it are removed again, so a failed command leaves no new file behind."""
    created: list[Path] = []
    written: list[Path] = []
    try:
        for path, text in files:
            is_new = not os.path.lexists(path)
            written.append(write_output(path, text))
            if is_new:
                created.append(written[-1])
    except BaseException:
        for p in created:
            try:
                p.unlink()
            except OSError:
                pass
        raise
    return written
