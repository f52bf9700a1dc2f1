"""The plain progress line: every N images (not too often) or every 30 s, with rate and ETA."""

from __future__ import annotations

import io

from restore.utils.progress import Progress, clock_text


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_every_n_images_with_rate_and_eta():
    clock, out = Clock(), io.StringIO()
    bar = Progress(20, "kodak", mode="lines", every=5, line_stream=out, clock=clock)
    for _ in range(20):
        clock.now += 3.0  # 3 s per image
        bar.update(1)
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines == [
        "kodak: 5/20 images (25%), 0.33 img/s, ETA 0:00:45",
        "kodak: 10/20 images (50%), 0.33 img/s, ETA 0:00:30",
        "kodak: 15/20 images (75%), 0.33 img/s, ETA 0:00:15",
        "kodak: 20/20 images in 0:01:00 (0.33 img/s)",
    ]


def test_a_slow_set_reports_every_30_seconds_and_a_fast_one_only_at_the_end():
    clock, out = Clock(), io.StringIO()
    slow = Progress(1000, "big", mode="lines", line_stream=out, clock=clock)  # every 100 images
    for _ in range(12):
        clock.now += 10.0
        slow.update(1)
    assert [ln.split(":")[1].split(" ")[1] for ln in out.getvalue().splitlines()] == ["3/1000", "6/1000", "9/1000", "12/1000"]
    out2 = io.StringIO()
    fast = Progress(50, "small", mode="lines", line_stream=out2, clock=clock)
    for _ in range(50):
        clock.now += 0.01
        fast.update(1)
    fast.close()
    assert out2.getvalue().splitlines() == ["small: 50/50 images in 0:00:00 (100.00 img/s)"]


def test_off_and_an_interrupted_set_print_no_final_line():
    clock, out = Clock(), io.StringIO()
    off = Progress(3, "x", mode="off", line_stream=out, clock=clock)
    off.update(3)
    off.close()
    cut = Progress(3, "y", mode="lines", line_stream=out, clock=clock)
    cut.update(1)
    cut.close()
    assert out.getvalue() == ""


def test_clock_text():
    assert clock_text(0) == "0:00:00" and clock_text(83.4) == "0:01:23" and clock_text(3725) == "1:02:05"
