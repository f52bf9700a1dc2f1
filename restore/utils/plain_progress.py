"""Progress as plain lines, for runs whose output goes to a file or a pipe instead of a terminal.

Why: a progress bar redraws one line with carriage returns, so tools hide it when stderr is not
a terminal, and a batch job redirected to a log said nothing for minutes. :class:`PlainProgress`
prints a whole line at a steady pace (every :data:`EVERY_ITEMS` items or
:data:`EVERY_SECONDS` seconds, whichever comes first) with the rate and an ETA::

    restore in: 200/1000 images (20%), 3.1 images/s, ETA 0:04:18
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

#: Print a line at least every this many items ...
EVERY_ITEMS = 100
#: ... or every this many seconds, whichever comes first.
EVERY_SECONDS = 30.0


def format_duration(seconds: float) -> str:
    """``h:mm:ss`` for an ETA (whole seconds)."""
    total = max(0, int(round(seconds)))
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


class PlainProgress:
    """Counts finished items and prints a progress line now and then (never for the last item:
    the caller's summary line covers the end)."""

    def __init__(self, total: int, desc: str, unit: str = "images", stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.every_items, self.every_seconds = EVERY_ITEMS, EVERY_SECONDS
        self.done = 0
        self.start = self.last_time = clock()
        self.last_done = 0

    def rate(self) -> float:
        """Items per second since the start (0 before the first item)."""
        elapsed = self.clock() - self.start
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        """``<desc>: done/total <unit> (pct), rate <unit>/s, ETA h:mm:ss``."""
        rate = self.rate()
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        eta = format_duration((self.total - self.done) / rate) if rate > 0 else "unknown"
        return f"{self.desc}: {self.done}/{self.total} {self.unit}{pct}, {rate:.2f} {self.unit}/s, ETA {eta}"

    def update(self, n: int = 1) -> None:
        """``n`` more items finished; print a line if one is due."""
        self.done += n
        now = self.clock()
        due = self.done - self.last_done >= self.every_items or now - self.last_time >= self.every_seconds
        if due and self.done < self.total:
            print(self.line(), file=self.stream, flush=True)
            self.last_done, self.last_time = self.done, now
