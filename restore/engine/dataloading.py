"""DataLoader errors, shown the way the user would see them without worker processes.

An exception raised inside a DataLoader worker reaches the main process re-created as the same
class, but its message becomes "Caught DataError in DataLoader worker process 0." followed by
the worker's whole traceback. For a :class:`RestoreError` (a corrupt image, a missing mask) the
user should see its original one line: :func:`unwrap_worker_error` recovers it and
:func:`worker_errors` applies that to a block of code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from restore.errors import RestoreError


def unwrap_worker_error(exc: RestoreError) -> RestoreError:
    """The user's one-line error from the copy a DataLoader worker re-raises.

    torch re-raises a worker's exception as ``type(exc)("Caught X in DataLoader worker ...
    Original Traceback ... <module>.X: <message>")``; this recovers ``type(exc)(<message>)``.
    Errors that were not wrapped are returned unchanged.
    """
    text = str(exc)
    if not text.startswith("Caught ") or "Original Traceback" not in text:
        return exc
    cls = type(exc)
    for prefix in (f"{cls.__module__}.{cls.__qualname__}: ", f"{cls.__qualname__}: "):
        at = text.rfind("\n" + prefix)
        if at >= 0:
            return cls(text[at + 1 + len(prefix):].strip())
    return exc


@contextmanager
def worker_errors() -> Iterator[None]:
    """Re-raise a RestoreError from a DataLoader worker with its own one-line message."""
    try:
        yield
    except RestoreError as exc:
        clean = unwrap_worker_error(exc)
        if clean is exc:
            raise
        raise clean from None
