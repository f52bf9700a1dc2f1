"""The 2-level Haar packet of WDNet: filters, band order, orthonormality, perfect reconstruction."""

from __future__ import annotations

import pytest
import torch

from restore.methods.wdnet.wavelet import HaarPacket, haar_packet_filters


def haar1(x: torch.Tensor) -> list[torch.Tensor]:
    """One stride-2 Haar split written out by hand: [LL, diff along W, diff along H, diagonal]."""
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    return [(a + b + c + d) / 2, (a - b + c - d) / 2, (a + b - c - d) / 2, (a - b - c + d) / 2]


def packet_of_packet(x: torch.Tensor) -> torch.Tensor:
    """The spec's second description: split, then split each output again; band f's children are
    4f..4f+3; channels band-major (3 s + colour)."""
    bands = [child for band in haar1(x) for child in haar1(band)]  # index 4 f + c
    return torch.stack(bands, 1).flatten(1, 2)  # (B, 16, 3, h, w) -> (B, 48, h, w)


def test_filters_are_orthonormal_with_entries_a_quarter():
    f = haar_packet_filters(2)
    assert f.shape == (16, 4, 4) and f.dtype == torch.float32
    assert torch.equal(f.abs(), torch.full_like(f, 0.25))
    basis = f.reshape(16, 16).double()
    torch.testing.assert_close(basis @ basis.T, torch.eye(16, dtype=torch.float64), rtol=0, atol=1e-12)


def test_band_order_golden_filters():
    f = haar_packet_filters(2) * 4
    ones = torch.ones(4, 4)
    coarse_w = torch.tensor([[1.0, 1, -1, -1]] * 4)  # s = 1: f = 0 (LL), c = 1 (diff along W, 2-px blocks)
    fine_w = torch.tensor([[1.0, -1, 1, -1]] * 4)  # s = 4: f = 1 (diff along W), c = 0 (LL)
    assert torch.equal(f[0], ones)  # LL-LL = 4 x the 4x4 block mean
    assert torch.equal(f[1], coarse_w)
    assert torch.equal(f[2], coarse_w.T)  # diff along H at the coarse level
    assert torch.equal(f[4], fine_w)
    assert torch.equal(f[8], fine_w.T)
    assert torch.equal(f[5], coarse_w * fine_w)  # kron(g1, g1)
    assert torch.equal(f[15], torch.tensor([[1.0, -1, -1, 1], [-1, 1, 1, -1], [-1, 1, 1, -1], [1, -1, -1, 1]]))


def test_one_shot_transform_equals_the_packet_of_packet_and_is_band_major():
    x = torch.rand(2, 3, 16, 24, dtype=torch.float64)
    wt = HaarPacket().double()
    y = wt(x)
    assert y.shape == (2, 48, 4, 6)
    torch.testing.assert_close(y, packet_of_packet(x), rtol=0, atol=1e-12)
    block_mean = x.unfold(2, 4, 4).unfold(3, 4, 4).mean((-1, -2))  # (B, 3, 4, 6)
    torch.testing.assert_close(y[:, 0:3], 4 * block_mean)  # channels 0..2: LL-LL of R, G, B


def test_perfect_reconstruction_both_ways():
    wt = HaarPacket()
    x = torch.rand(2, 3, 32, 20)
    torch.testing.assert_close(wt.inverse(wt(x)), x, rtol=0, atol=1e-6)
    y = torch.randn(1, 48, 5, 3)
    torch.testing.assert_close(wt(wt.inverse(y)), y, rtol=0, atol=1e-5)
    assert wt(x).square().sum().item() == pytest.approx(x.square().sum().item(), rel=1e-5)  # Parseval


def test_other_depths_follow_the_same_rule():
    f1, f3 = haar_packet_filters(1), haar_packet_filters(3)
    assert f1.shape == (4, 2, 2) and f3.shape == (64, 8, 8)
    assert torch.equal(f3[4 * 5 + 2], torch.kron(f1[2], haar_packet_filters(2)[5]))
    basis = f3.reshape(64, 64).double()
    torch.testing.assert_close(basis @ basis.T, torch.eye(64, dtype=torch.float64), rtol=0, atol=1e-12)


def test_no_parameters_and_nothing_in_the_state_dict():
    wt = HaarPacket()
    assert list(wt.parameters()) == [] and wt.state_dict() == {}
    assert wt.weight.shape == (48, 1, 4, 4)


def test_bad_shapes_are_refused():
    wt = HaarPacket()
    with pytest.raises(ValueError, match="multiples of 4"):
        wt(torch.rand(1, 3, 10, 12))
    with pytest.raises(ValueError, match="3 channels"):
        wt(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="48 channels"):
        wt.inverse(torch.rand(1, 47, 2, 2))
