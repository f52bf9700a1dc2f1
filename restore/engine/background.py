"""Background threads around a compute loop: read ahead of it, write behind it.

Why: decoding an image, encoding the result and writing it take tens of milliseconds each that
the network's thread would otherwise wait for. Image codecs (OpenCV) and file I/O release the
GIL, so plain threads overlap them with the forward, and the folder runs at the network's speed.

Both helpers are bounded (a few items ahead, a few writes behind), so memory stays that of a few
images, and both hand results back in submission order, so what a run reports is in the same
order as when it ran one image after another. An exception raised in a thread is raised again,
unchanged, by :meth:`Future.result` in the caller's thread.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
W = TypeVar("W", bound="WriteBehind")


class Lookahead(Generic[T, R]):
    """``load(item)`` for the next ``depth`` items of ``items``, on ``workers`` threads, in order.

    ``skip(item)``: a cheap test run in the caller's thread before loading; an item it returns a
    value for is not loaded and comes back with that value instead of a future (a target that
    exists, a refused target). Iterate with :meth:`next` / :meth:`peek`; :meth:`close` cancels
    what was not started and waits for what was.
    """

    def __init__(self, items: Iterable[T], load: Callable[[T], R], *, depth: int = 2, workers: int = 1,
                 skip: Callable[[T], object] | None = None) -> None:
        self._items: Iterator[T] = iter(items)
        self._load, self._skip = load, skip
        self._depth = max(1, depth)
        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="restore-read")
        self._ahead: deque[tuple[T, Future[R] | None, object]] = deque()
        self._loading = 0

    def _fill(self) -> None:
        """Start loads until ``depth`` are in flight (skipped items do not count)."""
        while self._loading < self._depth:
            item = next(self._items, _END)
            if item is _END:
                return
            verdict = self._skip(item) if self._skip is not None else None
            if verdict is not None:
                self._ahead.append((item, None, verdict))
                continue
            self._ahead.append((item, self._pool.submit(self._load, item), None))
            self._loading += 1

    def peek(self) -> tuple[T, Future[R] | None, object] | None:
        """The next ``(item, future or None, skip verdict)`` without taking it; None at the end."""
        if not self._ahead:
            self._fill()
        return self._ahead[0] if self._ahead else None

    def next(self) -> tuple[T, Future[R] | None, object] | None:
        """Take the next ``(item, future or None, skip verdict)``; None at the end."""
        head = self.peek()
        if head is not None:
            self._ahead.popleft()
            if head[1] is not None:
                self._loading -= 1
            self._fill()
        return head

    def close(self) -> None:
        """Cancel loads not started, wait for those running."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._ahead.clear()

    def __enter__(self) -> Lookahead[T, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WriteBehind:
    """Runs writes on one background thread, at most ``pending`` unfinished, results in order.

    Each write is queued under a ``key``; :meth:`record` queues a result that needs no work (a
    file skipped, a failure found before writing) so it comes back in its place among the
    writes. :meth:`finished` hands back ``(key, future)`` from the front in submission order,
    optionally first waiting for room (a slow disk then slows the run instead of filling
    memory) or for everything.
    """

    def __init__(self, pending: int = 2) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="restore-write")
        self._pending = max(1, pending)
        self._queue: deque[tuple[object, Future[object]]] = deque()

    def submit(self, key: object, fn: Callable[..., object], *args: object) -> None:
        """Queue ``fn(*args)`` under ``key``."""
        self._queue.append((key, self._pool.submit(fn, *args)))

    def record(self, key: object, value: object) -> None:
        """Queue an outcome that is already known (its future is done, with ``value``)."""
        future: Future[object] = Future()
        future.set_result(value)
        self._queue.append((key, future))

    def full(self) -> bool:
        """Whether ``pending`` writes are unfinished."""
        return sum(not f.done() for _, f in self._queue) >= self._pending

    def finished(self, *, room: bool = False, everything: bool = False) -> Iterator[tuple[object, Future[object]]]:
        """Finished ``(key, future)`` pairs from the front, in order.

        ``room``: first wait (on the oldest writes) until fewer than ``pending`` are unfinished;
        ``everything``: wait for every queued write.
        """
        while self._queue:
            key, future = self._queue[0]
            if not (future.done() or everything or (room and self.full())):
                return
            self._queue.popleft()
            future.exception()  # waits for it
            yield key, future

    def close(self) -> None:
        """Wait for the write running, drop those not started."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._queue.clear()

    def __enter__(self: W) -> W:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_END = object()
