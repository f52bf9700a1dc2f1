"""Restorer: size rule, tiling with smooth blending, x8 self-ensemble, extras, modes."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from restore.archs.n2n_unet import N2NUNet
from restore.config.schema import Infer
from restore.engine.inference import (
    Restorer,
    forward_ensemble,
    forward_padded,
    pad_to_multiple,
    tile_starts,
    tile_weights,
)
from restore.errors import ConfigError


def _seed(n: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(n)


class Conv3(nn.Module):
    """Three 3x3 convs: receptive field 7 (3 pixels each side); optional PixelShuffle x2."""

    def __init__(self, cin: int = 3, cout: int = 3, scale: int = 1) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.scale = scale
        self.body = nn.Sequential(
            nn.Conv2d(cin, 8, 3, padding=1), nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
            nn.Conv2d(8, cout * scale * scale, 3, padding=1),
        )
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.body(x))


class MaskedConv(nn.Module):
    """forward(x, mask): a conv of [x, mask] times the mask; needs multiples of 8."""

    size_multiple = 8
    input_keys = ("input", "mask")

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        assert x.shape[-2] % 8 == 0 and x.shape[-1] % 8 == 0 and mask.shape[-2:] == x.shape[-2:]
        return self.conv(torch.cat([x, mask], 1)) * mask


def _image(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=_seed(seed))


# --- tiling ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tile_batch", [1, 3])
def test_tiled_equals_whole_for_a_conv_model(tile_batch: int) -> None:
    model = Conv3()
    x = _image(1, 3, 97, 131)
    out = Restorer(model, tile=32, tile_overlap=16, tile_batch=tile_batch)(x)
    assert out.shape == (1, 3, 97, 131) and out.dtype == torch.float32
    torch.testing.assert_close(out, model(x), atol=1e-4, rtol=0)


def test_tiled_equals_whole_with_scale_2_and_a_batch() -> None:
    model = Conv3(scale=2)
    x = _image(2, 3, 75, 50)
    out = Restorer(model, tile=32, tile_overlap=16, tile_batch=3)(x)
    assert out.shape == (2, 3, 150, 100)
    torch.testing.assert_close(out, model(x), atol=1e-4, rtol=0)


def test_tiling_only_along_the_long_axis_and_not_when_the_image_fits() -> None:
    model = Conv3()
    for shape in [(1, 3, 20, 90), (1, 3, 32, 32), (1, 3, 5, 7)]:
        x = _image(*shape)
        torch.testing.assert_close(Restorer(model, tile=32, tile_overlap=12)(x), model(x), atol=1e-4, rtol=0)


def test_tiled_n2n_unet_keeps_the_size_and_rounds_the_tile() -> None:
    model = N2NUNet(n_feature=8)
    x = _image(1, 3, 100, 77)
    # tile 70 becomes 64 (size multiple 32); smaller tiles along W are padded by the size rule
    out = Restorer(model, tile=70, tile_overlap=32)(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    with pytest.raises(ConfigError, match="size multiple 32"):
        Restorer(model, tile=40, tile_overlap=36)(x)


def test_tile_starts_cover_the_image_inside_it() -> None:
    for length, tile, overlap in itertools.product([1, 31, 32, 33, 49, 97, 500], [32, 64], [0, 8, 16, 31]):
        starts = tile_starts(length, tile, overlap)
        size = min(tile, length)
        assert starts[0] == 0 and starts[-1] + size == length and starts == sorted(set(starts))
        for a, b in zip(starts, starts[1:]):
            assert a + size - b >= overlap  # consecutive tiles overlap at least by `overlap`


@pytest.mark.parametrize(
    "length,tile,overlap,scale",
    [(97, 32, 16, 1), (131, 32, 16, 1), (49, 32, 16, 1), (200, 64, 32, 2), (1000, 128, 24, 1), (70, 32, 0, 1), (33, 32, 1, 3)],
)
def test_tile_weights_are_a_partition_of_unity(length: int, tile: int, overlap: int, scale: int) -> None:
    starts = tile_starts(length, tile, overlap)
    size = min(tile, length)
    weights = tile_weights(starts, size, length, scale)
    total = torch.zeros(scale * length)
    for s, wt in zip(starts, weights):
        assert wt.shape == (scale * size,) and wt.dtype == torch.float32 and (wt >= 0).all() and (wt <= 1).all()
        total[scale * s : scale * (s + size)] += wt
    torch.testing.assert_close(total, torch.ones_like(total), atol=1e-6, rtol=0)  # never 0 anywhere
    # zero over the outer quarter of every overlap at a shared edge, 1 up to the image borders
    for i, (s, wt) in enumerate(zip(starts, weights)):
        if i > 0:
            ov = scale * (starts[i - 1] + size - s)
            assert (wt[: ov // 4] == 0).all()
        else:
            assert wt[0] == 1
        if i < len(starts) - 1:
            ov = scale * (s + size - starts[i + 1])
            assert (wt[scale * size - ov // 4 :] == 0).all()
        else:
            assert wt[-1] == 1
    # in 2-D the separable weights of the grid also sum to 1 at every pixel
    total2 = torch.zeros(scale * length, scale * length)
    for (sy, wy), (sx, wx) in itertools.product(zip(starts, weights), repeat=2):
        total2[scale * sy : scale * (sy + size), scale * sx : scale * (sx + size)] += wy[:, None] * wx[None, :]
    torch.testing.assert_close(total2, torch.ones_like(total2), atol=1e-6, rtol=0)


def test_adjacent_weights_are_a_smooth_raised_cosine() -> None:
    # two tiles of 32 overlapping by 16: the seam runs over [16, 32), ramp over its middle half
    w0, w1 = tile_weights([0, 16], 32, 48)
    assert (w0[:20] == 1).all() and (w0[28:] == 0).all() and (w1[:4] == 0).all() and (w1[12:] == 1).all()
    ramp = w1[4:12]
    assert (ramp.diff() > 0).all() and 0 < ramp[0] < 0.05 and 0.95 < ramp[-1] < 1
    torch.testing.assert_close(w0[16:], 1 - w1[:16])


# --- size rule ------------------------------------------------------------------------------


def test_pad_to_multiple() -> None:
    x = _image(1, 2, 10, 45)
    padded, size = pad_to_multiple(x, 16)
    assert size == (10, 45) and padded.shape == (1, 2, 16, 48)
    torch.testing.assert_close(padded[..., :10, :45], x)
    torch.testing.assert_close(padded[..., :10, 45:], x[..., 41:44].flip(-1))  # reflect along W
    torch.testing.assert_close(padded[..., 10:, :45], x[..., 3:9, :].flip(-2))  # and along H
    small, _ = pad_to_multiple(x[..., :5, :], 16)  # H pad 11 >= 5: replicate along H only
    assert small.shape == (1, 2, 16, 48) and (small[..., 5:, :45] == x[..., 4:5, :]).all()
    torch.testing.assert_close(small[..., :5, 45:], x[..., :5, 41:44].flip(-1))
    same, _ = pad_to_multiple(x, 5)
    assert same is x
    zeros, _ = pad_to_multiple(x, 16, "zeros")
    assert (zeros[..., 10:, :] == 0).all()


def test_n2n_unet_any_size_equals_manual_reflect_pad_and_crop() -> None:
    model = N2NUNet(n_feature=8).eval()
    x = _image(2, 3, 50, 70)
    out = Restorer(model)(x)
    assert out.shape == x.shape
    manual = model(F.pad(x, (0, 26, 0, 14), mode="reflect"))[..., :50, :70]
    torch.testing.assert_close(out, manual, atol=1e-5, rtol=0)
    torch.testing.assert_close(forward_padded(model, x), manual, atol=1e-5, rtol=0)


def test_forward_any_size_is_used_when_present() -> None:
    class Own(nn.Module):
        size_multiple = 64

        def __init__(self) -> None:
            super().__init__()
            self.calls: list[tuple[int, ...]] = []

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise AssertionError("the engine must call forward_any_size")

        def forward_any_size(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
            self.calls.append(tuple(x.shape))
            return x * 2

    model = Own()
    x = _image(1, 3, 30, 41)
    torch.testing.assert_close(Restorer(model)(x), x * 2)
    assert model.calls == [(1, 3, 30, 41)]


# --- self-ensemble --------------------------------------------------------------------------


def _dihedral_mean(model: nn.Module, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
    """Independent x8 ensemble: transpose/flip pairs with their inverses (not rot90)."""
    def fwd(t: torch.Tensor, transpose: bool, dims: tuple[int, ...]) -> torch.Tensor:
        t = t.transpose(-2, -1) if transpose else t
        return t.flip(dims) if dims else t

    def inv(t: torch.Tensor, transpose: bool, dims: tuple[int, ...]) -> torch.Tensor:
        t = t.flip(dims) if dims else t
        return t.transpose(-2, -1) if transpose else t

    outs = []
    for transpose, dims in itertools.product([False, True], [(), (-1,), (-2,), (-2, -1)]):
        outs.append(inv(model(fwd(x, transpose, dims), *(fwd(e, transpose, dims) for e in extra)), transpose, dims))
    return torch.stack(outs).mean(0)


def test_self_ensemble_of_an_equivariant_model_is_the_plain_output() -> None:
    torch.manual_seed(0)
    model = nn.Conv2d(3, 3, 1)
    x = _image(1, 3, 20, 28)
    torch.testing.assert_close(Restorer(model, self_ensemble=True)(x), model(x), atol=1e-5, rtol=0)
    torch.testing.assert_close(Restorer(nn.Identity(), self_ensemble=True)(x), x)


def test_self_ensemble_is_the_mean_of_the_eight_transforms() -> None:
    model = Conv3()
    x = _image(1, 3, 20, 28)
    expected = _dihedral_mean(model, x)
    assert (expected - model(x)).abs().max() > 1e-3  # the model is not equivariant
    torch.testing.assert_close(Restorer(model, self_ensemble=True)(x), expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(forward_ensemble(model, x), expected, atol=1e-5, rtol=0)
    # tiled ensemble of a local model equals the whole-image ensemble
    big = _image(1, 3, 70, 45)
    tiled = Restorer(model, tile=32, tile_overlap=16, self_ensemble=True)(big)
    torch.testing.assert_close(tiled, _dihedral_mean(model, big), atol=1e-4, rtol=0)


# --- extras ---------------------------------------------------------------------------------


def test_mask_is_padded_tiled_and_transformed_with_the_input() -> None:
    model = MaskedConv()
    x, mask = _image(2, 3, 61, 83), (_image(2, 1, 61, 83, seed=1) > 0.5).float()
    whole = Restorer(model)(x, mask)
    xp, _ = pad_to_multiple(x, 8)
    mp, _ = pad_to_multiple(mask, 8)
    torch.testing.assert_close(whole, model(xp, mp)[..., :61, :83])
    # tiles end on the image border unpadded, so compare on a size the whole image needs no pad at
    x, mask = x[..., :56, :80], mask[..., :56, :80]
    tiled = Restorer(model, tile=32, tile_overlap=16, tile_batch=2)(x, mask)
    torch.testing.assert_close(tiled, Restorer(model)(x, mask), atol=1e-4, rtol=0)
    ens = Restorer(model, self_ensemble=True)(x, mask)
    torch.testing.assert_close(ens, _dihedral_mean(model, x, mask), atol=1e-5, rtol=0)
    with pytest.raises(ValueError):
        Restorer(model)(x, mask[..., :48, :])


# --- modes, dtypes, options -----------------------------------------------------------------


def test_model_modes_are_restored_and_output_is_float32() -> None:
    model = Conv3()
    model.train()
    model.body[0].eval()  # a submodule in its own mode stays so
    x = _image(1, 3, 40, 40).double()
    for restorer in (Restorer(model), Restorer(model, tile=32, tile_overlap=8)):
        out = restorer(x)
        assert out.dtype == torch.float32 and out.device == torch.device("cpu")
        assert model.training and not model.body[0].training and model.body[2].training
    seen = []
    model.register_forward_pre_hook(lambda m, a: seen.append(m.training))
    Restorer(model)(x)
    assert seen == [False]


def test_fp32_is_exact_and_bf16_is_autocast_on_the_models_device() -> None:
    model = Conv3()
    x = _image(1, 3, 24, 24)
    torch.testing.assert_close(Restorer(model)(x), model(x), rtol=0, atol=0)
    approximate = Restorer(model, precision="bf16")(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = model(x).float()
    assert approximate.dtype == torch.float32
    torch.testing.assert_close(approximate, expected, rtol=0, atol=0)
    assert (approximate - model(x)).abs().max() > 0  # bf16 really ran: it is not the fp32 output


@pytest.mark.parametrize(
    "kwargs",
    [dict(tile=0), dict(tile=-8), dict(tile=32, tile_overlap=-1), dict(tile=32, tile_overlap=32), dict(tile_batch=0), dict(precision="fp8"),
     dict(backend="tensorrt")],
)
def test_bad_settings_are_config_errors(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        Restorer(Conv3(), **kwargs)


def test_from_options() -> None:
    infer = Infer(tile=64, tile_overlap=16, tile_batch=2, self_ensemble=True, precision="fp16")
    r = Restorer.from_options(Conv3(), infer, "cpu")
    assert (r.tile, r.tile_overlap, r.tile_batch, r.self_ensemble, r.precision) == (64, 16, 2, True, "fp16")
    assert (r.backend, r.core) == ("torch", None)
    assert r.device == torch.device("cpu")
    assert Restorer(nn.Identity()).device == torch.device("cpu")
