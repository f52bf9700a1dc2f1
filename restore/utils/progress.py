"""Progress of a loop over images (test sets, batch-restore): a bar on a terminal, plain lines elsewhere.

Why: a 20-image test set can take minutes; on a terminal the user wants a bar, and in a log file
(``restore test > log 2>&1``, a batch job) a bar's carriage returns are noise, but silence is
worse. Without a terminal a line is printed every ``every`` images (default: about every tenth
of the set, but not within ``min_gap`` seconds of the previous line) or every ``interval``
seconds (default 30), whichever comes first, plus a last line:

    kodak24: 12/24 images (50%), 1.52 img/s, ETA 0:00:08

The bar goes to stderr (where tqdm draws); the lines go to ``line_stream`` (stdout by default,
next to ``restore test``'s tables; ``restore infer`` sends them to stderr beside its failure lines).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import IO, Literal

Mode = Literal["auto", "bar", "lines", "off"]
INTERVAL_S = 30.0
MIN_GAP_S = 2.0  # a fast set is not reported image by image


def clock_text(seconds: float) -> str:
    """``83.4`` -> ``0:01:23``."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    """Counts done images of one set: ``update(n)`` after each batch, ``close()`` at the end.

    ``mode``: ``auto`` (bar when ``bar_stream`` is a terminal, else lines), ``bar``, ``lines``
    or ``off``. ``closing_line``: print the "N/N images in ..." line at the end (off where the
    caller prints its own summary). ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        total: int,
        desc: str,
        *,
        mode: Mode = "auto",
        every: int | None = None,
        interval: float = INTERVAL_S,
        min_gap: float | None = None,
        bar_stream: IO[str] | None = None,
        line_stream: IO[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        closing_line: bool = True,
    ) -> None:
        self.total, self.desc, self.done = int(total), desc, 0
        self.closing_line = closing_line
        self.bar_stream = bar_stream if bar_stream is not None else sys.stderr
        self.line_stream = line_stream if line_stream is not None else sys.stdout
        if mode == "auto":
            mode = "bar" if _is_terminal(self.bar_stream) else "lines"
        self.mode = mode if self.total > 0 else "off"
        self.every = max(1, every if every is not None else math.ceil(self.total / 10))
        self.interval, self.min_gap = interval, MIN_GAP_S if min_gap is None else min_gap
        self.clock = clock
        self.start = self.last_time = clock()
        self.last_count = 0
        self._bar = None
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=desc, unit="img", file=self.bar_stream, dynamic_ncols=True,
                             leave=True)

    def line(self) -> str:
        """The plain progress line for the current count."""
        elapsed = self.clock() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        pct = 100.0 * self.done / self.total if self.total else 100.0
        if self.done >= self.total:
            return f"{self.desc}: {self.done}/{self.total} images in {clock_text(elapsed)} ({rate:.2f} img/s)"
        eta = clock_text((self.total - self.done) / rate) if rate > 0 else "?"
        return f"{self.desc}: {self.done}/{self.total} images ({pct:.0f}%), {rate:.2f} img/s, ETA {eta}"

    def update(self, n: int = 1) -> None:
        """``n`` more images are done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "lines" and self.done < self.total:
            now = self.clock()
            crossed = self.done // self.every > self.last_count // self.every and now - self.last_time >= self.min_gap
            if crossed or now - self.last_time >= self.interval:
                self._print()

    def _print(self) -> None:
        print(self.line(), file=self.line_stream, flush=True)
        self.last_time, self.last_count = self.clock(), self.done

    def close(self) -> None:
        """Finish the bar, or print the last line (only when the set was completed)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.mode == "lines" and self.closing_line and self.done >= self.total and self.last_count < self.done:
            self._print()
        self.mode = "off"
