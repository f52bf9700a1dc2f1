"""What is known about an image file before its pixels are decoded, and the checks made on it.

Why a separate step: decoding is where a hostile or damaged file costs memory or prints
stray library messages. A 68-byte PNG can claim 100000 x 100000 pixels, a 747 KB PNG of
zeros decodes to 768 MB, a FIFO named ``x.png`` blocks a reader forever, and libpng prints
``libpng error: ...`` on stderr for a truncated file before OpenCV returns nothing. So every
read first

* checks the path is a regular, non-empty file (:func:`check_image_file`);
* reads width, height, pixel mode and EXIF orientation from the header with Pillow's lazy
  ``Image.open``, which parses only the header (:func:`read_header`);
* refuses an image over :func:`max_pixels` pixels (``RESTORE_MAX_PIXELS``, default
  50 000 000), or a file far larger than such an image needs (:func:`check_limits`);
* walks a PNG's chunks and their CRCs (:func:`png_problem`), so a truncated or damaged PNG is
  refused by us, in one line, instead of by libpng on stderr.

EXIF orientation: cameras store pixels as the sensor saw them and a tag (``Orientation``,
1..8) that tells viewers how to turn them. :func:`apply_orientation` turns the pixels upright,
so an image reads the way every viewer displays it (and is written back without the tag).
"""

from __future__ import annotations

import math
import os
import stat
import warnings
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from restore.errors import ConfigError, DataError

#: Default for ``RESTORE_MAX_PIXELS``: about 50 MP (8660 x 5773), a large camera photo.
DEFAULT_MAX_PIXELS = 50_000_000
#: Bytes per pixel of the largest layout we read (16-bit RGBA), for the file-size bound.
_MAX_BYTES_PER_PIXEL = 8
#: Room for metadata (EXIF, ICC, XMP, thumbnails) on top of the pixels in that bound.
_METADATA_ALLOWANCE = 64 << 20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ORIENTATION_TAG = 0x0112


#: Formats that both readers already turn upright: OpenCV's TIFF decoder applies the
#: Orientation tag whatever the flags, and Pillow reports a TIFF's size upright. For them the
#: header's orientation "left to apply" is 1. (tests/data/test_exif.py pins this down.)
_READ_UPRIGHT = frozenset({"TIFF"})


class ImageHeader(NamedTuple):
    """What an image header says: size as decoded, Pillow mode, format, and the EXIF orientation
    (1..8) still to apply to the decoded pixels (1 when none, or when the decoder applies it)."""

    width: int
    height: int
    mode: str
    format: str
    orientation: int

    @property
    def upright_size(self) -> tuple[int, int]:
        """``(H, W)`` after :func:`apply_orientation` (orientations 5..8 swap the axes)."""
        if self.orientation >= 5:
            return self.width, self.height
        return self.height, self.width


def max_pixels() -> int:
    """The largest image (width x height) restore decodes: ``RESTORE_MAX_PIXELS`` or 50 MP.

    Read at every call, so a test or a wrapper script can change it without re-importing.
    """
    text = os.environ.get("RESTORE_MAX_PIXELS", "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            number = float("nan")
        value = int(number) if math.isfinite(number) and number == int(number) else 0
    if value <= 0:
        raise ConfigError(f"environment variable RESTORE_MAX_PIXELS must be a positive number of pixels, got {text!r}")
    return value


def _mp(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} MP"


def check_image_file(p: Path) -> int:
    """Size in bytes of ``p`` if it is a regular, non-empty file; else a one-line DataError.

    Uses ``stat`` (links followed) and never opens the file, so a FIFO or a device named like
    an image is refused instead of blocking or reading forever.
    """
    try:
        st = os.stat(p)
    except FileNotFoundError:
        broken = " (a broken link)" if os.path.islink(p) else ""
        raise DataError(f"cannot read image '{p}': no such file{broken}") from None
    except OSError as exc:
        raise DataError(f"cannot read image '{p}': {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise DataError(f"cannot read image '{p}': it is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device" if (
            stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)) else "a socket" if stat.S_ISSOCK(st.st_mode) else "special"
        raise DataError(f"cannot read image '{p}': not a regular file ({kind})")
    if st.st_size == 0:
        raise DataError(f"cannot read image '{p}': file is empty (0 bytes)")
    return int(st.st_size)


def _orientation(img: object) -> int:
    """EXIF Orientation of an open Pillow image, 1 (as stored) when absent or unreadable."""
    from PIL import Image

    try:
        if getattr(img, "format", None) == "PNG":
            # PNG's getexif() decodes the whole image to look for a late eXIf chunk; use the
            # header's eXIf only (the PNG spec puts it before the pixel data).
            raw = img.info.get("exif")  # type: ignore[attr-defined]
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
        else:
            exif = img.getexif()  # type: ignore[attr-defined]
        value = exif.get(_ORIENTATION_TAG, 1)
    except Exception:  # a damaged EXIF block must not make a readable image unreadable
        return 1
    return int(value) if isinstance(value, int) and 1 <= value <= 8 else 1


def _open_header(p: Path) -> ImageHeader:
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DecompressionBombWarning, EXIF warnings: we judge size ourselves
        with Image.open(p) as img:
            width, height = img.size
            kind = str(img.format or "")
            turn = 1 if kind in _READ_UPRIGHT else _orientation(img)
            return ImageHeader(int(width), int(height), str(img.mode), kind, turn)


