"""Reading, converting and writing images.

Every image enters the project through :func:`read_image` and leaves through
:func:`write_image`, so the conventions live in one place:

* channel order is **RGB** everywhere (OpenCV's BGR is converted on the way in and out);
* arrays are ``(H, W, C)`` ``uint8`` or ``uint16`` as stored (no rescaling), turned upright
  by the file's EXIF Orientation tag when it has one (JPEG, TIFF, PNG ``eXIf``), so that an
  image reads as every viewer displays it;
* an image is refused from its header, before decoding, when it is over ``RESTORE_MAX_PIXELS``
  pixels (default 50 000 000) or is not a regular file (:mod:`restore.data.image_header`);
* tensors are ``float32`` ``(C, H, W)`` in ``[0, 1]``: 8-bit values are divided by 255 and
  16-bit values by 65535;
* channel rule (:func:`to_channels`): an alpha channel is **dropped** (RGBA -> RGB, grey+alpha ->
  grey, never composited); a grey image asked for as 3 channels is **replicated** into R = G = B;
  a colour image asked for as 1 channel becomes ITU-R BT.601 luma
  (``0.299 R + 0.587 G + 0.114 B``) computed by OpenCV's ``RGB2GRAY`` with its fixed-point
  rounding; PIL's ``convert("L")`` uses the same weights but rounds differently, so it can
  differ by 1 on a few pixels;
* every failure caused by the file (missing, empty, corrupt, unsupported) raises
  :class:`~restore.errors.DataError` with a one-line message that names the file.
"""

from __future__ import annotations

import fnmatch
import os
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from restore.data.image_header import (
    PNG_SIGNATURE,
    ImageHeader,
    apply_orientation,
    check_decoded_size,
    check_image_file,
    check_limits,
    png_problem,
    read_header,
)
from restore.errors import DataError
from restore.utils.c_stderr import c_stderr_captured
from restore.utils.files import atomic_write

#: Extensions we read and write (compared case-insensitively: SIDD ships ``.PNG``).
IMAGE_EXTENSIONS: tuple[str, ...] = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff")
#: Formats that can hold 16 bits per channel.
SIXTEEN_BIT_EXTENSIONS: tuple[str, ...] = (".png", ".tif", ".tiff")


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """Whether the file name has one of :data:`IMAGE_EXTENSIONS` (any case)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _supported() -> str:
    return ", ".join(IMAGE_EXTENSIONS)


def _decode(data: bytes) -> tuple[np.ndarray | None, str]:
    """Decode with OpenCV; returns the array (None when it cannot) and libpng's complaint, if any.

    ``IMREAD_UNCHANGED`` keeps the stored bit depth and alpha and ignores EXIF orientation,
    which :func:`read_image` applies itself. OpenCV's own log is muted and what libpng prints
    on file descriptor 2 is caught (:mod:`restore.utils.c_stderr`), so a corrupt file is
    reported by us, in one line; any other text caught is passed on to stderr unchanged. An
    OpenCV exception (its own size limit, ``OPENCV_IO_MAX_IMAGE_PIXELS``) counts as "not
    decodable".
    """
    logging = cv2.utils.logging
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        if not data.startswith(PNG_SIGNATURE):
            return _imdecode(buffer), ""
        with c_stderr_captured() as caught:
            array = _imdecode(buffer)
    finally:
        logging.setLogLevel(level)
    lines = "".join(caught).splitlines()
    others = [line for line in lines if not line.startswith("libpng ")]
    if others:
        print("\n".join(others), file=sys.stderr)
    errors = [line.split(":", 1)[1].strip() for line in lines if line.startswith("libpng error")]
    return array, "; ".join(errors)


def _imdecode(buffer: np.ndarray) -> np.ndarray | None:
    try:
        return cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None


def _check_image_path(p: Path) -> int:
    """The checks made before reading any byte (shared by :func:`read_image` and
    :func:`read_image_size`, so both report a bad path with the same message); returns the
    file's size in bytes."""
    if p.suffix.lower() not in IMAGE_EXTENSIONS:
        raise DataError(
            f"cannot read image '{p}': unsupported extension '{p.suffix}' (supported: {_supported()})"
        )
    return check_image_file(p)


