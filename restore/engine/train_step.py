"""How one micro-batch becomes a loss: the part of training that methods replace.

The trainer owns everything else (data, optimiser, AMP, accumulation, clipping, EMA,
validation, checkpoints). A method with an unusual step (Neighbor2Neighbor's two sub-images
and regulariser, IPT's multi-task pre-training) subclasses :class:`TrainStep`, registers it under
kind ``train_step`` and is chosen with ``train.step: {type: NAME, ...}`` in the option file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from restore.engine.network import input_keys

if TYPE_CHECKING:
    from restore.engine.trainer import Trainer

Batch = dict[str, Any]


class TrainStep:
    """Base class. ``__call__`` returns the loss to back-propagate and scalars to log.

    It runs inside the trainer's autocast context and once per micro-batch; ``trainer.progress``
    (iterations done / total, in [0, 1]) drives ramps, ``trainer.criterion`` is the weighted sum
    of ``train.losses``. Randomness should come from torch's global RNG (saved and restored
    with every checkpoint) so resumed runs stay exact.
    """

    def setup(self, trainer: "Trainer") -> None:
        """Called once, after the model, losses, optimiser and datasets exist (check options here)."""

    def __call__(self, model: nn.Module, batch: Batch, trainer: "Trainer") -> tuple[Tensor, dict[str, float]]:
        raise NotImplementedError


class SupervisedStep(TrainStep):
    """``network(*inputs)`` against ``batch["target"]`` with the weighted losses."""

    def __call__(self, model: nn.Module, batch: Batch, trainer: "Trainer") -> tuple[Tensor, dict[str, float]]:
        if "target" not in batch:
            from restore.errors import ConfigError

            raise ConfigError(
                "train.step 'supervised' needs a dataset with targets; this training set yields only "
                "inputs (use a self-supervised step)"
            )
        pred = model(*(batch[k] for k in input_keys(model)))
        return trainer.criterion(pred, batch["target"])
