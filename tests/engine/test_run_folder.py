"""A run whose folder is deleted (or replaced by another run) mid-way writes nothing more."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tiny_run import write_options

from restore.config import load_options
from restore.engine.callbacks import Callback
from restore.engine.trainer import Trainer
from restore.errors import RestoreError


class DeleteRunFolder(Callback):
    def on_iteration_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        if trainer.iteration == 2:
            shutil.rmtree(trainer.exp.root)


def test_a_run_whose_folder_was_removed_stops_without_writing(tmp_path: Path) -> None:
    opts = load_options(write_options(tmp_path, "vanish", total=6, save=3))
    with pytest.raises(RestoreError, match="was removed or replaced while this run was using it"):
        Trainer(opts, callbacks=[DeleteRunFolder()], tensorboard=False).fit()
    assert not (tmp_path / "experiments" / "vanish").exists()  # not even recreated by the next save
