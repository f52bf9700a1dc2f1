"""Slim layers and the slimmable N2N UNet: width 1.0 is the original network; width w is the
sub-network of the first channels, which equals the full network with the other channels zeroed."""

from __future__ import annotations

import math

import pytest
import torch
from key_listings import key_listing
from torch import nn

from restore.archs.n2n_unet import N2NUNet
from restore.archs.n2n_unet_slim import SlimN2NUNet
from restore.archs.slimmable import SlimConv2d, SlimConvTranspose2d, active_channels, at_width, slim_conv


def _randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model


def test_active_channels_is_ceil_with_float_noise_removed():
    assert active_channels(64, 0.25) == 16
    assert active_channels(32, 0.3) == 10  # 9.6 -> 10
    assert active_channels(70, 0.3) == 21  # 0.3 * 70 = 21.000000000000004 in floats
    assert active_channels(3, 0.1) == 1
    with pytest.raises(ValueError):
        active_channels(8, 0.0)


def test_slim_conv_uses_the_first_channels_of_each_input_group():
    conv = nn.Conv2d(6, 4, 3, padding=1)
    _randomise(conv)
    slim = slim_conv(conv, in_groups=[(4, True), (2, True)])
    slim.width = 0.5  # inputs: first 2 of group A, first 1 of group B; outputs: first 2
    x = torch.randn(1, 3, 5, 5)
    expected = nn.functional.conv2d(x, conv.weight[:2][:, [0, 1, 4]], conv.bias[:2], padding=1)
    assert torch.allclose(slim(x), expected, atol=1e-6)
    with pytest.raises(ValueError, match="expects 3 input channels"):
        slim(torch.randn(1, 6, 5, 5))


def test_fixed_groups_and_full_outputs_stay_whole():
    conv = _randomise(nn.Conv2d(3 + 8, 3, 1))
    slim = slim_conv(conv, in_groups=[(8, True), (3, False)], slim_out=False)
    slim.width = 0.25  # 2 of the 8 feature channels, all 3 image channels; all 3 outputs
    x = torch.randn(2, 5, 4, 4)
    expected = nn.functional.conv2d(x, conv.weight[:, [0, 1, 8, 9, 10]], conv.bias)
    assert torch.allclose(slim(x), expected, atol=1e-6)


def test_slim_deconv_slices_inputs_on_dim_0():
    deconv = _randomise(nn.ConvTranspose2d(4, 6, 2, stride=2))
    slim = SlimConvTranspose2d(4, 6, 2, stride=2)
    slim.load_state_dict(deconv.state_dict())
    slim.width = 0.5
    x = torch.randn(1, 2, 3, 3)
    expected = nn.functional.conv_transpose2d(x, deconv.weight[:2, :3], deconv.bias[:3], stride=2)
    assert torch.allclose(slim(x), expected, atol=1e-6)


def test_slim_layers_share_parameters_and_keys():
    conv = nn.Conv2d(4, 4, 3)
    slim = slim_conv(conv)
    assert slim.weight is conv.weight and slim.bias is conv.bias
    assert isinstance(slim, nn.Conv2d) and isinstance(slim, SlimConv2d)
    assert list(slim.state_dict()) == ["weight", "bias"]


def test_slim_unet_loads_the_official_keys_strictly():
    assert list(SlimN2NUNet().state_dict()) == list(key_listing("n2n_unet.json"))


@pytest.mark.parametrize("kwargs", [{}, {"residual": True}, {"pad_square": True}, {"in_nc": 1, "out_nc": 1}])
def test_slim_unet_at_full_width_is_the_unet_exactly(kwargs):
    plain = _randomise(N2NUNet(n_feature=8, **kwargs))
    slim = SlimN2NUNet(n_feature=8, **kwargs)
    slim.load_state_dict(plain.state_dict(), strict=True)
    x = torch.rand(2, kwargs.get("in_nc", 3), 64, 64)
    assert torch.equal(slim(x), plain(x))
    if kwargs.get("pad_square"):
        odd = x[..., :50, :45]
        assert torch.equal(slim.forward_any_size(odd), plain.forward_any_size(odd))
    with at_width(slim, 0.5):
        assert slim.width == 0.5
    assert slim.width == 1.0 and torch.equal(slim(x), plain(x))


def _zero_inactive(model: nn.Module, width: float, image_outputs: set[str]) -> None:
    """Zero the weights and biases of the output channels a width-``width`` sub-network drops
    (outputs ceil(width * C), written out here independently of the code under test)."""
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and name not in image_outputs:
                keep = math.ceil(round(width * m.out_channels, 6))
                out_dim = 1 if isinstance(m, nn.ConvTranspose2d) else 0
                m.weight.narrow(out_dim, keep, m.out_channels - keep).zero_()
                m.bias[keep:].zero_()


@pytest.mark.parametrize("width", [0.25, 0.5, 0.7])
def test_slim_unet_equals_the_masked_full_unet(width):
    """Dropped channels of a LeakyReLU network with zero weights and bias are exactly 0, so the
    full network with them zeroed computes what the sub-network computes."""
    slim = _randomise(SlimN2NUNet(n_feature=8), seed=1)
    masked = N2NUNet(n_feature=8)
    masked.load_state_dict(slim.state_dict())
    _zero_inactive(masked, width, {"nin_c"})
    x = torch.rand(1, 3, 32, 32)
    slim.set_width(width)
    out, ref = slim(x), masked(x)
    assert torch.allclose(out, ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))  # summation order only
    slim.set_width(1.0)
    assert not torch.allclose(out, slim(x), atol=1e-3)  # the narrow network is another function


def test_narrow_unet_trains_only_its_own_channels():
    slim = _randomise(SlimN2NUNet(n_feature=8))
    slim.set_width(0.5)
    slim(torch.rand(1, 3, 32, 32)).mean().backward()
    grad = slim.enc_conv1.weight.grad
    assert grad[:4, :4].abs().sum() > 0
    assert grad[4:].abs().sum() == 0 and grad[:, 4:].abs().sum() == 0
