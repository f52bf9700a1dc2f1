"""The N2N UNet against the official key listing, parameter count and size rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from key_listings import key_listing

from restore.archs.n2n_unet import N2NUNet
from restore.engine.checkpoint import load_weights
from restore.errors import ConfigError


@pytest.fixture(scope="module")
def official_keys() -> dict[str, list[int]]:
    return key_listing("n2n_unet.json")


def test_state_dict_matches_the_official_listing(official_keys: dict[str, list[int]]) -> None:
    state = N2NUNet().state_dict()
    assert list(state) == list(official_keys)
    assert {k: list(v.shape) for k, v in state.items()} == official_keys


def test_parameter_count_is_the_specs() -> None:
    assert sum(p.numel() for p in N2NUNet().parameters()) == 1_259_475  # neighbor2neighbor.md


def test_official_plain_state_dict_loads_strictly(tmp_path: Path) -> None:
    source = N2NUNet()
    path = tmp_path / "model_gauss25_b4e100r02.pth"
    torch.save(source.state_dict(), path)  # the release files are bare state_dicts
    target = N2NUNet()
    load_weights(target, path, strict=True)
    x = torch.rand(1, 3, 64, 32)
    assert torch.equal(source(x), target(x))
    with pytest.raises(ConfigError, match="n_feature|shape mismatch"):
        load_weights(N2NUNet(n_feature=32), path)


def test_output_size_equals_input_size_at_multiples_of_32() -> None:
    net = N2NUNet(n_feature=8)
    assert net(torch.rand(2, 3, 64, 96)).shape == (2, 3, 64, 96)
    assert N2NUNet.size_multiple == 32


def test_residual_option_adds_the_input_and_keeps_the_keys() -> None:
    plain, residual = N2NUNet(n_feature=8), N2NUNet(n_feature=8, residual=True)
    residual.load_state_dict(plain.state_dict())
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(residual(x), plain(x) + x)
    with pytest.raises(ConfigError, match="in_nc == out_nc"):
        N2NUNet(in_nc=1, out_nc=3, residual=True)


@pytest.mark.parametrize("size", [(37, 70), (64, 64), (100, 33), (5, 3)])
def test_pad_square_is_numpys_reflect_to_a_32_multiple_square(size: tuple[int, int]) -> None:
    import copy

    import numpy as np

    from restore.engine.inference import forward_padded

    torch.manual_seed(0)
    net = N2NUNet(n_feature=4, pad_square=True).eval()
    h, w = size
    x = torch.rand(1, 3, h, w)
    side = (max(h, w) + 31) // 32 * 32
    padded = np.pad(x[0].numpy(), [[0, 0], [0, side - h], [0, side - w]], "reflect")
    with torch.no_grad():
        expected = net(torch.from_numpy(padded)[None])[..., :h, :w]
        torch.testing.assert_close(forward_padded(net, x), expected, rtol=0, atol=0)
        twin = copy.deepcopy(net)  # EMA copies keep the rule and bind it to the copy
        torch.testing.assert_close(forward_padded(twin, x), expected, rtol=0, atol=0)
        assert twin.forward_any_size.__self__ is twin
        # without the option the generic per-axis rule applies (different borders)
        plain = N2NUNet(n_feature=4)
        plain.load_state_dict(net.state_dict())
        assert not hasattr(plain, "forward_any_size")
