"""TAPE-R stage 1 (task-agnostic pre-training): reconstruction loss + prior-consistency loss.

specs/tape.md 4.4 [R]: the prior-consistency ("disentangling") loss makes the Prior Embedding
Module's output for a degraded image, projected, close to the encoder's bottleneck tokens of the
clean image::

    L = L_rec(net(x), c) + prior_weight * mean |prior_proj(PEM(enc(x))) - stopgrad(enc(c))|

The clean pass shares the weights, runs without gradient and with stochastic depth off (the
target must not be noisy). The step never reads a task label (a mixture dataset with
``tag_tasks: false`` yields none). ``prior_weight: 0`` is the plain pre-training reading of
TAPE: use the supervised step then, with a network built without ``prior_loss``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from restore.archs.contract import unwrap
from restore.errors import ConfigError
from restore.methods.step import Batch, StepContext, TrainStep


class TapePriorStep(TrainStep):
    """``train.step: {type: tape_prior, prior_weight: 0.1}`` (registry ``tape_prior``).

    Args (all [R]):
        prior_weight: lambda_p (> 0).
        distance: ``l1`` (mean absolute difference, the spec's) or ``l2`` (mean squared).
        target: the clean image's tokens straight from the ``encoder`` (the spec's) or after the
            PEM (``prior``).
    """

    def __init__(self, prior_weight: float = 0.1, distance: Literal["l1", "l2"] = "l1",
                 target: Literal["encoder", "prior"] = "encoder") -> None:
        if not prior_weight > 0:
            raise ConfigError(f"tape_prior prior_weight must be > 0, got {prior_weight} "
                              "(for none use train.step 'supervised' and network prior_loss: false)")
        if distance not in ("l1", "l2") or target not in ("encoder", "prior"):
            raise ConfigError(f"tape_prior distance must be l1 or l2 and target encoder or prior, "
                              f"got {distance!r} and {target!r}")
        self.prior_weight, self.distance, self.target = prior_weight, distance, target

    def setup(self, ctx: StepContext) -> None:
        net = unwrap(ctx.model)
        if getattr(net, "prior_proj", None) is None or not hasattr(net, "forward_features"):
            raise ConfigError(f"train.step 'tape_prior' needs a TAPE-R network built with prior_loss: true, "
                              f"got {type(net).__name__}")

    def __call__(self, model: nn.Module, batch: Batch, ctx: StepContext) -> tuple[Tensor, dict[str, Tensor]]:
        net = unwrap(model)
        pred, tokens = model(batch["input"], return_prior=True)
        loss, logs = ctx.criterion(pred, batch["target"])
        was_training = net.training
        net.eval()
        try:
            with torch.no_grad():
                clean = net.forward_features(batch["target"], through_prior=self.target == "prior")
        finally:
            net.train(was_training)
        diff = tokens - clean.to(tokens.dtype)
        prior = diff.abs().mean() if self.distance == "l1" else diff.square().mean()
        logs = {**logs, "loss_prior": prior.detach()}
        return loss + self.prior_weight * prior, logs
