"""Keep freed heap memory inside the process (glibc ``mallopt``), so a forward stops page-faulting.

Why: glibc serves every allocation above its mmap threshold (128 KiB at first, raised
dynamically up to 32 MiB) with a fresh ``mmap`` and gives it back with ``munmap`` on free. A
network's activation tensors are larger than that, so every forward maps its memory again and
the kernel zero-fills it page by page: one 512x768 N2N UNet forward took about a million minor
page faults and more system time than the convolutions' own work. Serving those tensors from the
heap and never trimming it keeps the pages resident between forwards; peak memory is that of
the largest forward (plus some fragmentation), as before.

:func:`keep_freed_memory` is called once at the start of every ``restore`` process (the CLI
entry point), never at ``import restore``. It does nothing:

* with ``RESTORE_NO_MALLOPT=1`` in the environment (the opt-out);
* where the C library is not glibc (macOS, musl, Windows): the tuning is glibc's own;
* for a setting the user already made through glibc's environment variables
  (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_MAX_``) or
  ``GLIBC_TUNABLES=glibc.malloc...``: theirs wins.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any

#: Opt-out: set to anything but ``""``/``"0"`` to leave the C allocator as glibc configured it.
OPT_OUT = "RESTORE_NO_MALLOPT"

# glibc's <malloc.h> parameter numbers.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4

#: ``mallopt`` takes an ``int``: the largest threshold it can set (2 GiB - 1).
_LARGEST = 2**31 - 1

#: The user's own glibc settings, by the environment variable that makes them.
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_MAX_", "MALLOC_TOP_PAD_")


def glibc() -> Any | None:
    """The process's C library when it is glibc (it has ``gnu_get_libc_version`` and ``mallopt``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 (musl has no such symbol)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return libc


def _user_tuned() -> bool:
    """Whether the environment already tunes glibc's malloc (then it is left alone)."""
    return any(os.environ.get(name) for name in _USER_SETTINGS) or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "")


def keep_freed_memory() -> str:
    """Make glibc serve large allocations from the heap and keep freed memory; returns what it did.

    ``"off (RESTORE_NO_MALLOPT)"``, ``"off (not glibc)"``, ``"off (MALLOC_* set)"`` or
    ``"on"``. Up to 2 GiB - 1 per allocation comes from the heap (``M_MMAP_THRESHOLD``; a glibc
    that caps the threshold lower refuses it, and then ``M_MMAP_MAX = 0`` turns mmap-served
    allocations off instead), and up to 2 GiB - 1 free at the top of the heap is kept
    (``M_TRIM_THRESHOLD``). Safe to call more than once.
    """
    if os.environ.get(OPT_OUT, "") not in ("", "0"):
        return f"off ({OPT_OUT})"
    libc = glibc()
    if libc is None:
        return "off (not glibc)"
    if _user_tuned():
        return "off (MALLOC_* set)"
    if not libc.mallopt(M_MMAP_THRESHOLD, _LARGEST):
        libc.mallopt(M_MMAP_MAX, 0)
    libc.mallopt(M_TRIM_THRESHOLD, _LARGEST)
    return "on"
