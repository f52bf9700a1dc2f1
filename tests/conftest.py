"""Shared fixtures: the large real data sets in ../shared/data (skipped cleanly when absent).

The small data the tests need everywhere (key listings, the calibration images) is shipped in
tests/fixtures instead (see support/fixture_files.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Helpers shared by test files (``from tiny_run import ...``): plain modules in tests/support/.
SUPPORT = Path(__file__).resolve().parent / "support"
if str(SUPPORT) not in sys.path:
    sys.path.insert(0, str(SUPPORT))


def shared_data_dir() -> Path:
    """../shared/data beside the checkout, or $RESTORE_SHARED_DATA."""
    env = os.environ.get("RESTORE_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not (path / "kodak24").is_dir():
        pytest.skip(f"shared data not found at {path} (set RESTORE_SHARED_DATA)")
    return path
