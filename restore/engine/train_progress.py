"""Training progress outside a terminal: rate and ETA, and a plain line at a steady interval.

Why: redirected to a file (a cluster job, ``nohup``), tqdm's bar is off and a run would print
nothing between log lines, which can be many minutes apart. :class:`PlainProgress` prints
``[iter 120/1000] 12.0%, 3.41 it/s, ETA 4m18s`` every ``interval`` seconds (30 by default) or
every ``every`` iterations, whichever comes first, and gives the log lines their ETA.
"""

from __future__ import annotations

import time
from collections.abc import Callable

INTERVAL_S = 30.0


def format_duration(seconds: float) -> str:
    """``"45s"``, ``"4m18s"``, ``"2h05m"``, ``"3d04h"``: short enough for a log line."""
    if seconds != seconds or seconds == float("inf"):
        return "?"
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


class PlainProgress:
    """Rate and ETA of a run from ``start`` to ``total`` iterations; plain lines when ``enabled``.

    The rate is measured over this process's own iterations (a resumed run's earlier ones do
    not count), from the first call to :meth:`update` on, so start-up time does not skew it.
    """

    def __init__(
        self,
        start: int,
        total: int,
        *,
        enabled: bool,
        interval: float = INTERVAL_S,
        every: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.start, self.total = start, total
        self.enabled = enabled
        self.interval, self.every = interval, every
        self.clock = clock
        self._t0 = clock()
        self._last = self._t0
        self._last_iter = start

    def rate(self, iteration: int) -> float:
        """Iterations per second so far (0 before any)."""
        elapsed = self.clock() - self._t0
        done = iteration - self.start
        return done / elapsed if elapsed > 0 and done > 0 else 0.0

    def eta(self, iteration: int) -> str:
        """Time left at the current rate, formatted."""
        rate = self.rate(iteration)
        return format_duration((self.total - iteration) / rate) if rate > 0 else "?"

    def line(self, iteration: int) -> str:
        pct = 100.0 * iteration / max(1, self.total)
        return f"[iter {iteration}/{self.total}] {pct:.1f}%, {self.rate(iteration):.3g} it/s, ETA {self.eta(iteration)}"

    def update(self, iteration: int) -> str | None:
        """The plain line to print now, or None (not due, or a terminal shows the bar)."""
        if not self.enabled:
            return None
        now = self.clock()
        due = now - self._last >= self.interval
        if self.every:
            due = due or iteration - self._last_iter >= self.every
        if not due:
            return None
        self._last, self._last_iter = now, iteration
        return self.line(iteration)
