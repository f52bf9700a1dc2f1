"""The official state_dict key listings in ../shared/specs/keys (a test skips when one is absent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

KEYS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "specs" / "keys"


def key_listing(name: str) -> dict[str, Any]:
    """``keys/<name>`` as parsed JSON, or skip the calling test."""
    path = KEYS_DIR / name
    if not path.is_file():
        pytest.skip(f"key listing not found at {path}")
    return json.loads(path.read_text())
