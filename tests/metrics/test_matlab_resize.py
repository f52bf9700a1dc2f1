"""MATLAB imresize emulation: properties, PIL cross-check (interior), and the §4.4 worked example."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restore.metrics.matlab_resize import imresize, resize_matrix


@pytest.mark.parametrize("n", [1, 7, 256])
def test_same_size_is_identity(n):
    assert torch.equal(resize_matrix(n, n), torch.eye(n, dtype=torch.float64))
    x = torch.rand(2, 3, n, 5, dtype=torch.float64)
    assert torch.equal(imresize(x, (n, 5)), x)


@pytest.mark.parametrize("size", [(256, 256), (13, 40), (600, 90)])
def test_constant_images_stay_constant(size):
    x = torch.full((1, 3, 120, 77), 0.37, dtype=torch.float64)
    assert torch.allclose(imresize(x, size), torch.full((1, 3, *size), 0.37, dtype=torch.float64), atol=1e-14)
    u = torch.full((1, 1, 120, 77), 200, dtype=torch.uint8)
    out = imresize(u, size)
    assert out.dtype == torch.uint8 and bool((out == 200).all())


@pytest.mark.parametrize("in_len,out_len", [(60, 30), (90, 256), (77, 20), (10, 33)])
def test_rows_sum_to_one_and_support(in_len, out_len):
    m = resize_matrix(in_len, out_len)
    assert m.shape == (out_len, in_len)
    assert torch.allclose(m.sum(1), torch.ones(out_len, dtype=torch.float64), atol=1e-14)
    # antialiased shrink widens the kernel to 4/scale input pixels
    nonzero = (m[out_len // 2] != 0).sum().item()
    s = out_len / in_len
    assert nonzero <= (np.ceil(4 / s) + 2 if s < 1 else 4)


@pytest.mark.parametrize("size", [(30, 20), (256, 256), (45, 130), (200, 50)])
def test_interior_matches_pil_bicubic(size):
    """Pillow's BICUBIC is the same a=-0.5 kernel, antialiased when shrinking, per-axis scale and
    pixel-centre mapping; it differs only at the borders (it truncates instead of mirroring)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    a = rng.random((60, 90)).astype(np.float32)
    pil = np.asarray(Image.fromarray(a, mode="F").resize((size[1], size[0]), Image.BICUBIC))
    ours = imresize(torch.from_numpy(a).double()[None, None], size)[0, 0].numpy()
    m = 8
    np.testing.assert_allclose(ours[m:-m, m:-m], pil[m:-m, m:-m], atol=1e-6)
    assert np.abs(ours - pil).max() > 1e-3  # the borders do differ: symmetric edge handling


def test_symmetric_edges():
    """x2 upscale of 4 pixels, first output: x = 0.75 (1-based), taps 0 and -1 mirror onto pixels
    1 and 2 ([1..n, n..1]): weights c(.75)+c(.25) = 1.09375 and c(1.75)+c(1.25) = -0.09375."""
    m = resize_matrix(4, 8)
    assert m[0].tolist() == pytest.approx([1.09375, -0.09375, 0.0, 0.0], abs=1e-15)
    assert m[-1].tolist() == pytest.approx([0.0, 0.0, -0.09375, 1.09375], abs=1e-15)
    x = torch.arange(4, dtype=torch.float64).view(1, 1, 1, 4)
    y = imresize(x, (1, 8))
    assert torch.allclose(y.flip(-1), 3 - y, atol=1e-12)  # mirror symmetry of the ramp


def test_nearest_indices():
    """MATLAB nearest: 4 -> 2 keeps pixels 2 and 4 (1-based); 2 -> 4 repeats each pixel twice."""
    x = torch.arange(4, dtype=torch.float64).view(1, 1, 1, 4)
    assert imresize(x, (1, 2), method="nearest").flatten().tolist() == [1.0, 3.0]
    x2 = torch.tensor([5.0, 9.0], dtype=torch.float64).view(1, 1, 1, 2)
    assert imresize(x2, (1, 4), method="nearest").flatten().tolist() == [5.0, 5.0, 9.0, 9.0]


def test_uint8_path_rounds_between_passes():
    rng = np.random.default_rng(1)
    u = torch.from_numpy(rng.integers(0, 256, (1, 1, 50, 80), dtype=np.uint8))
    out = imresize(u, (20, 20))
    assert out.dtype == torch.uint8
    # reference by hand: columns first (scale 1/4 < 2/5), rounded half away, then rows
    a, b = resize_matrix(50, 20), resize_matrix(80, 20)
    mid = torch.floor(u.double() @ b.T + 0.5).clamp(0, 255)
    ref = torch.floor(a @ mid + 0.5).clamp(0, 255)
    assert torch.equal(out.double(), ref)


def test_scale_argument():
    x = torch.rand(1, 1, 10, 21, dtype=torch.float64)
    assert imresize(x, scale=0.5).shape[-2:] == (5, 11)  # ceil(scale * size), as MATLAB
    assert torch.allclose(imresize(x, scale=2.0), imresize(x, (20, 42)))


def test_worked_example_mask_resize(shadow_example):
    """§4.4: the circular mask resized (uint8) to 256x256 has 7767 pixels != 0 and 7558 >= 128.

    Both passes rounded to uint8 and the width (strongest shrink, 768 -> 256) first; rows first
    would give 7771, no rounding between passes 7754.
    """
    _, _, mask = shadow_example
    m = imresize(torch.from_numpy(mask)[None, None], (256, 256))
    assert int((m != 0).sum()) == 7767
    assert int((m >= 128).sum()) == 7558
