"""The training criterion: a weighted sum of named loss terms (``train.losses``)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class WeightedSum(nn.Module):
    """``sum_i weight_i * loss_i(pred, target)``; also returns each term for logging.

    Terms with the same loss name are logged as ``loss_<name>``, ``loss_<name>_1``, ...
    An empty sum is allowed (a train step with its own objective, such as Neighbor2Neighbor's,
    sets ``losses: []``) but calling it is a configuration error.
    """

    def __init__(self, terms: Sequence[tuple[str, nn.Module, float]]) -> None:
        super().__init__()
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
        if not self.names:
            from restore.errors import ConfigError

            raise ConfigError("train.losses is empty, but this train step needs at least one loss term")
        total: Tensor | None = None
        logs: dict[str, Tensor] = {}
        for name, loss, weight in zip(self.names, self.losses, self.weights):
            value = loss(pred, target)
            logs[name] = value.detach()
            total = weight * value if total is None else total + weight * value
        assert total is not None
        return total, logs
