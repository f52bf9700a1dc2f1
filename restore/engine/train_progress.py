"""Training progress outside a terminal: rate and ETA, and a plain line at a steady interval.

Why: redirected to a file (a cluster job, ``nohup``), tqdm's bar is off and a run would print
nothing between log lines, which can be many minutes apart. :class:`PlainProgress` prints
``[iter 120/1000] 12.0%, 3.41 it/s, ETA 4m18s`` every ``interval`` seconds (30 by default) or
every ``every`` iterations, whichever comes first, and gives the log lines their ETA.

The first line comes early, after 5% of the run's iterations or ``FIRST_S`` seconds, so a run
that is slower than expected says so at once; when the machine's load average is more than
twice its CPU count, that first line is followed by a note that other processes compete for
the CPUs (a run on a shared machine can take several times as long as on an idle one).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

INTERVAL_S = 30.0
FIRST_S = 10.0  # the first line comes after this many seconds at the latest
FIRST_FRACTION = 0.05  # ... or after this fraction of the run's iterations, whichever is first


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


def busy_cpus_note(load: float | None = None, cpus: int | None = None) -> str | None:
    """A one-line note when the 1-minute load average exceeds twice the CPU count, else None.

    Why: a training run uses every core itself, so a load up to about the core count is its
    own; well beyond it, other processes share the CPUs and the rate (and ETA) suffer.
    ``load``/``cpus`` default to this machine's (``os.getloadavg``, ``os.cpu_count``).
    """
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # not on every platform
            return None
    cpus = cpus or os.cpu_count() or 1
    if load <= 2 * cpus:
        return None
    return (
        f"note: the CPUs are busy (load average {load:.1f} on {cpus} CPU cores): other processes share "
        "them, so this run is slower than on an idle machine"
    )


class PlainProgress:
    """Rate and ETA of a run from ``start`` to ``total`` iterations; plain lines when ``enabled``.

    The rate is measured over this process's own iterations (a resumed run's earlier ones do
    not count), from the first call to :meth:`update` on, so start-up time (DataLoader workers,
    the first forward) does not skew it. The first line is due early (see the module docstring).
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
        first: float = FIRST_S,
    ) -> None:
        self.start, self.total = start, total
        self.enabled = enabled
        self.interval, self.every = interval, every
        self.clock = clock
        self.first = first
        self.first_every = max(1, int((total - start) * FIRST_FRACTION))
        self._t0: float | None = None  # time and iteration of the first update
        self._ref = start
        self._last = 0.0
        self._last_iter = start
        self._printed = False

    def _mark(self, iteration: int) -> float:
        now = self.clock()
        if self._t0 is None:
            self._t0, self._ref, self._last, self._last_iter = now, iteration, now, iteration
        return now

    def rate(self, iteration: int) -> float:
        """Iterations per second since the first update (0 before the second)."""
        if self._t0 is None:
            return 0.0
        elapsed = self.clock() - self._t0
        done = iteration - self._ref
        return done / elapsed if elapsed > 0 and done > 0 else 0.0

    def eta(self, iteration: int) -> str:
        """Time left at the current rate, formatted."""
        rate = self.rate(iteration)
        return format_duration((self.total - iteration) / rate) if rate > 0 else "?"

    def line(self, iteration: int) -> str:
        pct = 100.0 * iteration / max(1, self.total)
        return f"[iter {iteration}/{self.total}] {pct:.1f}%, {self.rate(iteration):.3g} it/s, ETA {self.eta(iteration)}"

    def update(self, iteration: int) -> str | None:
        """The plain line(s) to print now, or None (not due, or a terminal shows the bar)."""
        now = self._mark(iteration)
        if not self.enabled:
            return None
        due = now - self._last >= self.interval
        if self.every:
            due = due or iteration - self._last_iter >= self.every
        if not self._printed:
            assert self._t0 is not None
            due = due or iteration - self._ref >= self.first_every or now - self._t0 >= self.first
        if not due:
            return None
        self._last, self._last_iter = now, iteration
        text = self.line(iteration)
        if not self._printed:
            self._printed = True
            note = busy_cpus_note()
            text = f"{text}\n{note}" if note else text
        return text
