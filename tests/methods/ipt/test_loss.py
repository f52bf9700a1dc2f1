"""IPT's patch contrastive loss: closed-form toy cases and an explicit-loop reference."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from restore.errors import ConfigError
from restore.methods.ipt.loss import PatchContrastiveLoss, patch_contrastive_loss


def one_hot_images(directions: list[int], n: int = 3, dim: int = 4, scale: float = 1.0) -> torch.Tensor:
    """B images whose N patches all point along basis vector ``directions[j]`` (times a sign)."""
    feats = torch.zeros(len(directions), n, dim)
    for j, d in enumerate(directions):
        feats[j, :, abs(d)] = math.copysign(scale, d) if d != 0 else scale
    return feats


def loop_reference(f: torch.Tensor, tau: float, include_positive: bool = False) -> float:
    """The paper's formula term by term (double precision, plain Python sums)."""
    b, n, _ = f.shape
    f = f.double()
    total = 0.0
    for j in range(b):
        for i1 in range(n):
            for i2 in range(n):
                pos = math.exp(F.cosine_similarity(f[j, i1], f[j, i2], dim=0).item() / tau)
                den = sum(
                    math.exp(F.cosine_similarity(f[j, i1], f[k, i2], dim=0).item() / tau)
                    for k in range(b)
                    if include_positive or k != j
                )
                total += -math.log(pos / den)
    return total / (b * n * n)


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
def test_orthogonal_images_closed_form(tau: float) -> None:
    # positives: cosine 1; negatives: cosine 0 -> l = -1/tau + log(B - 1)
    for b in (2, 3, 4):
        feats = one_hot_images(list(range(b)), dim=4)
        assert patch_contrastive_loss(feats, tau).item() == pytest.approx(-1 / tau + math.log(b - 1), rel=1e-6)


def test_opposite_images_closed_form() -> None:
    # two images along +e1 / -e1 (scaled: the cosine ignores norms): negatives at cosine -1
    feats = torch.cat([one_hot_images([1], scale=3.0), one_hot_images([-1], scale=0.5)])
    tau = 0.2
    assert patch_contrastive_loss(feats, tau).item() == pytest.approx(-2 / tau, rel=1e-6)
    # InfoNCE form: l = -1/tau + log(e^{1/tau} + e^{-1/tau})
    expected = -1 / tau + math.log(math.exp(1 / tau) + math.exp(-1 / tau))
    assert patch_contrastive_loss(feats, tau, include_positive=True).item() == pytest.approx(expected, abs=1e-6)


def test_identical_images_give_zero_with_one_negative() -> None:
    # every cosine is the same -> numerator == the single negative -> l = 0
    feats = torch.randn(1, 5, 8).expand(2, 5, 8)
    assert patch_contrastive_loss(feats, 0.3).item() == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("include_positive", [False, True])
def test_matches_explicit_loop(include_positive: bool) -> None:
    torch.manual_seed(0)
    feats = torch.randn(3, 4, 6)
    got = patch_contrastive_loss(feats, 0.25, include_positive).item()
    assert got == pytest.approx(loop_reference(feats, 0.25, include_positive), rel=1e-5, abs=1e-6)


def test_separating_images_lowers_the_loss_and_gradients_flow() -> None:
    torch.manual_seed(1)
    base = torch.randn(4, 1, 16)
    feats = (base + 0.5 * torch.randn(4, 6, 16)).requires_grad_(True)
    loss_fn = PatchContrastiveLoss(temperature=0.5)
    before = loss_fn(feats)
    before.backward()
    assert feats.grad is not None and torch.isfinite(feats.grad).all() and feats.grad.abs().sum() > 0
    with torch.no_grad():
        after = loss_fn(feats - 0.5 * feats.grad / feats.grad.norm())
    assert after < before
    # features tighter around their image's direction -> lower loss
    assert loss_fn(base + 0.05 * torch.randn(4, 6, 16)) < before


def test_permutation_invariant_and_low_precision_input() -> None:
    torch.manual_seed(2)
    feats = torch.randn(3, 5, 7)
    ref = patch_contrastive_loss(feats)
    perm = feats[torch.tensor([2, 0, 1])]
    assert patch_contrastive_loss(perm).item() == pytest.approx(ref.item(), rel=1e-6)
    half = patch_contrastive_loss(feats.bfloat16())
    assert half.dtype == torch.float32 and half.item() == pytest.approx(ref.item(), rel=2e-2)


def test_errors() -> None:
    with pytest.raises(ValueError, match="at least 2 images"):
        patch_contrastive_loss(torch.randn(1, 4, 3))
    with pytest.raises(ValueError, match=r"\(B, N, D\)"):
        patch_contrastive_loss(torch.randn(4, 3))
    with pytest.raises(ConfigError, match="temperature"):
        PatchContrastiveLoss(temperature=0.0)
