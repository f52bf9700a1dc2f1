"""Every option file the README, the docs and the benchmarks name exists.

Option files moved into per-method folders once, and two stale paths survived in a benchmark
and in docs/export.md; a user copying a command from the docs gets "option file not found".
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPTION_PATH = re.compile(r"options/[\w./-]+\.yml")
#: Made-up names used as examples of the pattern, not as files to run.
EXAMPLES = {"options/mymethod/train/x.yml", "options/x.yml"}


def named_option_files() -> dict[str, list[str]]:
    sources = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "benchmarks").glob("*.py")),
               *sorted((ROOT / "restore").rglob("*.py"))]
    found: dict[str, list[str]] = {}
    for source in sources:
        for path in OPTION_PATH.findall(source.read_text(encoding="utf-8")):
            found.setdefault(path, []).append(str(source.relative_to(ROOT)))
    return found


def test_the_docs_name_option_files_at_all() -> None:
    # the scan itself works: the README's quickstart and the per-method option folders are named
    assert len(named_option_files()) > 20


def test_every_named_option_file_exists() -> None:
    missing = {path: where for path, where in named_option_files().items()
               if path not in EXAMPLES and not (ROOT / path).is_file()}
    assert not missing, missing
