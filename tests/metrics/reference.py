"""Independent reference computations (numpy/skimage/scipy) for cross-checks.

Nothing here shares code with restore.metrics: skimage and scipy implement the filters, the
colour conversion and the metrics the spec names as equivalent.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def md5(a: np.ndarray) -> str:
    return hashlib.md5(np.ascontiguousarray(a).tobytes()).hexdigest()


def to_tensor(a: np.ndarray) -> torch.Tensor:
    """HxWx3 (or HxW) numpy -> (1, C, H, W) tensor, dtype kept."""
    a = np.ascontiguousarray(a)
    if a.ndim == 2:
        a = a[..., None]
    return torch.from_numpy(a.copy()).permute(2, 0, 1)[None]


def load_rgb(path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def psnr_np(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    from skimage.metrics import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(b.astype(np.float64), a.astype(np.float64), data_range=peak))


def ssim_gauss_np(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """skimage with the Gaussian arguments = BasicSR / Wang 2004 (metrics.md §3 table)."""
    from skimage.metrics import structural_similarity

    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=data_range)
    if a.ndim == 3:
        kw["channel_axis"] = -1
    return float(structural_similarity(a.astype(np.float64), b.astype(np.float64), **kw))


def ssim_uniform_np(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """skimage structural_similarity defaults (7x7 uniform, sample covariance)."""
    from skimage.metrics import structural_similarity

    kw = dict(data_range=data_range)
    if a.ndim == 3:
        kw["channel_axis"] = -1
    return float(structural_similarity(a.astype(np.float64), b.astype(np.float64), **kw))


def ssim_matlab_np(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """MATLAB ssim(): Gaussian sigma 1.5, 11 taps in every dimension (a 3-D volume for HxWx3),
    replicate ('nearest') padding, full-size map -- via scipy.ndimage.gaussian_filter."""
    from scipy.ndimage import gaussian_filter

    x, y = a.astype(np.float64), b.astype(np.float64)

    def f(z):
        return gaussian_filter(z, sigma=1.5, mode="nearest", truncate=5 / 1.5)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
    m = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(m.mean())


def y_np(rgb_uint8: np.ndarray) -> np.ndarray:
    """skimage BT.601 luma, [16, 235] float (= MATLAB rgb2ycbcr on im2double input, x255)."""
    from skimage.color import rgb2ycbcr

    return rgb2ycbcr(rgb_uint8)[..., 0]


def y_round_np(rgb_uint8: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr on uint8: luma rounded half away from zero."""
    return np.floor(y_np(rgb_uint8) + 0.5)
