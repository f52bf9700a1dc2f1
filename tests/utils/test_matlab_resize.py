"""MATLAB imresize emulation: properties, PIL cross-check (interior), the §4.4 worked example, and
the banded implementation against the former dense one."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from restore.utils.matlab_resize import box, cubic, imresize, resize_matrix, resize_weights


def dense_matrix(in_len, out_len, *, scale=None, antialias=True, method="bicubic"):
    """The former dense implementation of the weights, kept verbatim as the reference."""
    s = out_len / in_len if scale is None else float(scale)
    if method == "nearest":
        kernel, width, antialias = box, 1.0, False
    else:
        kernel, width = cubic, 4.0
    if s < 1 and antialias:
        width = width / s

        def kernel(t, _k=kernel):
            return s * _k(s * t)
    u = torch.arange(1, out_len + 1, dtype=torch.float64)
    x = u / s + 0.5 * (1.0 - 1.0 / s)
    left = torch.floor(x - width / 2.0)
    taps = math.ceil(width) + 2
    idx = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]
    w = kernel(x[:, None] - idx)
    w = w / w.sum(dim=1, keepdim=True)
    period = 2 * in_len
    m = torch.remainder(idx.long() - 1, period)
    m = torch.where(m < in_len, m, period - 1 - m)
    mat = torch.zeros(out_len, in_len, dtype=torch.float64)
    mat.scatter_add_(1, m, w)
    return mat


def dense_imresize(x, size=None, *, scale=None, antialias=True, method="bicubic"):
    """The former dense-matmul imresize (O(out x in) per axis), the reference for the banded one."""
    h, w = x.shape[-2:]
    if size is None:
        out, scales = (math.ceil(scale * h), math.ceil(scale * w)), [float(scale)] * 2
    else:
        out, scales = tuple(size), [size[0] / h, size[1] / w]
    is_uint8 = x.dtype == torch.uint8
    y = x.to(torch.float64)
    for d in sorted(range(2), key=lambda d: scales[d]):
        if y.shape[-2 + d] == out[d]:
            continue
        mat = dense_matrix(y.shape[-2 + d], out[d], scale=scales[d] if size is None else None,
                           antialias=antialias, method=method)
        y = mat @ y if d == 0 else y @ mat.T
        if is_uint8:
            y = torch.where(y >= 0, torch.floor(y + 0.5), torch.ceil(y - 0.5)).clamp_(0, 255)
    return y.to(torch.uint8) if is_uint8 else y


@pytest.mark.parametrize(
    "in_len,out_len,kw",
    [(60, 30, {}), (90, 256, {}), (77, 20, {}), (10, 33, {}), (640, 256, {}), (1, 5, {}), (5, 1, {}),
     (3, 256, {}), (300, 2, {}), (40, 21, {"method": "nearest"}), (13, 40, {"method": "nearest"}),
     (50, 20, {"antialias": False}), (21, 11, {"scale": 0.5})],
)
def test_banded_weights_equal_the_dense_matrix(in_len, out_len, kw):
    assert torch.equal(resize_matrix(in_len, out_len, **kw), dense_matrix(in_len, out_len, **kw))
    index, weight = resize_weights(in_len, out_len, **kw)
    assert index.shape == weight.shape and index.shape[0] == out_len
    assert int(index.min()) >= 0 and int(index.max()) < in_len
    assert bool((index[:, 1:] >= index[:, :-1]).all())  # consecutive pixels, repeated only at the end


@pytest.mark.parametrize(
    "shape,size,kw",
    [((2, 3, 60, 80), (256, 256), {}), ((1, 3, 480, 640), (256, 256), {}), ((1, 2, 37, 23), (80, 11), {}),
     ((1, 1, 50, 80), (20, 20), {}), ((1, 3, 40, 60), (20, 30), {"method": "nearest"}),
     ((1, 1, 10, 21), None, {"scale": 0.5}), ((1, 1, 10, 21), None, {"scale": 2.0}), ((1, 3, 33, 47), (31, 45), {})],
)
def test_banded_imresize_equals_the_dense_version(shape, size, kw):
    g = torch.Generator().manual_seed(3)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    got, ref = imresize(x, size, **kw), dense_imresize(x, size, **kw)
    assert got.shape == ref.shape and got.is_contiguous()
    assert torch.allclose(got, ref, rtol=0, atol=1e-12)
    # uint8 path (rounded after each pass): with rational scales some sums are exact ties k + 0.5,
    # and the last-ulp summation order (BLAS blocking before, taps in order now; MATLAB's own is
    # unknown) decides them, so a handful of pixels may differ by one level.
    u = (x * 255).round().to(torch.uint8)
    d = (imresize(u, size, **kw).int() - dense_imresize(u, size, **kw).int()).abs()
    assert int(d.max()) <= 1 and int((d > 0).sum()) <= max(2, d.numel() // 10000)
    mask = torch.zeros(shape[0], 1, *shape[-2:], dtype=torch.uint8)
    mask[..., shape[-2] // 4 : shape[-2] // 2, 3:-3] = 255
    assert torch.equal(imresize(mask, size, **kw), dense_imresize(mask, size, **kw))


def test_large_resize_is_banded():
    """A dense pass would hold (3992 x 4000) weights and do O(out x in) work per row; the banded
    one reads K = 7 taps per output pixel (3000x4000 -> 2992x3992: 6.1 s dense, 1.3 s banded, 2 cores)."""
    index, weight = resize_weights(4000, 3992)
    assert index.shape == (3992, 7)
    index, weight = resize_weights(4000, 256)
    assert index.shape[1] <= math.ceil(4 * 4000 / 256) + 2
    x = torch.rand(1, 1, 1200, 1600, dtype=torch.float64)
    assert imresize(x, (1196, 1597)).shape == (1, 1, 1196, 1597)


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
