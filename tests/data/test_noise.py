"""restore.data.noise: N2N names, per-pixel statistics, per-image levels, determinism."""

from __future__ import annotations

import math

import pytest
import torch
from data_helpers import assert_one_line

from restore.data.noise import NoiseModel, parse_noise
from restore.errors import ConfigError

SHAPE = (3, 128, 128)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def neighbour_corr(n: torch.Tensor) -> float:
    """Correlation between horizontally adjacent noise values."""
    a, b = n[..., :, :-1].flatten().double(), n[..., :, 1:].flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).mean() / (a.std() * b.std()))


@pytest.mark.parametrize(
    "name, kind, low, high",
    [
        ("gauss25", "gauss", 25, 25),
        ("gauss5_50", "gauss", 5, 50),
        ("gauss5-50", "gauss", 5, 50),
        ("poisson30", "poisson", 30, 30),
        ("poisson5_50", "poisson", 5, 50),
        ("gauss12.5", "gauss", 12.5, 12.5),
        ("Gauss50", "gauss", 50, 50),
    ],
)
def test_parse_n2n_names(name, kind, low, high):
    m = parse_noise(name)
    assert (m.kind, m.low, m.high) == (kind, low, high)
    assert m.is_range == (low != high)
    assert not m.clip and not m.quantize  # N2N: neither clipped nor quantised by default


@pytest.mark.parametrize("name", ["gaussian", "gauss", "speckle10", "gauss50_5", "poisson0", "gauss25_"])
def test_bad_names(name):
    with pytest.raises(ConfigError) as e:
        parse_noise(name)
    assert_one_line(e)


def test_gaussian_statistics_per_pixel():
    clean = torch.full(SHAPE, 0.5)
    noise = parse_noise("gauss25")(clean, gen(0)) - clean
    sigma = 25 / 255
    n = noise.numel()
    assert abs(float(noise.mean())) < 4 * sigma / math.sqrt(n)
    assert float(noise.var()) == pytest.approx(sigma**2, rel=0.03)
    assert abs(neighbour_corr(noise)) < 0.02
    # not one constant per image (the N2N/modern-torch pitfall): each channel varies as much
    for c in range(3):
        assert float(noise[c].std()) == pytest.approx(sigma, rel=0.03)
    vertical = noise[:, 1:, :] - noise[:, :-1, :]
    assert float(vertical.std()) == pytest.approx(sigma * math.sqrt(2), rel=0.03)


def test_gaussian_channels_independent():
    noise = parse_noise("gauss50")(torch.zeros(SHAPE), gen(1))
    r, g = noise[0].flatten().double(), noise[1].flatten().double()
    corr = float(((r - r.mean()) * (g - g.mean())).mean() / (r.std() * g.std()))
    assert abs(corr) < 0.03


def test_poisson_mean_and_variance():
    lam = 30.0
    clean = torch.cat([torch.full((3, 64, 128), 0.2), torch.full((3, 64, 128), 0.8)], dim=1)
    noisy = parse_noise("poisson30")(clean, gen(2))
    for region, x in ((noisy[:, :64], 0.2), (noisy[:, 64:], 0.8)):
        n = region.numel()
        assert float(region.mean()) == pytest.approx(x, abs=4 * math.sqrt(x / lam / n))
        assert float(region.var()) == pytest.approx(x / lam, rel=0.05)
    counts = noisy * lam
    assert torch.allclose(counts, counts.round(), atol=1e-4)  # Poisson(lambda x) / lambda
    assert abs(neighbour_corr(noisy[:, :64] - 0.2)) < 0.02


def test_range_draws_one_level_per_image_within_bounds():
    model = parse_noise("gauss5_50")
    clean = torch.zeros(16, 3, 64, 64)
    noisy = model(clean, gen(3))
    stds = noisy.flatten(1).std(dim=1) * 255
    assert float(stds.min()) > 5 * 0.95 and float(stds.max()) < 50 * 1.05
    assert float(stds.max() - stds.min()) > 10  # not one level for the whole batch
    # replay the generator: per image, the level is drawn first, then that image's noise
    g = gen(3)
    for std in stds:
        level = model.draw_level(g)
        torch.randn((3, 64, 64), generator=g)
        assert float(std) == pytest.approx(level, rel=0.03)
    g = gen(4)
    levels = [model.draw_level(g) for _ in range(500)]
    assert 5 <= min(levels) and max(levels) < 50
    assert sum(levels) / len(levels) == pytest.approx(27.5, abs=2.0)
    p = parse_noise("poisson5_50")
    assert all(5 <= p.draw_level(g) < 50 for _ in range(100))


def test_deterministic_given_generator():
    clean = torch.rand(SHAPE, generator=gen(9))
    for name in ("gauss25", "gauss5_50", "poisson30", "poisson5_50"):
        m = parse_noise(name)
        assert torch.equal(m(clean, gen(7)), m(clean, gen(7)))
        assert not torch.equal(m(clean, gen(7)), m(clean, gen(8)))


def test_no_clipping_by_default_and_clip_quantize_options():
    clean = torch.rand(SHAPE, generator=gen(5))
    raw = parse_noise("gauss50")(clean, gen(0))
    assert float(raw.min()) < 0 and float(raw.max()) > 1
    clipped = parse_noise("gauss50", clip=True)(clean, gen(0))
    assert torch.equal(clipped, raw.clamp(0, 1))
    q = parse_noise("gauss50", quantize=True)(clean, gen(0))
    assert float(q.min()) >= 0 and float(q.max()) <= 1
    assert torch.allclose(q * 255, (q * 255).round(), atol=1e-4)
    assert torch.equal(q, torch.round(raw.clamp(0, 1) * 255) / 255)


def test_model_validation():
    with pytest.raises(ConfigError):
        NoiseModel("gauss", 10, 5)
    with pytest.raises(ConfigError):
        NoiseModel("poisson", 0, 0)
    with pytest.raises(ConfigError):
        NoiseModel("salt", 1, 1)


@pytest.mark.parametrize("name", ["gauss25", "gauss5_50", "poisson30", "poisson5_50"])
def test_each_model_mean_variance_and_independence_at_its_drawn_level(name):
    """Per image: unbiased, variance sigma^2 (Gaussian) or x / lambda (Poisson), no correlation
    between neighbouring pixels or between channels, for fixed and range models alike."""
    model = parse_noise(name)
    x = 0.4
    clean = torch.full((3, 192, 192), x)
    for seed in range(3):
        level = model.draw_level(gen(seed))  # the same first draw the model makes
        noise = (model(clean, gen(seed)) - clean).double()
        var = (level / 255) ** 2 if model.kind == "gauss" else x / level
        n = noise.numel()
        assert abs(float(noise.mean())) < 5 * math.sqrt(var / n)
        assert float(noise.var()) == pytest.approx(var, rel=0.04)
        assert abs(neighbour_corr(noise)) < 0.02
        assert abs(neighbour_corr(noise.transpose(-1, -2))) < 0.02  # vertical neighbours
        r, g = noise[0].flatten(), noise[1].flatten()
        assert abs(float(((r - r.mean()) * (g - g.mean())).mean() / (r.std() * g.std()))) < 0.02
