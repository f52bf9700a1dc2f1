"""How one micro-batch becomes a loss: the part of training that methods replace.

The trainer owns everything else (data, optimiser, AMP, accumulation, clipping, EMA,
validation, checkpoints). A method with an unusual step (Neighbor2Neighbor's two sub-images
and regulariser, IPT's multi-task pre-training) subclasses :class:`TrainStep`, registers it under
kind ``train_step`` and is chosen with ``train.step: {type: NAME, ...}`` in the option file.

A step sees the run only through :class:`StepContext`, the few things a step needs; the
trainer provides them, and so can a test or another loop without building a trainer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sized
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from restore.archs.contract import input_keys
from restore.errors import ConfigError

Batch = dict[str, Any]
Criterion = Any  # callable (pred, target) -> (loss, {term: value}); the weighted sum of train.losses


class StepContext(Protocol):
    """What a training step may read of the run (the trainer implements it).

    ``model`` is the network as trained (possibly DDP-wrapped: use
    :func:`restore.archs.contract.unwrap` for attributes); ``criterion(pred, target)`` returns the
    weighted loss and its terms; ``progress`` is iterations done / total in [0, 1];
    ``batch_size`` is the per-rank micro-batch of ``datasets.train``; ``run_folder`` is where a
    step may keep what it computes once per run.
    """

    model: nn.Module
    criterion: Criterion
    train_set: Sized
    device: torch.device
    iteration: int
    options: Any  # the run's resolved options (read only)
    log: Any  # ``log.info(line)``: printed and copied to the run's train.log (rank 0)

    @property
    def progress(self) -> float: ...

    @property
    def total_iter(self) -> int: ...

    @property
    def batch_size(self) -> int: ...

    @property
    def accumulate(self) -> int: ...

    @property
    def world_size(self) -> int: ...

    @property
    def rank(self) -> int: ...

    @property
    def run_folder(self) -> Path: ...


class TrainStep:
    """Base class. ``__call__`` returns the loss to back-propagate and scalars to log.

    It runs inside the trainer's autocast context and once per micro-batch. Randomness should
    come from torch's global RNG (saved and restored with every checkpoint) so resumed runs
    stay exact.
    """

    def setup(self, ctx: StepContext) -> None:
        """Called once, after the model, losses, optimiser and datasets exist (check options here)."""

    def batch_sampler(self, ctx: StepContext, start: int) -> Iterable[list[Any]] | None:
        """The dataset keys of every micro-batch from sample ``start`` of this rank's stream on,
        for a step that chooses its own samples (DDA: a batch from every score class); None (the
        default) leaves it to the trainer's sampler. It must depend only on ``start`` and the
        step's settings, so a resumed run continues the same stream. Called once the run folder
        is open, after :meth:`setup` and any checkpoint load."""
        return None

    def __call__(self, model: nn.Module, batch: Batch, ctx: StepContext) -> tuple[Tensor, dict[str, float]]:
        raise NotImplementedError


class SupervisedStep(TrainStep):
    """``network(*inputs)`` against ``batch["target"]`` with the weighted losses."""

    def __call__(self, model: nn.Module, batch: Batch, ctx: StepContext) -> tuple[Tensor, dict[str, float]]:
        if "target" not in batch:
            raise ConfigError(
                "train.step 'supervised' needs a dataset with targets; this training set yields only "
                "inputs (use a self-supervised step)"
            )
        pred = model(*(batch[k] for k in input_keys(model)))
        return ctx.criterion(pred, batch["target"])
