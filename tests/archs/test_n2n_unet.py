"""The N2N UNet against the official key listing, parameter count and size rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from restore.archs.n2n_unet import N2NUNet
from restore.engine.checkpoint import load_weights
from restore.errors import ConfigError

KEYS = Path(__file__).resolve().parents[2].parent / "shared" / "specs" / "keys" / "n2n_unet.json"


@pytest.fixture(scope="module")
def official_keys() -> dict[str, list[int]]:
    if not KEYS.is_file():
        pytest.skip(f"key listing not found at {KEYS}")
    return json.loads(KEYS.read_text())


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
