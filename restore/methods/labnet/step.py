"""Training LAB-Net in OpenCV's 8-bit LAB space (``train.step: {type: labnet}``).

The official code feeds the network LAB codes / 255 and computes its loss against the LAB
target; the framework's datasets yield RGB, so this step converts both with OpenCV (uint8, not
differentiable, hence outside the network) and applies ``train.losses`` to the LAB tensors
(the official terms are in :mod:`restore.methods.labnet.loss`).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from restore.archs.contract import unwrap
from restore.errors import ConfigError
from restore.methods.step import Batch, StepContext, TrainStep


class LabSpaceStep(TrainStep):
    """``train.step: {type: labnet}``: input and target to OpenCV 8-bit LAB / 255, the network
    run as ``model(lab, mask, lab=True)`` (train-mode mask threshold), ``train.losses`` in LAB.

    The conversion is done per batch with OpenCV on the CPU (a few ms per 256x256 image).
    """

    def setup(self, ctx: StepContext) -> None:
        net = unwrap(ctx.model)
        if not hasattr(net, "forward_lab"):
            raise ConfigError(
                f"train.step 'labnet' trains a network that works in OpenCV LAB (type: labnet); "
                f"got {type(net).__name__}"
            )

    def __call__(self, model: nn.Module, batch: Batch, ctx: StepContext) -> tuple[Tensor, dict[str, Any]]:
        from restore.methods.labnet.lab import rgb_to_lab8

        missing = [k for k in ("target", "mask") if k not in batch]
        if missing:
            raise ConfigError(f"train.step 'labnet' needs a dataset with {' and '.join(missing)} (e.g. shadow_folder)")
        pred = model(rgb_to_lab8(batch["input"]), batch["mask"], lab=True)
        return ctx.criterion(pred, rgb_to_lab8(batch["target"]))
