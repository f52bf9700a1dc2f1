"""Iteration-based learning-rate schedules with a linear warm-up.

Each is a :class:`torch.optim.lr_scheduler.LambdaLR` stepped once per iteration, so its state
(``last_epoch`` = iterations done) round-trips through ``state_dict`` for exact resume. The
factor multiplies each parameter group's initial lr. During the first ``warmup_iter``
iterations the factor rises linearly from ``warmup_start`` to 1.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def _warmup(it: int, warmup_iter: int, warmup_start: float) -> float | None:
    if it < warmup_iter:
        return warmup_start + (1.0 - warmup_start) * it / warmup_iter
    return None


class WarmupConstant(LambdaLR):
    """Constant lr after the warm-up."""

    def __init__(self, optimizer: Optimizer, total_iter: int, warmup_iter: int = 0, warmup_start: float = 0.0) -> None:
        def factor(it: int) -> float:
            w = _warmup(it, warmup_iter, warmup_start)
            return 1.0 if w is None else w

        super().__init__(optimizer, factor)


class WarmupCosine(LambdaLR):
    """Cosine decay from the initial lr to ``eta_min`` (absolute) at ``total_iter``."""

    def __init__(
        self,
        optimizer: Optimizer,
        total_iter: int,
        warmup_iter: int = 0,
        warmup_start: float = 0.0,
        eta_min: float = 1e-6,
    ) -> None:
        base = [group["lr"] for group in optimizer.param_groups]
        span = max(1, total_iter - warmup_iter)

        def make(lr0: float):
            floor = eta_min / lr0 if lr0 > 0 else 0.0

            def factor(it: int) -> float:
                w = _warmup(it, warmup_iter, warmup_start)
                if w is not None:
                    return w
                progress = min(1.0, (it - warmup_iter) / span)
                return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

            return factor

        super().__init__(optimizer, [make(lr0) for lr0 in base])


class WarmupMultiStep(LambdaLR):
    """Multiply the lr by ``gamma`` at each milestone iteration."""

    def __init__(
        self,
        optimizer: Optimizer,
        total_iter: int,
        milestones: list[int],
        gamma: float = 0.5,
        warmup_iter: int = 0,
        warmup_start: float = 0.0,
    ) -> None:
        steps = sorted(milestones)

        def factor(it: int) -> float:
            w = _warmup(it, warmup_iter, warmup_start)
            if w is not None:
                return w
            return gamma ** sum(1 for m in steps if it >= m)

        super().__init__(optimizer, factor)


class WarmupExponential(LambdaLR):
    """Continuous exponential decay: lr * ``gamma ** (it / step_size)`` (WDNet's
    ``2e-4 * 0.5 ** (iter / 1e5)``), after the warm-up."""

    def __init__(
        self,
        optimizer: Optimizer,
        total_iter: int,
        gamma: float = 0.5,
        step_size: int = 100000,
        warmup_iter: int = 0,
        warmup_start: float = 0.0,
    ) -> None:
        if step_size <= 0:
            from restore.errors import ConfigError

            raise ConfigError(f"step_size must be > 0, got {step_size}")

        def factor(it: int) -> float:
            w = _warmup(it, warmup_iter, warmup_start)
            return w if w is not None else gamma ** (it / step_size)

        super().__init__(optimizer, factor)


class WarmupLinear(LambdaLR):
    """Flat, then linear decay to 0 at ``total_iter`` (LAB-Net's pix2pix-style schedule:
    constant for ``flat_iter`` iterations, then ``1 - (it - flat_iter) / (total_iter - flat_iter)``)."""

    def __init__(
        self,
        optimizer: Optimizer,
        total_iter: int,
        flat_iter: int = 0,
        warmup_iter: int = 0,
        warmup_start: float = 0.0,
    ) -> None:
        span = max(1, total_iter - flat_iter)

        def factor(it: int) -> float:
            w = _warmup(it, warmup_iter, warmup_start)
            if w is not None:
                return w
            return max(0.0, 1.0 - max(0, it - flat_iter) / span)

        super().__init__(optimizer, factor)
