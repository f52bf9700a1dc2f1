"""Plain training progress (no terminal): an early first line, then one per interval, and a note
when the machine is busy."""

from __future__ import annotations

import pytest

from restore.engine import train_progress
from restore.engine.train_progress import PlainProgress, busy_cpus_note


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def run(progress: PlainProgress, clock: Clock, step_s: float, until: int) -> list[tuple[int, str]]:
    """Iterations start+1..until, each taking step_s seconds; the lines printed, with their iteration."""
    out = []
    for it in range(progress.start + 1, until + 1):
        clock.t += step_s
        text = progress.update(it)
        if text is not None:
            out.append((it, text))
    return out


@pytest.fixture(autouse=True)
def idle_machine(monkeypatch):
    monkeypatch.setattr(train_progress, "busy_cpus_note", lambda: None)


def test_first_line_after_five_percent_of_the_iterations_when_that_comes_first() -> None:
    clock = Clock()
    lines = run(PlainProgress(0, 1000, enabled=True, clock=clock), clock, 0.125, 400)
    # the rate counts from the first update (iteration 1): 50 iterations in 6.25 s
    assert lines[0] == (51, "[iter 51/1000] 5.1%, 8 it/s, ETA 1m59s")
    assert [it for it, _ in lines[1:]] == [291]  # then every 30 s


def test_first_line_after_ten_seconds_when_iterations_are_slow() -> None:
    clock = Clock()
    lines = run(PlainProgress(0, 1000, enabled=True, clock=clock), clock, 2.0, 30)
    assert lines[0] == (6, "[iter 6/1000] 0.6%, 0.5 it/s, ETA 33m08s")
    assert [it for it, _ in lines] == [6, 21]


def test_a_resumed_run_counts_five_percent_of_what_is_left() -> None:
    clock = Clock()
    lines = run(PlainProgress(800, 1000, enabled=True, clock=clock), clock, 0.125, 830)
    assert [it for it, _ in lines] == [811]


def test_with_a_terminal_nothing_is_printed_but_the_rate_is_kept() -> None:
    clock = Clock()
    progress = PlainProgress(0, 100, enabled=False, clock=clock)
    assert run(progress, clock, 0.5, 21) == []
    assert progress.rate(21) == pytest.approx(2.0) and progress.eta(21) == "40s"


def test_the_busy_note_follows_the_first_line_only(monkeypatch) -> None:
    monkeypatch.setattr(train_progress, "busy_cpus_note", lambda: "note: busy")
    clock = Clock()
    lines = run(PlainProgress(0, 100, enabled=True, interval=1.0, clock=clock), clock, 0.6, 10)
    assert lines[0][1].endswith("\nnote: busy")
    assert all("note" not in text for _, text in lines[1:]) and len(lines) > 1


def test_busy_note_only_beyond_twice_the_cpu_count() -> None:
    assert busy_cpus_note(4.0, 2) is None  # a run's own threads load every core
    assert busy_cpus_note(1.0, 16) is None
    note = busy_cpus_note(8.8, 2)
    assert note is not None and "load average 8.8 on 2 CPU cores" in note and "\n" not in note
