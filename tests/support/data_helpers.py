"""Helpers for the data tests: write small images with OpenCV directly (independent of our
writer) and check the one-line error contract.

Imported as a plain module (``from data_helpers import ...``): tests/conftest.py puts
tests/support/ on ``sys.path``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest


def save_rgb(path: Path, rgb: np.ndarray) -> Path:
    """Write an (H,W,3) RGB / (H,W) grey / (H,W,4) RGBA array with cv2 (BGR on disk)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if rgb.ndim == 3 and rgb.shape[2] == 3:
        out = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    elif rgb.ndim == 3 and rgb.shape[2] == 4:
        out = cv2.cvtColor(rgb, cv2.COLOR_RGBA2BGRA)
    else:
        out = rgb
    assert cv2.imwrite(str(path), out), path
    return path


def random_rgb(rng: np.random.Generator, h: int, w: int, high: int = 256) -> np.ndarray:
    return rng.integers(0, high, size=(h, w, 3), dtype=np.uint8)


def assert_one_line(excinfo: pytest.ExceptionInfo, *parts: str) -> str:
    """The error message is a single line and mentions every ``part``."""
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for part in parts:
        assert part in msg, (part, msg)
    return msg
