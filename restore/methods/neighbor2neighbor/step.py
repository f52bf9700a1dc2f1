"""Neighbor2Neighbor training: learn to denoise from noisy images alone.

Chosen with ``train.step: {type: neighbor2neighbor}``; the trainer does the rest (data,
optimiser, schedule, EMA, checkpoints, validation). Only ``batch["input"]`` is read, so the
training set may be a folder of noisy photos with no clean image anywhere (``noisy_folder``),
or clean images with synthetic noise (``synthetic_noise``, whose target is ignored).

Per step, with a fresh sub-sampler draw (:mod:`restore.methods.neighbor2neighbor.loss`):
``out = f(g1(y))``, ``tgt = g2(y)``, ``f(y)`` under ``no_grad`` with the same train-mode network,
and the loss ``lambda1 * rec + lambda2 * gamma * reg``. The regulariser weight ``gamma`` ramps as
the official code does: ``gamma = epoch / n_epochs * increase_ratio`` with the epoch counted from
1 and constant within an epoch (``ramp: epoch``), or smoothly per iteration (``ramp: linear``).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from restore.archs.contract import input_keys, size_multiple, unwrap
from restore.errors import ConfigError
from restore.methods.neighbor2neighbor.loss import NeighborSubsampler, neighbor2neighbor_loss
from restore.methods.step import Batch, StepContext, TrainStep


class Neighbor2NeighborStep(TrainStep):
    """Args (``train.step``):
        lambda1, lambda2: weights of the reconstruction and regulariser terms (official: 1, 1).
        increase_ratio: the regulariser weight reached at the end of training (the paper's gamma, 2).
        ramp: ``epoch`` (official, a step per epoch) or ``linear`` (per iteration).
        epoch_length: iterations per epoch for the ramp; default: the training set size divided by
            the samples one iteration consumes on one rank (44,328 ImageNet images at batch 4 give
            11,082, the official recipe's epoch).
    """

    def __init__(
        self,
        lambda1: float = 1.0,
        lambda2: float = 1.0,
        increase_ratio: float = 2.0,
        ramp: Literal["epoch", "linear"] = "epoch",
        epoch_length: int | None = None,
    ) -> None:
        if epoch_length is not None and epoch_length < 1:
            raise ConfigError(f"train.step.epoch_length must be >= 1, got {epoch_length}")
        self.lambda1, self.lambda2, self.increase_ratio = lambda1, lambda2, increase_ratio
        self.ramp, self.epoch_length = ramp, epoch_length
        self.total_iter = 1
        self._multiple = 1

    def setup(self, ctx: StepContext) -> None:
        net = unwrap(ctx.model)
        if input_keys(net) != ("input",):
            raise ConfigError(
                f"train.step 'neighbor2neighbor' feeds the network one noisy image; network "
                f"{type(net).__name__} takes {input_keys(net)}"
            )
        self._multiple = size_multiple(net)
        crop = getattr(ctx.train_set, "crop_size", None)
        if crop is not None and crop % (2 * self._multiple):
            raise ConfigError(
                f"datasets.train.crop_size {crop}: Neighbor2Neighbor trains on half-size sub-images, so the "
                f"crop must be a multiple of {2 * self._multiple} for {type(net).__name__}"
            )
        self.total_iter = ctx.total_iter
        if self.epoch_length is None:
            per_iteration = ctx.batch_size * ctx.accumulate
            per_rank = math.ceil(len(ctx.train_set) / ctx.world_size)
            self.epoch_length = max(1, per_rank // per_iteration)

    def gamma(self, iteration: int) -> float:
        """Regulariser weight at ``iteration`` (0-based count of finished iterations)."""
        if self.ramp == "linear":
            return (iteration + 1) / self.total_iter * self.increase_ratio
        length = self.epoch_length or 1
        n_epochs = math.ceil(self.total_iter / length)
        return (iteration // length + 1) / n_epochs * self.increase_ratio

    def __call__(self, model: nn.Module, batch: Batch, ctx: StepContext) -> tuple[Tensor, dict[str, float]]:
        y = batch["input"]
        h, w = y.shape[-2:]
        if h % (2 * self._multiple) or w % (2 * self._multiple):
            raise ConfigError(
                f"Neighbor2Neighbor needs training images whose sides are multiples of {2 * self._multiple}, "
                f"got {h}x{w}; set datasets.train.crop_size"
            )
        gamma = self.gamma(ctx.iteration)
        sub = NeighborSubsampler.like(y)
        noisy1, noisy2 = sub(y)
        with torch.no_grad():
            denoised1, denoised2 = sub(unwrap(model)(y))
        out = model(noisy1)
        total, rec, reg = neighbor2neighbor_loss(out, noisy2, denoised1 - denoised2, gamma, self.lambda1, self.lambda2)
        return total, {"loss_rec": rec.detach(), "loss_reg": reg.detach(), "gamma": gamma}
