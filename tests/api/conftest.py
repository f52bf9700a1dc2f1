"""Fixtures of the Python API tests: the six small networks with random weights, and images.

``case`` is parametrised over the six architectures of :mod:`api_nets` (one option file and
one plain-state_dict weights file each, written once per session). Images: a generated one
(so these tests never skip) and crops of Kodak24 photographs from the shared data (skipped
cleanly when it is absent); masks are hand-placed rectangles, or the shared data's real
shadow masks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from api_nets import CASES, write_case

import restore


@pytest.fixture(scope="session")
def cases_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api_cases")


@pytest.fixture(scope="session")
def case_files(cases_dir: Path) -> dict[str, tuple[Path, Path]]:
    return {name: write_case(cases_dir, name) for name in CASES}


@pytest.fixture(scope="session", params=list(CASES))
def case(request: pytest.FixtureRequest, case_files: dict[str, tuple[Path, Path]]) -> tuple[str, restore.Model]:
    options, weights = case_files[request.param]
    return request.param, restore.load(options, weights=weights)
