"""Catch what a C library prints on the process's stderr (file descriptor 2) during one call.

Why: libpng, inside OpenCV's PNG decoder, prints ``libpng error: ...`` and ``libpng warning:
...`` straight to file descriptor 2, bypassing Python and OpenCV's log level. A damaged PNG
then leaves a stray line on the terminal beside restore's own one-line report, and a valid
PNG with a sloppy colour profile prints a warning for every read. :func:`c_stderr_captured`
points descriptor 2 at a scratch file for the duration of a call and hands back the text, so
the caller can put it into its own message and pass anything else on unchanged.

The redirection is process-wide, so it is held under a lock (calls from several threads take
turns) and it is undone in a ``finally`` block.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

_LOCK = threading.Lock()
_SCRATCH: dict[int, IO[bytes]] = {}  # pid -> scratch file (a forked worker makes its own)


def _scratch() -> IO[bytes]:
    pid = os.getpid()
    if pid not in _SCRATCH:
        _SCRATCH.clear()  # a parent's file, inherited through fork: never share its offset
        _SCRATCH[pid] = tempfile.TemporaryFile()
    return _SCRATCH[pid]


@contextmanager
def c_stderr_captured() -> Iterator[list[str]]:
    """Within the block, descriptor 2 writes go to a scratch file; after it, the yielded list
    holds their text (one string). If descriptor 2 cannot be redirected, nothing is caught."""
    caught: list[str] = []
    with _LOCK:
        saved = None
        try:
            sys.stderr.flush()
            scratch = _scratch()
            scratch.seek(0)
            scratch.truncate()
            saved = os.dup(2)
            os.dup2(scratch.fileno(), 2)
        except (OSError, ValueError, AttributeError):
            if saved is not None:
                os.close(saved)
            yield caught
            return
        try:
            yield caught
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            scratch.seek(0)
            caught.append(scratch.read().decode("utf-8", errors="replace"))