def read_header(p: Path) -> ImageHeader | None:
    """The header of ``p`` as Pillow reads it (no pixels decoded), or None if Pillow cannot.

    Pillow's own decompression-bomb guard is bypassed for this header read only: the pixel
    limit is ours (:func:`check_limits`), so that ``RESTORE_MAX_PIXELS`` is the one setting.
    """
    from PIL import Image

    try:
        return _open_header(p)
    except Image.DecompressionBombError:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return _open_header(p)
        except Exception:
            return None
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    except Exception:  # Pillow raises many types for headers it cannot parse; the decoder judges
        return None


def check_limits(p: Path, header: ImageHeader | None, file_bytes: int) -> None:
    """Refuse, before decoding, an image with no pixels, over :func:`max_pixels`, or a file far
    larger than its pixels can need (one-line DataError naming the file and the limit)."""
    limit = max_pixels()
    if header is not None:
        if header.width <= 0 or header.height <= 0:
            raise DataError(f"cannot read image '{p}': its header says {header.width}x{header.height} pixels (no pixels)")
        pixels = header.width * header.height
        if pixels > limit:
            raise DataError(
                f"cannot read image '{p}': {header.width}x{header.height} ({_mp(pixels)}) is over the limit of "
                f"{_mp(limit)}; not decoded (raise it with RESTORE_MAX_PIXELS={pixels} if the image is real)"
            )
    else:
        pixels = limit
    allowed = pixels * _MAX_BYTES_PER_PIXEL + _METADATA_ALLOWANCE
    if file_bytes > allowed:
        size = f"a {header.width}x{header.height} image" if header is not None else f"an image of at most {_mp(limit)}"
        raise DataError(
            f"cannot read image '{p}': the file is {file_bytes / 2**20:.0f} MB, far more than {size} "
            "can need (corrupt, or not an image?); not read"
        )


def check_decoded_size(p: Path, height: int, width: int) -> None:
    """The pixel limit for a file whose header only the decoder could read."""
    limit = max_pixels()
    if height * width > limit:
        raise DataError(f"cannot read image '{p}': {width}x{height} ({_mp(height * width)}) is over the limit of "
                        f"{_mp(limit)} (raise it with RESTORE_MAX_PIXELS)")


def png_problem(data: bytes) -> str | None:
    """Why ``data`` (a whole PNG file) is truncated or damaged, or None when its chunks are whole.

    Walks the chunk list to ``IEND`` checking each chunk's length and CRC-32, which costs a
    fraction of a decode. Data that is not a PNG at all is left to the decoder (None).
    """
    if not data.startswith(PNG_SIGNATURE):
        return None
    view = memoryview(data)
    size, pos = len(data), len(PNG_SIGNATURE)
    ihdr = _ihdr_problem(view, pos, size)
    if ihdr is not None:
        return ihdr
    while True:
        if pos + 12 > size:
            return f"the file ends at byte {size}, before its IEND chunk"
        length = int.from_bytes(view[pos : pos + 4], "big")
        kind = bytes(view[pos + 4 : pos + 8]).decode("latin-1")
        end = pos + 12 + length
        if end > size:
            return f"the file ends inside chunk {kind!r}: it needs {end} bytes, the file has {size}"
        stored = int.from_bytes(view[end - 4 : end], "big")
        if zlib.crc32(view[pos + 4 : end - 4]) != stored:
            return f"CRC error in chunk {kind!r} at byte {pos}"
        if kind == "IEND":
            return None
        pos = end


#: PNG colour type -> the bit depths it allows (PNG specification, 11.2.2).
_PNG_DEPTHS = {0: {1, 2, 4, 8, 16}, 2: {8, 16}, 3: {1, 2, 4, 8}, 4: {8, 16}, 6: {8, 16}}


def _ihdr_problem(view: memoryview, pos: int, size: int) -> str | None:
    """What is wrong with a PNG's IHDR chunk (libpng would print it on stderr), or None."""
    if pos + 8 + 13 > size or bytes(view[pos : pos + 8]) != b"\x00\x00\x00\x0dIHDR":
        return None  # the chunk walk reports truncation; a missing IHDR is the decoder's to refuse
    width = int.from_bytes(view[pos + 8 : pos + 12], "big")
    height = int.from_bytes(view[pos + 12 : pos + 16], "big")
    depth, colour, compression, filtering, interlace = bytes(view[pos + 16 : pos + 21])
    if width == 0 or height == 0 or width >= 1 << 31 or height >= 1 << 31:
        return f"its header says {width}x{height} pixels"
    if depth not in _PNG_DEPTHS.get(colour, set()):
        return f"its header gives an invalid colour type {colour} with bit depth {depth}"
    if compression or filtering or interlace > 1:
        return "its header names an unknown compression, filter or interlace method"
    return None


def apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Turn ``(H, W, C)`` pixels stored under EXIF ``orientation`` upright (1: unchanged).

    2 mirrors left-right, 3 turns 180 degrees, 4 mirrors top-bottom, 5 transposes,
    6 turns 90 degrees clockwise, 7 transverses (anti-diagonal), 8 turns 90 degrees
    anticlockwise: the TIFF/EXIF 2.3 meanings, as viewers apply them.
    """
    if orientation == 2:
        out = array[:, ::-1]
    elif orientation == 3:
        out = array[::-1, ::-1]
    elif orientation == 4:
        out = array[::-1]
    elif orientation == 5:
        out = array.swapaxes(0, 1)
    elif orientation == 6:
        out = np.rot90(array, k=-1)
    elif orientation == 7:
        out = array[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        out = np.rot90(array, k=1)
    else:
        return array
    return np.ascontiguousarray(out)
