"""restore.data.degradations: shapes, ranges, determinism, MATLAB bicubic, streak statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from restore.data.degradations import line_kernel, parse_degradation, rain_layer
from restore.errors import ConfigError

ALL = [
    "bicubic_x2", "bicubic_x3", "bicubic_x4", "gauss30", "gauss50", "gauss5_50", "rain", "rain_light",
    "rain_heavy", "haze", "lowlight", "blur", "blur_gauss", "blur_motion", "jpeg", "jpeg30",
]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def clean() -> torch.Tensor:
    """A smooth-ish 8-bit image (3, 48, 60) with texture, values on the uint8 grid."""
    g = gen(0)
    coarse = torch.rand(1, 3, 6, 8, generator=g)
    x = torch.nn.functional.interpolate(coarse, size=(48, 60), mode="bicubic", align_corners=False)[0]
    x = x + 0.05 * torch.rand(3, 48, 60, generator=g)
    return (x.clamp(0, 1) * 255).round() / 255


@pytest.mark.parametrize("name", ALL)
def test_shape_range_dtype_and_determinism(name, clean):
    d = parse_degradation(name)
    out = d(clean, gen(7))
    s = d.scale
    assert out.shape == (3, 48 // s, 60 // s) and out.dtype == clean.dtype
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert torch.equal(out, d(clean, gen(7)))  # same generator state -> same image
    if "bicubic" not in name:
        assert not torch.equal(out, clean)
    if name not in ("bicubic_x2", "bicubic_x3", "bicubic_x4", "jpeg30", "blur_gauss"):
        # random parameters or pixels: another seed gives another image
        assert not torch.equal(out, d(clean, gen(8)))


def test_grey_images_work(clean):
    grey = clean[:1]
    for name in ALL:
        d = parse_degradation(name)
        assert d(grey, gen(1)).shape == (1, 48 // d.scale, 60 // d.scale)


def test_names_and_options_errors():
    assert parse_degradation("rain", angle=[-5, 5]).angle == (-5.0, 5.0)
    assert parse_degradation("jpeg20_40").quality == (20.0, 40.0)
    for bad in ("gaus30", "bicubic_x1", "snow", 3):
        with pytest.raises(ConfigError):
            parse_degradation(bad)
    with pytest.raises(ConfigError, match="unknown option 'angel'"):
        parse_degradation("rain", angel=3)
    with pytest.raises(ConfigError, match="low <= high"):
        parse_degradation("haze", beta=[2, 1])


# ----------------------------------------------------------------------------- bicubic


def matlab_cubic(x: float) -> float:
    ax = abs(x)
    if ax <= 1:
        return 1.5 * ax**3 - 2.5 * ax**2 + 1
    if ax <= 2:
        return -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    return 0.0


def matlab_downscale_1d(v: np.ndarray, s: int) -> np.ndarray:
    """MATLAB imresize(v, 1/s) along one axis, written out loop by loop (imresize.m contributions):
    antialiased kernel s'*cubic(s'*t) with s' = 1/s, width 4s, centre u/s' + 0.5(1 - 1/s'),
    taps floor(x - width/2) + 0..ceil(width)+1, weights normalised, indices mirrored."""
    n = len(v)
    sc = 1.0 / s
    width = 4.0 / sc
    out = np.zeros(n // s)
    for u in range(1, n // s + 1):
        x = u / sc + 0.5 * (1 - 1 / sc)
        left = math.floor(x - width / 2)
        taps = [left + k for k in range(math.ceil(width) + 2)]
        w = np.array([sc * matlab_cubic(sc * (x - j)) for j in taps])
        w /= w.sum()
        acc = 0.0
        for j, wj in zip(taps, w):
            m = (j - 1) % (2 * n)
            m = m if m < n else 2 * n - 1 - m
            acc += wj * v[m]
        out[u - 1] = acc
    return out


@pytest.mark.parametrize("s", [2, 3, 4])
def test_bicubic_float_matches_a_loop_reference(s, clean):
    d = parse_degradation(f"bicubic_x{s}", uint8=False)
    x = clean[:, : 12 * s, : 12 * s].double()
    out = d(x, gen(0))
    img = x[0].numpy()
    ref = np.stack([matlab_downscale_1d(row, s) for row in img])  # columns (a tie: rows first in
    ref = np.stack([matlab_downscale_1d(col, s) for col in ref.T]).T  # MATLAB, linear so order-free)
    np.testing.assert_allclose(out[0].numpy(), np.clip(ref, 0, 1), atol=1e-10)


@pytest.mark.parametrize("s", [2, 3, 4])
def test_bicubic_interior_matches_pil_antialiased_bicubic(s):
    """PIL's reducing BICUBIC uses the same a=-0.5 kernel stretched by s; only edges differ."""
    from PIL import Image

    g = gen(s)
    img = torch.rand(1, 16 * s, 20 * s, generator=g, dtype=torch.float64)
    ours = parse_degradation(f"bicubic_x{s}", uint8=False)(img, g)[0].numpy()
    pil = np.asarray(Image.fromarray(img[0].numpy().astype(np.float32), mode="F").resize((20, 16), Image.BICUBIC))
    m = 3  # output pixels whose taps reach the border (2s input pixels) differ
    np.testing.assert_allclose(ours[m:-m, m:-m], pil[m:-m, m:-m], atol=2e-6)


def test_bicubic_reproduces_linear_ramps_and_uint8_path():
    """The cubic kernel reproduces linear functions: a ramp i -> i downscales to the centres."""
    s = 4
    ramp = torch.arange(64, dtype=torch.float64).repeat(64, 1)[None] / 255.0
    out = parse_degradation("bicubic_x4", uint8=False)(ramp, gen(0))[0, 0].numpy() * 255
    centres = np.arange(16) * s + (s - 1) / 2
    np.testing.assert_allclose(out[2:-2], centres[2:-2], atol=1e-9)
    out8 = parse_degradation("bicubic_x4")(ramp, gen(0))[0, 0].numpy() * 255
    np.testing.assert_allclose(out8, np.round(out8), atol=1e-4)  # on the 8-bit grid
    assert np.abs(out8[2:-2] - np.floor(centres[2:-2] + 0.5)).max() == 0  # MATLAB rounds half away


def test_bicubic_needs_a_multiple_of_the_scale(clean):
    with pytest.raises(ValueError, match="multiple of 3"):
        parse_degradation("bicubic_x3")(clean[:, :47], gen(0))


# ----------------------------------------------------------------------------- noise, haze, low light


def test_gaussian_noise_level(clean):
    flat = torch.full((3, 128, 128), 0.5)
    n = parse_degradation("gauss30")(flat, gen(1)) - flat
    assert float(n.std()) == pytest.approx(30 / 255, rel=0.03)
    assert abs(float(n.mean())) < 0.002


def test_haze_follows_the_scattering_model(clean):
    d = parse_degradation("haze", depth="constant")
    out = d(clean, gen(3))
    p = d.draw(gen(3))
    assert 0.6 <= p["beta"] < 1.8 and 0.7 <= p["airlight"] < 1.0
    t = math.exp(-p["beta"])
    torch.testing.assert_close(out, clean * t + p["airlight"] * (1 - t))
    field = parse_degradation("haze")(clean, gen(3))
    assert float(field.std()) < float(clean.std())  # haze lowers contrast


def test_lowlight_darkens_with_the_drawn_gamma_and_gain(clean):
    d = parse_degradation("lowlight", noise=0)
    p = d.draw(gen(4))
    torch.testing.assert_close(d(clean, gen(4)), (p["gain"] * clean ** p["gamma"]).clamp(0, 1))
    assert float(parse_degradation("lowlight")(clean, gen(4)).mean()) < 0.6 * float(clean.mean())


def test_blur_keeps_constants_and_lowers_variation(clean):
    flat = torch.full((3, 40, 40), 0.3)
    for name in ("blur_gauss", "blur_motion"):
        d = parse_degradation(name)
        torch.testing.assert_close(d(flat, gen(0)), flat)
        out = d(clean, gen(0))
        tv = lambda x: float((x[..., 1:] - x[..., :-1]).abs().mean() + (x[..., 1:, :] - x[..., :-1, :]).abs().mean())  # noqa: E731
        assert tv(out) < tv(clean)


def test_jpeg_quality_orders_the_error(clean):
    err = [float((parse_degradation(f"jpeg{q}")(clean, gen(0)) - clean).abs().mean()) for q in (10, 50, 95)]
    assert err[0] > err[1] > err[2] > 0


# ----------------------------------------------------------------------------- rain streaks


def orientation_from_vertical(img: np.ndarray) -> float:
    """Dominant line direction (degrees from vertical, positive = bottom to the right), from the
    structure tensor: gradients are perpendicular to the lines. The image is smoothed first so
    that central differences of one-pixel lines do not favour the axes."""
    import cv2

    gy, gx = np.gradient(cv2.GaussianBlur(img, (0, 0), 2.0))
    jxx, jyy, jxy = (gx * gx).sum(), (gy * gy).sum(), (gx * gy).sum()
    grad_angle = 0.5 * math.atan2(2 * jxy, jxx - jyy)  # from the x axis, in (-90, 90]
    line = grad_angle + math.pi / 2  # direction (cos, sin) in (x, y)
    dx, dy = math.cos(line), math.sin(line)
    if dy < 0:
        dx, dy = -dx, -dy
    return math.degrees(math.atan2(dx, dy))


@pytest.mark.parametrize("angle", [-25.0, 0.0, 15.0])
def test_line_kernel_length_and_angle(angle):
    k = line_kernel(21, angle).double().numpy()
    assert k.max() == pytest.approx(1.0)
    ys, xs = np.nonzero(k > 0)
    w = k[ys, xs]
    cy, cx = (w * ys).sum() / w.sum(), (w * xs).sum() / w.sum()
    cov = np.cov(np.stack([xs - cx, ys - cy]), aweights=w, bias=True)
    evals, evecs = np.linalg.eigh(cov)
    dx, dy = evecs[:, 1] * np.sign(evecs[1, 1] or 1)
    assert math.degrees(math.atan2(dx, dy)) == pytest.approx(angle, abs=1.0)
    assert math.sqrt(12 * evals[1]) == pytest.approx(21, abs=1.5)  # uniform segment: var = L^2/12


def test_rain_seed_density():
    # length 0: every seed stays one pixel, so the lit fraction is the seed density
    layer = rain_layer(200, 200, 0.01, 0.0, 0.0, gen(5))
    frac = float((layer > 0).float().mean())
    assert frac == pytest.approx(0.01, abs=5 * math.sqrt(0.01 * 0.99 / 40000))
    assert float(layer[layer > 0].min()) >= 0.5  # seed brightness in [0.5, 1)


@pytest.mark.parametrize("angle", [-20.0, 0.0, 25.0])
def test_rain_streaks_follow_the_angle_and_cover_about_density_times_length(angle):
    layer = rain_layer(160, 160, 0.002, 20.0, angle, gen(6)).double().numpy()
    assert orientation_from_vertical(layer) == pytest.approx(angle, abs=3.0)
    lit = float((layer > 0.25).mean())
    assert 0.5 * 0.002 * 20 < lit < 2.0 * 0.002 * 20


def test_rain_image_draws_parameters_in_range_and_adds_the_layer(clean):
    d = parse_degradation("rain")
    p = d.draw(gen(9))
    assert 0.001 <= p["density"] < 0.004 and 10 <= p["length"] < 40
    assert -30 <= p["angle"] < 30 and 0.3 <= p["intensity"] < 0.9
    out = d(clean, gen(9))
    diff = out - clean
    assert float(diff.min()) >= -1e-7  # streaks only brighten
    assert torch.equal(diff[0] > 1e-6, (diff[0] > 1e-6) & (clean[0] < 1))  # clipped at white
