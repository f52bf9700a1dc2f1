"""datasets/README.md: every YAML snippet passes the option validator (keys, types, protocols)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from restore.config import load_options

README = Path(__file__).resolve().parents[2] / "datasets" / "README.md"
SNIPPETS = re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_snippets():
    assert len(SNIPPETS) >= 15


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_snippet_validates(tmp_path, index):
    path = tmp_path / "snippet.yml"
    path.write_text("name: readme_snippet\n" + SNIPPETS[index], encoding="utf-8")
    options = load_options(path)
    sets = ([options.datasets.train] if options.datasets.train else []) + [
        *options.datasets.val.values(), *options.datasets.test.values()
    ]
    assert sets
    for s in sets:
        phase = s.dataset.args.get("phase", "train")
        assert (phase == "train") == (s in ([options.datasets.train] if options.datasets.train else []))
