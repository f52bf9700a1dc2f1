"""restore.data.moire: the statistics a screen-to-camera simulation must have.

Expected values are worked out here from the geometry, not read from the code: the beat of a
stripe pattern of pitch p_s sampled on a lattice of pitch p_c is |1/p_s - 1/p_c| cycles per
pixel across the stripes, and a lattice rotated by theta (equal pitches) beats at
(1 - cos theta, sin theta). Alignment is measured with OpenCV's phase correlation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from restore.data.degradations import parse_degradation
from restore.data.moire import Moire, RadialDistortion, subpixel_weights
from restore.errors import ConfigError

#: The pose fixed to identity and everything but the screen/camera beat switched off.
FLAT_POSE = {"rotation": 0, "perspective": 0, "distortion": 0, "gap": 0, "noise": 0, "jpeg_prob": 0, "blur": 0.25}


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """A 256x256 crop of scikit-image's bundled astronaut photo, (3, H, W) float32."""
    import skimage.data

    image = skimage.data.astronaut()[60:316, 120:376]
    return torch.from_numpy(image.copy()).permute(2, 0, 1).float() / 255


def grey(x: torch.Tensor) -> np.ndarray:
    return (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).numpy().astype(np.float64)


def shift_between(a: np.ndarray, b: np.ndarray) -> float:
    """|translation| of ``b`` against ``a`` in pixels (phase correlation, Hann window)."""
    import cv2

    window = cv2.createHanningWindow(a.shape[::-1], cv2.CV_64F)
    (dx, dy), _ = cv2.phaseCorrelate(a, b, window)
    return math.hypot(dx, dy)


def spectrum(image: np.ndarray) -> np.ndarray:
    """Power spectrum of a (C, H, W) image, channels summed, means removed, Hann-windowed."""
    window = np.outer(np.hanning(image.shape[1]), np.hanning(image.shape[2]))
    return sum(np.abs(np.fft.fft2((c - c.mean()) * window)) ** 2 for c in image)


def band_energy(power: np.ndarray, fy: float, fx: float, radius: float = 2.5) -> float:
    """Energy within ``radius`` frequency bins of +-(fy, fx) (the spectrum of a real image is symmetric)."""
    h, w = power.shape
    vy, vx = np.meshgrid(np.fft.fftfreq(h) * h, np.fft.fftfreq(w) * w, indexing="ij")
    near = np.hypot(vy - fy * h, vx - fx * w) <= radius
    near |= np.hypot(vy + fy * h, vx + fx * w) <= radius
    return float(power[near].sum())


def peak(power: np.ndarray) -> tuple[float, float]:
    """(fy, fx) of the strongest non-DC frequency, in cycles per pixel."""
    power = power.copy()
    power[0, 0] = 0
    iy, ix = np.unravel_index(power.argmax(), power.shape)
    return float(np.fft.fftfreq(power.shape[0])[iy]), float(np.fft.fftfreq(power.shape[1])[ix])


# ----------------------------------------------------------------------------- basics


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["moire", "moire_strong"])
def test_shape_range_dtype(name, dtype):
    clean = torch.rand(3, 48, 60, generator=gen(0)).to(dtype)
    out = parse_degradation(name)(clean, gen(1))
    assert out.shape == clean.shape and out.dtype == dtype
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert (out - clean).abs().mean() > 0.02  # it did something


def test_grey_input_gives_grey_output_of_the_same_size():
    clean = torch.rand(1, 33, 47, generator=gen(0))
    out = parse_degradation("moire")(clean, gen(2))
    assert out.shape == (1, 33, 47)


def test_same_seed_same_image_other_seed_other_image(photo):
    d = parse_degradation("moire")
    a, b, c = d(photo, gen(5)), d(photo, gen(5)), d(photo, gen(6))
    assert torch.equal(a, b)
    assert (a - c).abs().mean() > 0.01
    # the parameters come from the generator too (not only the sensor noise)
    assert d.draw(gen(5)) == d.draw(gen(5)) and d.draw(gen(5)) != d.draw(gen(6))


def test_option_checks():
    assert parse_degradation("moire", blur=0.3).blur == (0.3, 0.3)
    assert parse_degradation("moire_strong").blur == (0.15, 0.25)
    for bad, match in [
        ({"blur": [0.4, 0.2]}, "low <= high"),
        ({"blur": [-1, 0.2]}, "'blur' must lie in"),
        ({"pitch_ratio": 0}, "'pitch_ratio' must lie in"),
        ({"distortion": 0.5}, "'distortion' must lie in"),
        ({"jpeg_quality": [50, 101]}, "'jpeg_quality' must lie in"),
        ({"jpeg_prob": 1.5}, "probability"),
        ({"demosaic": "ahd"}, "must be one of bilinear, ea, vng"),
        ({"render_scale": 2}, "integer in 3..12"),
        ({"render_scale": 3.0}, "integer in 3..12"),
        ({"pitch": 1}, "unknown option 'pitch'"),
    ]:
        with pytest.raises(ConfigError, match=match):
            parse_degradation("moire", **bad)


def test_subpixel_weights_are_three_stripes_and_a_dark_gap():
    rows, cols = subpixel_weights(3, 0.0)
    assert np.array_equal(cols, 3 * np.eye(3, dtype=np.float32)) and np.array_equal(rows, np.ones(3))
    rows, cols = subpixel_weights(6, 0.25)  # gap = 1.5 of 6 rows: rows 0-3 lit, row 4 half, row 5 dark
    assert np.allclose(rows * 0.75, [1, 1, 1, 1, 0.5, 0])
    assert np.allclose(cols, 3 * np.repeat(np.eye(3), 2, axis=0))
    rows, cols = subpixel_weights(4, 0.0)  # a column straddling two stripes is split by area
    assert np.allclose(cols[1], [3 * (1 / 3 - 1 / 4) * 4, 3 * (1 / 2 - 1 / 3) * 4, 0])
    assert np.allclose(rows.mean(), 1) and np.allclose(cols.mean(0), 1)


