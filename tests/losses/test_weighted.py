"""The training criterion: weighted loss terms, named for logging."""

from __future__ import annotations

import pytest
import torch

from restore.errors import ConfigError
from restore.losses.pixel import L1Loss, L2Loss
from restore.losses.weighted import WeightedSum


def test_weighted_total_and_per_term_logs():
    pred, target = torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5)
    total, logs = WeightedSum([("l1", L1Loss(), 2.0), ("l2", L2Loss(), 1.0), ("l1", L1Loss(), 0.5)])(pred, target)
    assert set(logs) == {"loss_l1", "loss_l2", "loss_l1_1"}
    assert float(total) == pytest.approx(2.0 * 0.5 + 0.25 + 0.5 * 0.5)


def test_an_empty_sum_is_allowed_but_not_callable():
    empty = WeightedSum([])  # steps with their own objective set `losses: []`
    with pytest.raises(ConfigError, match="train.losses is empty"):
        empty(torch.zeros(1), torch.zeros(1))
