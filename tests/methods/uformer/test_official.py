"""restore's Uformer against the op-for-op transcription of the official network (official.py):
the same random weights, both ``img_size`` builds, modulators and shifted windows at every level."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from restore.methods.uformer.arch import Uformer

from .official import official_test, official_uformer

SMALL = dict(embed_dim=8, depths=[2] * 9, num_heads=[1, 2, 4, 8, 8, 8, 4, 2, 1], modulator=True, drop_path_rate=0.0)


def randomized(net: Uformer) -> Uformer:
    """Weights away from the official init (unit LayerNorms, zero biases), so every term shows."""
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return net.eval()


@pytest.mark.parametrize("img_size", [128, 256])
def test_network_equals_the_official_transcription(img_size: int) -> None:
    net = randomized(Uformer(img_size=img_size, **SMALL))
    shifted = [blk.shift_size > 0 for blk in net.conv.blocks]
    assert shifted == [False, img_size == 256]  # spec 4.3: only the 256 build shifts the bottleneck
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        ours, theirs = net(x), official_uformer(net.state_dict(), x, img_size)
    assert (theirs - x).abs().max() > 0.05  # the network does something visible
    torch.testing.assert_close(ours, theirs, atol=2e-5, rtol=1e-5)


def test_any_size_equals_the_official_test_script() -> None:
    net = randomized(Uformer(**SMALL))
    x = torch.rand(1, 3, 70, 100)
    with torch.no_grad():
        ours = net.forward_any_size(x).clamp(0, 1)
    torch.testing.assert_close(ours, official_test(partial(official_uformer, net.state_dict()), x), atol=2e-5, rtol=1e-5)