def test_radial_distortion_inverse_undoes_forward():
    for k in (-0.2, -0.05, 0.1, 0.2):
        lens = RadialDistortion(k, 130.0, 120.0, 170.0)
        x, y = np.meshgrid(np.linspace(10, 250, 25), np.linspace(0, 240, 25))  # within the radius
        back = lens.inverse(*lens.forward(x, y))
        assert np.abs(back[0] - x).max() < 1e-6 and np.abs(back[1] - y).max() < 1e-6


# ----------------------------------------------------------------------------- alignment


@pytest.mark.parametrize("seed", range(4))
def test_the_pair_stays_aligned_within_a_pixel_everywhere(photo, seed):
    d = parse_degradation("moire_strong", jpeg_prob=1.0)  # strongest pose and distortion
    out = d(photo, gen(seed))
    clean, moire = grey(photo), grey(out)
    assert shift_between(clean, moire) < 0.5
    for ys in (slice(0, 128), slice(128, 256)):  # each quadrant: perspective and distortion undone
        for xs in (slice(0, 128), slice(128, 256)):
            assert shift_between(clean[ys, xs], moire[ys, xs]) < 1.0


def test_the_alignment_measure_sees_a_misaligned_pair(photo):
    moire = grey(parse_degradation("moire")(photo, gen(0)))
    shifted = np.roll(moire, (2, 3), axis=(0, 1))
    assert 3.0 < shift_between(grey(photo), shifted) < 4.5


# ----------------------------------------------------------------------------- the beat


@pytest.mark.parametrize(
    "screen_pitch,pitch_ratio,size",
    [(1.0, 1.1, 256), (1.0, 0.9, 256), (1.0, 1.05, 256), (0.5, 1.1, 128)],
)
def test_a_flat_screen_beats_at_the_pitch_difference(screen_pitch, pitch_ratio, size):
    p_s = screen_pitch  # clean pixels per screen pixel
    p_c = pitch_ratio * screen_pitch  # clean pixels per camera pixel
    beat = abs(1 / p_s - 1 / p_c)  # cycles per clean (= output) pixel, across the stripes (x)
    flat = torch.full((3, size, size), 0.5)
    opts = {**FLAT_POSE, "screen_pitch": screen_pitch, "pitch_ratio": pitch_ratio}
    power = spectrum(parse_degradation("moire", **opts)(flat, gen(0)).double().numpy())
    fy, fx = peak(power)
    assert abs(fy) < 1.5 / size and abs(abs(fx) - beat) < 1.5 / size
    # an un-moiréd control: the same camera, the stripes blurred away before sampling
    control = spectrum(parse_degradation("moire", **{**opts, "blur": 2.0})(flat, gen(0)).double().numpy())
    assert band_energy(power, 0.0, beat) > 100 * band_energy(control, 0.0, beat)
    assert band_energy(power, 0.0, beat) > 0.5 * power.sum()  # most of the added energy is the beat


def test_a_rotated_camera_turns_the_beat():
    theta = math.radians(6.0)
    fy_expected, fx_expected = math.sin(theta), 1 - math.cos(theta)  # equal pitches: |f| = 2 sin(theta / 2)
    flat = torch.full((3, 256, 256), 0.5)
    power = spectrum(parse_degradation("moire", **{**FLAT_POSE, "pitch_ratio": 1.0, "rotation": 6.0})(flat, gen(0))
                     .double().numpy())
    fy, fx = peak(power)
    assert abs(abs(fy) - fy_expected) < 1.5 / 256 and abs(abs(fx) - fx_expected) < 1.5 / 256
    # counter-clockwise as displayed (y down): the beat vector points along (1 - cos, -sin) or its negative
    assert fx * fy <= 0 or abs(fx) < 1 / 256


def test_the_bands_are_coloured():
    flat = torch.full((3, 128, 128), 0.5)
    out = parse_degradation("moire", **{**FLAT_POSE, "pitch_ratio": 1.1})(flat, gen(0)).double().numpy()
    # the three stripes are a third of a pixel apart, so the channels beat out of phase
    assert np.corrcoef(out[0].ravel(), out[2].ravel())[0, 1] < -0.2
    assert (out[0] - out[1]).std() > 0.1
    control = parse_degradation("moire", **{**FLAT_POSE, "pitch_ratio": 1.1, "blur": 2.0})(flat, gen(0)).double().numpy()
    assert (control[0] - control[1]).std() < 0.02
    assert abs(control.mean() - 0.5) < 0.01  # the stripes keep each pixel's mean


def test_default_parameters_cover_many_frequencies():
    """Different seeds give beats of different frequency and orientation."""
    flat = torch.full((3, 128, 128), 0.5)
    d = parse_degradation("moire", noise=0, jpeg_prob=0)
    peaks = {peak(spectrum(d(flat, gen(s)).double().numpy())) for s in range(8)}
    assert len(peaks) >= 6


def test_vng_and_edge_aware_demosaicing_run():
    flat = torch.full((3, 40, 40), 0.5)
    for method in ("ea", "vng"):
        out = Moire(demosaic=method, **{**FLAT_POSE, "pitch_ratio": (1.1, 1.1)})(flat, gen(0))
        assert out.shape == (3, 40, 40) and out.std() > 0.05