def _checked_header(p: Path) -> ImageHeader | None:
    """Path checks, then the header and the size limits (see :mod:`restore.data.image_header`)."""
    file_bytes = _check_image_path(p)
    header = read_header(p)
    check_limits(p, header, file_bytes)
    return header


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file upright: ``(H, W, C)`` uint8 or uint16, RGB(A) channel order.

    ``C`` is 1 (grey), 3 (RGB) or 4 (RGBA); a 2-channel grey+alpha file keeps its 2 channels.
    The header is read first: an image over ``RESTORE_MAX_PIXELS`` is refused without being
    decoded, and a JPEG/TIFF/PNG with an EXIF Orientation tag is turned upright, as viewers
    show it. Bytes are read by Python and decoded by OpenCV (``IMREAD_UNCHANGED``), which also
    makes non-ASCII paths work on every platform.
    """
    p = Path(path)
    header = _checked_header(p)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read image '{p}': {exc.strerror or exc}") from None
    if not data:
        raise DataError(f"cannot read image '{p}': file is empty (0 bytes)")
    kind = p.suffix.lstrip(".").upper()
    damage = png_problem(data)
    if damage is not None:
        raise DataError(f"cannot read image '{p}': not a decodable {kind} file (corrupt or truncated: {damage})")
    array, complaint = _decode(data)
    if array is None or array.size == 0:
        why = f"corrupt: {complaint}" if complaint else "corrupt or truncated?"
        raise DataError(f"cannot read image '{p}': not a decodable {kind} file ({why}, {len(data)} bytes)")
    if header is None:
        check_decoded_size(p, *array.shape[:2])
    if array.dtype not in (np.uint8, np.uint16):
        raise DataError(
            f"cannot read image '{p}': unsupported pixel type {array.dtype} "
            "(only 8-bit and 16-bit integer images are supported)"
        )
    if array.ndim == 2:
        array = array[:, :, None]
    channels = array.shape[2]
    if channels == 3:
        array = cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
    elif channels == 4:
        array = cv2.cvtColor(array, cv2.COLOR_BGRA2RGBA)
    elif channels not in (1, 2):
        raise DataError(f"cannot read image '{p}': unsupported number of channels ({channels})")
    if header is not None:
        array = apply_orientation(array, header.orientation)
    return np.ascontiguousarray(array)


#: PIL modes whose header size we trust without decoding: the 8-bit and 16-bit layouts that
#: :func:`read_image` accepts. Anything else (float ``F``, 32-bit ``I``, CMYK, ...) is decoded.
_HEADER_MODES = frozenset({"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX",
                           "I;16", "I;16B", "I;16L", "I;16N"})


def read_image_size(path: str | os.PathLike[str], decode: bool = False) -> tuple[int, int]:
    """``(H, W)`` of an image file as :func:`read_image` returns it (upright), raising what it would.

    For checking a whole data set before training (``dataset.verify()``): PIL's ``Image.open``
    parses only the header, so this costs a few kB of I/O per file instead of a full decode. A
    file whose header PIL cannot parse (or whose pixel type we may not support) is decoded with
    :func:`read_image`, so a corrupt file raises exactly the error that loading it would, and a
    file only OpenCV understands is not rejected. A file truncated after a valid header passes,
    unless ``decode`` asks for the full decode (``--check``).
    """
    p = Path(path)
    header = _checked_header(p)
    if decode or header is None or header.mode not in _HEADER_MODES:
        return tuple(read_image(p).shape[:2])  # type: ignore[return-value]
    return header.upright_size


def to_channels(array: np.ndarray, channels: int) -> np.ndarray:
    """Apply the channel rule: drop alpha, then replicate grey or take BT.601 luma.

    Luma is OpenCV's ``RGB2GRAY`` (may differ by 1 from PIL's ``convert("L")`` on some pixels).

    ``array`` is ``(H, W, C)`` with C in 1..4 (or ``(H, W)``); the result is
    ``(H, W, channels)`` of the same dtype. Alpha is dropped, not composited, because restoration
    data sets never rely on transparency and compositing would invent a background colour.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    if array.ndim == 2:
        array = array[:, :, None]
    c = array.shape[2]
    if c == 2:  # grey + alpha
        array = array[:, :, :1]
    elif c == 4:  # RGB + alpha
        array = array[:, :, :3]
    elif c not in (1, 3):
        raise ValueError(f"expected 1 to 4 channels, got {c}")
    c = array.shape[2]
    if c == channels:
        return np.ascontiguousarray(array)
    if channels == 3:  # grey -> RGB: replicate
        return np.ascontiguousarray(np.repeat(array, 3, axis=2))
    grey = cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_RGB2GRAY)
    return grey[:, :, None]


