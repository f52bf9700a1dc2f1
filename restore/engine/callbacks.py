"""Callbacks: code that runs around the training loop without changing it.

Subclass :class:`Callback`, override what you need and pass instances to ``Trainer(callbacks=...)``.
Every method receives the trainer; ``trainer.iteration`` is the number of iterations done.
Setting ``trainer.stop_requested = True`` ends the run cleanly after the current iteration
(a checkpoint is written first), exactly as Ctrl-C or SIGTERM do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from restore.engine.trainer import Trainer


class Callback:
    def on_train_start(self, trainer: "Trainer") -> None:
        """After set-up (and resume), before the first iteration."""

    def on_iteration_end(self, trainer: "Trainer", logs: dict[str, float]) -> None:
        """After each optimiser step; ``logs`` holds the step's scalars (loss terms, lr)."""

    def on_validation_end(self, trainer: "Trainer", results: dict[str, Any]) -> None:
        """After validation; ``results`` maps set name -> EvalResult."""

    def on_checkpoint(self, trainer: "Trainer", path: Path) -> None:
        """After a training checkpoint is written (rank 0 only)."""

    def on_train_end(self, trainer: "Trainer") -> None:
        """After the last iteration (or a requested stop)."""
