"""Slimmable WDNet: width 1.0 is WDNet exactly and loads its (official-layout) weights strictly;
width w is the sub-network of the first channels of every feature layer."""

from __future__ import annotations

import math

import pytest
import torch
from key_listings import key_listing
from torch import nn

from restore.methods.wdnet.arch import WDNet
from restore.methods.wdnet.slim import SlimWDNet

TINY = dict(channels=16, growth=8, dilations=[1, 3])


def randomized(net: nn.Module, seed: int = 0, std: float = 0.05) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return net.eval()


def test_state_dict_is_the_official_listing():
    state = SlimWDNet().state_dict()
    assert {k: list(v.shape) for k, v in state.items()} == key_listing("wdnet.json")
    assert list(state) == list(key_listing("wdnet.json"))


@pytest.mark.parametrize("kwargs", [{}, {"size_rule": "pad"}])
def test_full_width_is_wdnet_exactly(kwargs):
    plain = randomized(WDNet(**TINY, **kwargs))
    slim = SlimWDNet(**TINY, **kwargs).eval()
    slim.load_state_dict(plain.state_dict(), strict=True)
    x = torch.rand(2, 3, 36, 30)
    assert torch.equal(slim(x), plain(x))
    odd = x[..., :35, :29]  # the size rules around the core are WDNet's own
    assert torch.equal(slim.forward_any_size(odd), plain.forward_any_size(odd))


def test_official_init_is_kept():
    """WDNet's identity-at-the-centre init reaches the slim layers (they share the parameters)."""
    torch.manual_seed(0)
    a = WDNet(**TINY)
    torch.manual_seed(0)
    b = SlimWDNet(**TINY)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("width", [0.25, 0.5, 0.75])
def test_narrow_width_equals_wdnet_with_the_dropped_channels_zeroed(width):
    slim = randomized(SlimWDNet(**TINY), seed=2, std=0.1)
    masked = WDNet(**TINY).eval()
    masked.load_state_dict(slim.state_dict())
    with torch.no_grad():
        for name, m in masked.named_modules():
            if isinstance(m, nn.Conv2d) and name != "final.0.0":  # the 48 output bands stay whole
                keep = math.ceil(width * m.out_channels)
                m.weight[keep:].zero_()
                m.bias[keep:].zero_()
    x = torch.rand(1, 3, 32, 32)
    slim.set_width(width)
    with torch.no_grad():
        out, ref = slim(x), masked(x)
        assert torch.allclose(out, ref, rtol=1e-5, atol=1e-5)
        slim.set_width(1.0)
        assert not torch.allclose(out, slim(x), atol=1e-3)


def test_narrow_width_costs_less():
    from torch.utils.flop_counter import FlopCounterMode

    net = SlimWDNet(**TINY)
    x = torch.rand(1, 3, 32, 32)
    flops = {}
    for w in (0.25, 0.5, 1.0):
        net.set_width(w)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            net(x)
        flops[w] = counter.get_total_flops()
    assert flops[0.25] < 0.2 * flops[1.0] and flops[0.5] < 0.35 * flops[1.0]
