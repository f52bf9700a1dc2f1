"""Paths of the small data shipped in tests/fixtures, so that a clean clone runs these tests.

``keys/`` holds the official checkpoints' state_dict key listings (names, shapes, parameter
counts); ``kodak24/kodim07.png`` and ``set14/baboon.png`` are the two images the metric
reference values of metrics.md §6 are defined on, byte-for-byte the files of ../shared/data.
"""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
KEYS_DIR = FIXTURES / "keys"
KODAK_DIR = FIXTURES / "kodak24"  # one Kodak24 image: kodim07.png
KODIM07 = KODAK_DIR / "kodim07.png"  # 768x512 RGB
BABOON = FIXTURES / "set14" / "baboon.png"  # Set14's 500x480 RGB baboon
