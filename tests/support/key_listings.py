"""The official state_dict key listings, shipped in tests/fixtures/keys."""

from __future__ import annotations

import json
from typing import Any

from fixture_files import KEYS_DIR


def key_listing(name: str) -> dict[str, Any]:
    """``keys/<name>`` as parsed JSON: key -> shape, or ``state_dict``, parameter counts and ``meta``."""
    return json.loads((KEYS_DIR / name).read_text())
