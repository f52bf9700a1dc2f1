"""Callbacks: code that runs around the training loop without changing it.

Subclass :class:`Callback`, override what you need and pass instances to ``Trainer(callbacks=...)``.
Every method receives the run as a :class:`CallbackRun` (the trainer implements it);
``run.iteration`` is the number of iterations done. Setting ``run.stop_requested = True`` ends
the run cleanly after the current iteration (a checkpoint is written first), exactly as Ctrl-C
or SIGTERM do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from torch import nn

from restore.engine.experiment import ExperimentDir


class CallbackRun(Protocol):
    """What a callback may read (and, for ``stop_requested``, set) of a training run."""

    iteration: int
    stop_requested: bool
    model: nn.Module
    exp: ExperimentDir  # the run folder: exp.root, exp.checkpoints, ...

    @property
    def progress(self) -> float: ...


class Callback:
    def on_train_start(self, run: CallbackRun) -> None:
        """After set-up (and resume), before the first iteration."""

    def on_iteration_end(self, run: CallbackRun, logs: dict[str, float]) -> None:
        """After each optimiser step; ``logs`` holds the step's scalars (loss terms, lr)."""

    def on_validation_end(self, run: CallbackRun, results: dict[str, Any]) -> None:
        """After validation; ``results`` maps set name -> EvalResult."""

    def on_checkpoint(self, run: CallbackRun, path: Path) -> None:
        """After a training checkpoint is written (rank 0 only)."""

    def on_train_end(self, run: CallbackRun) -> None:
        """After the last iteration (or a requested stop)."""
