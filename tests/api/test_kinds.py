"""``model(image)`` for every kind of image, on all six architectures (random weights).

Each kind must come back as that kind (container, dtype, layout, device) at the network's
output size, and its pixels must agree with the uint8 numpy result where the inputs carry the
same values: a float32 image ``u8 / 255`` is the very tensor the engine makes of ``u8``, so
its output quantised to 8 bits must equal the uint8 output exactly; a PIL image, a file and a
uint8 tensor hold the same pixels as the array.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from api_nets import generated_image, rectangle_mask
from data_helpers import save_rgb
from PIL import Image

from restore.data.image_io import quantize


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return generated_image(40, 56)


_REFERENCE: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def reference(name: str, model, rgb: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The uint8 result of ``rgb`` and the float32 result of ``rgb / 255`` (computed once per network)."""
    if name not in _REFERENCE:
        _REFERENCE[name] = (model(rgb, mask=mask), model(rgb.astype(np.float32) / np.float32(255), mask=mask))
    return _REFERENCE[name]


def test_numpy_uint8_file_and_pil_give_the_same_pixels(case, rgb, tmp_path):
    name, model = case
    h, w = rgb.shape[:2]
    s = model.scale
    mask = rectangle_mask(h, w) if model.needs_mask else None
    ref, _ = reference(name, model, rgb, mask)
    assert isinstance(ref, np.ndarray) and ref.dtype == np.uint8 and ref.shape == (s * h, s * w, 3), name
    assert not np.array_equal(ref[:h, :w], rgb[: s * h, : s * w]), f"{name}: output equals input"

    path = save_rgb(tmp_path / "in.png", rgb)
    mask_path = save_rgb(tmp_path / "mask.png", mask) if mask is not None else None
    for image, m in [(path, mask_path), (str(path), mask)]:
        out = model(image, mask=m)
        assert isinstance(out, np.ndarray) and out.dtype == np.uint8
        np.testing.assert_array_equal(out, ref, err_msg=f"{name}: file input")

    out = model(Image.fromarray(rgb), mask=Image.fromarray(mask) if mask is not None else None)
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == (s * w, s * h)
    np.testing.assert_array_equal(np.asarray(out), ref, err_msg=f"{name}: PIL input")


def test_float_and_16_bit_images_keep_their_type_and_range(case, rgb):
    name, model = case
    h, w = rgb.shape[:2]
    s = model.scale
    mask = rectangle_mask(h, w) if model.needs_mask else None
    ref, f32 = reference(name, model, rgb, mask)
    assert f32.dtype == np.float32 and f32.shape == ref.shape
    assert f32.min() >= 0.0 and f32.max() <= 1.0
    np.testing.assert_array_equal(quantize(f32, 8), ref, err_msg=f"{name}: float32 quantised != uint8 result")

    f64 = model(rgb / 255.0, mask=None if mask is None else mask.astype(bool))
    assert f64.dtype == np.float64 and f64.shape == ref.shape
    np.testing.assert_allclose(f64, f32, atol=2e-3)

    u16 = model(rgb.astype(np.uint16) * np.uint16(257), mask=mask)
    assert u16.dtype == np.uint16 and u16.shape == ref.shape
    # 16-bit codes: the same image to within one 8-bit level, but finer than 8 bits somewhere
    assert np.abs(u16.astype(np.int64) - ref.astype(np.int64) * 257).max() <= 257
    if name != "labnet":  # LAB-Net converts to and from LAB in 8-bit codes (OpenCV), as officially
        assert (u16 % 257 != 0).any(), f"{name}: the 16-bit output holds only 8-bit values"

    grey = model(rgb[:, :, 1], mask=mask)  # (H, W): a colour network sees it replicated
    assert grey.dtype == np.uint8 and grey.shape == (s * h, s * w, 3)
    np.testing.assert_array_equal(grey, model(np.repeat(rgb[:, :, 1:2], 3, axis=2), mask=mask))


def test_tensors_come_back_as_tensors_of_their_dtype_and_layout(case, rgb):
    name, model = case
    h, w = rgb.shape[:2]
    s = model.scale
    mask = rectangle_mask(h, w) if model.needs_mask else None
    mask_t = torch.from_numpy(mask) if mask is not None else None
    ref, f32 = reference(name, model, rgb, mask)

    chw = torch.from_numpy(rgb).permute(2, 0, 1)
    out = model(chw.float() / 255, mask=mask_t)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (3, s * h, s * w)
    torch.testing.assert_close(out, torch.from_numpy(f32).permute(2, 0, 1), atol=0, rtol=0)

    out8 = model(chw, mask=mask_t)
    assert out8.dtype == torch.uint8 and out8.shape == (3, s * h, s * w)
    assert torch.equal(out8, torch.from_numpy(ref).permute(2, 0, 1))

    batch = torch.stack([chw, chw.flip(-1)]).half() / 255  # (2, 3, H, W) float16
    out16 = model(batch, mask=mask_t)
    assert out16.dtype == torch.float16 and out16.shape == (2, 3, s * h, s * w)
    torch.testing.assert_close(out16[0].float(), out.float(), atol=2e-3, rtol=0)
    assert not torch.equal(out16[0], out16[1]), f"{name}: the batch's two images gave one output"
