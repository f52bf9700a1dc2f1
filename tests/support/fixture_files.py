"""Paths of the small data shipped in tests/fixtures, so that a clean clone runs these tests.

``keys/`` holds the official checkpoints' state_dict key listings (names, shapes, parameter
counts).
"""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
KEYS_DIR = FIXTURES / "keys"
