"""WDNet's wavelet-domain loss terms, against the formulas of the official recipe written out."""

from __future__ import annotations

import pytest
import torch

from restore.errors import ConfigError
from restore.methods.wdnet.loss import WaveletL1Loss, WaveletTextureLoss
from restore.methods.wdnet.wavelet import haar_packet_filters


def coefficients(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 16, 3, h, w): every 4x4 block dotted with every packet filter."""
    blocks = x.unfold(2, 4, 4).unfold(3, 4, 4)  # (B, 3, h, w, 4, 4)
    return torch.einsum("bchwyx,syx->bschw", blocks, haar_packet_filters(2).to(x.dtype))


def test_low_and_high_band_l1():
    pred, target = torch.rand(2, 3, 16, 12), torch.rand(2, 3, 16, 12)
    cp, ct = coefficients(pred), coefficients(target)
    low = (cp[:, 0] - ct[:, 0]).abs().mean()
    high = (cp[:, 1:] - ct[:, 1:]).abs().mean()
    torch.testing.assert_close(WaveletL1Loss("low")(pred, target), low)
    torch.testing.assert_close(WaveletL1Loss("high")(pred, target), high)
    torch.testing.assert_close(WaveletL1Loss("all")(pred, target), (low + 15 * high) / 16)
    with pytest.raises(ConfigError, match="bands"):
        WaveletL1Loss("mid")


def test_texture_hinge():
    pred, target = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    energy = lambda x: coefficients(x)[:, 1:].square().sum(2)  # noqa: E731  (B, 15, h, w)
    expected = torch.relu(1.2 * energy(target) - energy(pred)).mean()
    torch.testing.assert_close(WaveletTextureLoss()(pred, target), expected)
    # a prediction with at least 1.2x the target's detail energy everywhere costs nothing
    smooth = torch.full_like(target, 0.5)
    assert WaveletTextureLoss()(target * 2, target).item() == 0.0
    assert WaveletTextureLoss()(smooth, target).item() > 0.0


def test_gradients_and_no_state():
    pred = torch.rand(1, 3, 8, 8, requires_grad=True)
    (WaveletL1Loss()(pred, torch.rand(1, 3, 8, 8)) + WaveletTextureLoss()(pred, torch.rand(1, 3, 8, 8))).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert WaveletL1Loss().state_dict() == {} and WaveletTextureLoss().state_dict() == {}
