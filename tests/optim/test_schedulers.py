"""Learning-rate schedules: warm-up then the named decay, as factors of the initial lr."""

from __future__ import annotations

import pytest
import torch

from restore.optim.schedulers import WarmupConstant, WarmupCosine, WarmupExponential, WarmupLinear, WarmupMultiStep


def lrs(make, n: int) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2e-4)
    sched = make(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_exponential_is_wdnets_continuous_halving():
    values = lrs(lambda o: WarmupExponential(o, total_iter=400, gamma=0.5, step_size=100), 301)
    assert values[0] == pytest.approx(2e-4)
    assert values[50] == pytest.approx(2e-4 * 0.5**0.5)
    assert values[100] == pytest.approx(1e-4) and values[300] == pytest.approx(2.5e-5)


def test_multistep_halves_after_each_milestone_iteration():
    values = lrs(lambda o: WarmupMultiStep(o, total_iter=100, milestones=[19, 39], gamma=0.5), 40)
    assert values[18] == pytest.approx(2e-4) and values[19] == pytest.approx(1e-4)
    assert values[38] == pytest.approx(1e-4) and values[39] == pytest.approx(5e-5)


def test_warmup_then_constant_and_cosine_end():
    assert lrs(lambda o: WarmupConstant(o, total_iter=10, warmup_iter=4), 6) == pytest.approx(
        [0.0, 5e-5, 1e-4, 1.5e-4, 2e-4, 2e-4])
    values = lrs(lambda o: WarmupCosine(o, total_iter=10, eta_min=1e-6), 11)
    assert values[0] == pytest.approx(2e-4) and values[10] == pytest.approx(1e-6)
    assert values[5] == pytest.approx(1e-6 + (2e-4 - 1e-6) / 2)


def test_linear_is_flat_then_decays_to_zero():
    values = lrs(lambda o: WarmupLinear(o, total_iter=10, flat_iter=4), 11)
    assert values[:5] == pytest.approx([2e-4] * 5)
    assert values[7] == pytest.approx(2e-4 * (1 - 3 / 6)) and values[10] == pytest.approx(0.0)
