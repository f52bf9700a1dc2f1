"""The training criterion: a weighted sum of named loss terms (``train.losses``)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class WeightedSum(nn.Module):
    """``sum_i weight_i * loss_i(pred, target)``; also returns each term for logging.

    Terms with the same loss name are logged as ``loss_<name>``, ``loss_<name>_1``, ...
    """

    def __init__(self, terms: Sequence[tuple[str, nn.Module, float]]) -> None:
        super().__init__()
        if not terms:
            raise ValueError("at least one loss term is needed")
        names: list[str] = []
        for name, _, _ in terms:
            base, k = f"loss_{name}", 1
            label = base
            while label in names:
                label, k = f"{base}_{k}", k + 1
            names.append(label)
        self.names = names
        self.losses = nn.ModuleList(module for _, module, _ in terms)
        self.weights = [float(w) for _, _, w in terms]

    def forward(self, pred: Tensor, target: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        total: Tensor | None = None
        logs: dict[str, Tensor] = {}
        for name, loss, weight in zip(self.names, self.losses, self.weights):
            value = loss(pred, target)
            logs[name] = value.detach()
            total = weight * value if total is None else total + weight * value
        assert total is not None
        return total, logs
