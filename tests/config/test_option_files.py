"""Every shipped option file loads and validates; the ones whose data is here build datasets."""

from __future__ import annotations

from pathlib import Path

import pytest

from restore.cli.main import main
from restore.config import load_options

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(p for p in (ROOT / "options").rglob("*.yml") if "base" not in p.relative_to(ROOT / "options").parts)


def test_there_are_examples_for_every_task():
    tasks = {load_options(p).task for p in FILES}
    assert {"denoise", "derain", "demoire", "shadow"} <= tasks


def test_files_sit_in_their_method_folder():
    """options/<method>/{train,test,infer}/ (a method of restore/methods, or the generic unet),
    besides the shared base/ and quickstart/; every method has option files."""
    methods = {p.name for p in (ROOT / "restore" / "methods").iterdir() if (p / "__init__.py").is_file()} | {"unet"}
    folders = {p.relative_to(ROOT / "options").parent.parts for p in FILES}
    misplaced = [f for f in folders if f != ("quickstart",)
                 and not (len(f) == 2 and f[0] in methods and f[1] in {"train", "test", "infer"})]
    assert not misplaced
    assert {f[0] for f in folders} == methods | {"quickstart"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT / "options")))
def test_option_file_validates(path):
    opt = load_options(path)
    assert opt.name and opt.network is not None
    if path.parent.name != "infer":  # batch-restore files need only a network (and infer settings)
        assert opt.datasets.train is not None or opt.datasets.test


def test_gauss25_example_builds_its_datasets(shared_data, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)  # option-file paths are relative to the project root
    if not Path("../shared/data").resolve() == shared_data.resolve():
        pytest.skip("the example points at ../shared/data, which is elsewhere here")
    assert main(["train", "-opt", "options/unet/train/denoise_gauss25_unet.yml", "--check"]) == 0
    assert "valid" in capsys.readouterr().out