def image_to_tensor(array: np.ndarray) -> torch.Tensor:
    """``(H, W, C)`` uint8/uint16 (or ``(H, W)``) -> float32 ``(C, H, W)`` in ``[0, 1]``.

    A float32 array is taken as already in ``[0, 1]`` and only transposed (the Python API
    hands float images over this way).
    """
    if array.ndim == 2:
        array = array[:, :, None]
    if array.dtype == np.float32:
        return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
    if array.dtype == np.uint8:
        scale = 255.0
    elif array.dtype == np.uint16:
        scale = 65535.0
    else:
        raise TypeError(f"image_to_tensor expects uint8, uint16 or float32, got {array.dtype}")
    chw = np.ascontiguousarray(array.transpose(2, 0, 1))
    return torch.from_numpy(chw.astype(np.float32) / np.float32(scale))


def _as_hwc_array(image: Any) -> np.ndarray:
    """Tensor ``(C,H,W)``/``(H,W)`` or array ``(H,W,C)``/``(H,W)`` -> numpy ``(H,W,C)``."""
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim == 2:
            t = t[None]
        if t.ndim != 3:
            raise ValueError(f"write_image expects a (C,H,W) tensor, got shape {tuple(image.shape)}")
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        array = t.numpy().transpose(1, 2, 0)
    else:
        array = np.asarray(image)
        if array.ndim == 2:
            array = array[:, :, None]
        if array.ndim != 3:
            raise ValueError(f"write_image expects an (H,W,C) array, got shape {array.shape}")
    if array.shape[2] not in (1, 3, 4):
        raise ValueError(f"write_image expects 1, 3 or 4 channels, got {array.shape[2]}")
    return array


def quantize(array: np.ndarray, bit_depth: int) -> np.ndarray:
    """Convert to the integer type of ``bit_depth`` (8 or 16).

    Floats are taken as ``[0, 1]``: clipped, scaled by 255 or 65535 and rounded half to even
    (``np.rint``). Integer arrays of the other depth are rescaled (x257 up, /257 rounded down).
    """
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    dtype, peak = (np.uint8, 255) if bit_depth == 8 else (np.uint16, 65535)
    if array.dtype == dtype:
        return array
    if array.dtype == np.bool_:
        return array.astype(dtype) * dtype(peak)
    if np.issubdtype(array.dtype, np.floating):
        scaled = np.rint(np.clip(array.astype(np.float64), 0.0, 1.0) * peak)
        return scaled.astype(dtype)
    if array.dtype == np.uint8:  # 8 -> 16 bit
        return array.astype(np.uint16) * np.uint16(257)
    if array.dtype == np.uint16:  # 16 -> 8 bit
        return np.rint(array.astype(np.float64) / 257.0).astype(np.uint8)
    raise TypeError(f"cannot write an image of dtype {array.dtype}")


