"""Timing shared by the hand-run benchmarks (imported as a sibling module: run them as
``python benchmarks/<name>.py``)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch


def median_seconds(fn: Callable[[], object], repeats: int, cuda: bool, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` untimed ones; with
    ``cuda`` the device is synchronised around each call so kernels are counted."""
    times = []
    for i in range(repeats + warmup):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Median seconds of each call, alternating them so that load changes hit all alike, after one
    untimed call each; also the last outputs."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    outputs = {k: fn() for k, fn in fns.items()}
    for _ in range(repeats):
        for k, fn in fns.items():
            start = time.perf_counter()
            outputs[k] = fn()
            times[k].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}, outputs