def write_image(path: str | os.PathLike[str], image: Any, bit_depth: int = 8) -> Path:
    """Write an RGB(A)/grey image atomically and return its path.

    ``image``: float tensor ``(C,H,W)`` / array ``(H,W,C)`` in ``[0,1]`` (quantised with
    round-half-to-even), or an integer array. The encoded bytes go to a temporary file in the
    destination folder, which is then renamed over ``path`` (``os.replace``), so a reader never
    sees a half-written image, even if the process is killed. Parent folders are created. The
    file gets the permissions a plain ``open()`` would give (``0o666`` minus the umask), not
    ``mkstemp``'s private ``0o600``, so other users/services can read results.
    """
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise DataError(
            f"cannot write image '{p}': unsupported extension '{p.suffix}' (supported: {_supported()})"
        )
    if bit_depth == 16 and ext not in SIXTEEN_BIT_EXTENSIONS:
        raise DataError(
            f"cannot write image '{p}': {ext} cannot hold 16-bit images (use .png or .tif)"
        )
    array = quantize(_as_hwc_array(image), bit_depth)
    c = array.shape[2]
    if c == 3:
        array = cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_RGB2BGR)
    elif c == 4:
        array = cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_RGBA2BGRA)
    else:
        array = np.ascontiguousarray(array[:, :, 0])
    ok, encoded = cv2.imencode(ext, array)
    if not ok:
        raise DataError(f"cannot write image '{p}': OpenCV could not encode it as {ext}")
    atomic_write(p, encoded.tobytes())
    return p


def list_images(folder: str | os.PathLike[str], recursive: bool = True) -> list[Path]:
    """Image files under ``folder``, sorted by their relative path (plain string order).

    Only :data:`IMAGE_EXTENSIONS` (any case) are listed; other files (``.txt``, ``.mat``,
    ``Thumbs.db``) are ignored, as are hidden files and folders (names starting with ``.``,
    e.g. our own temporary files). Plain (not natural) sort order matches ``sorted()`` in the
    reference scripts and MATLAB's ``dir``, which matters for by-position pairing.

    Symbolic links are followed, but a folder reached twice (a link cycle or a second link to
    the same folder) is listed once, at its first path in sorted walk order. A folder that
    cannot be read raises a one-line DataError naming it rather than being skipped silently.
    """
    root = Path(folder)
    try:
        if not root.exists():
            raise DataError(f"image folder '{root}' does not exist")
        if not root.is_dir():
            raise DataError(f"image folder '{root}' is a file, not a folder")
        found = _walk_images(root) if recursive else _list_images_flat(root)
    except OSError as exc:
        where = exc.filename if exc.filename is not None else root
        raise DataError(f"cannot list image folder '{where}': {exc.strerror or exc}") from None
    if not found:
        where = "" if recursive else " (not searching subfolders)"
        raise DataError(f"no images found in folder '{root}'{where}; extensions read: {_supported()}")
    found.sort(key=lambda item: item[0])
    return [path for _, path in found]


def _raise_walk_error(exc: OSError) -> None:
    raise exc  # os.walk would otherwise skip the folder silently; list_images reports it


def _walk_images(root: Path) -> list[tuple[str, Path]]:
    """``(relative posix path, path)`` of image files under ``root``, each folder visited once."""
    found: list[tuple[str, Path]] = []
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=_raise_walk_error):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and is_image_file(name):
                full = Path(dirpath) / name
                found.append((full.relative_to(root).as_posix(), full))
    return found


def _list_images_flat(root: Path) -> list[tuple[str, Path]]:
    return [
        (entry.name, entry)
        for entry in root.iterdir()
        if not entry.name.startswith(".") and is_image_file(entry.name) and entry.is_file()
    ]


def filter_names(paths: list[Path], pattern: str | None, folder: str | os.PathLike[str], option: str) -> list[Path]:
    """Keep files whose *file name* matches the glob ``pattern`` (case-sensitive)."""
    if pattern is None:
        return paths
    kept = [p for p in paths if fnmatch.fnmatchcase(p.name, pattern)]
    if not kept:
        raise DataError(f"no image in '{folder}' matches {option} {pattern!r} ({len(paths)} images there)")
    return kept
