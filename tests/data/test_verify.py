"""dataset.verify(): every file checked from its header, failing exactly as load() would."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from data_helpers import assert_one_line, random_rgb, save_rgb

from restore.data import image_io
from restore.data.noisy_folder import NoisyFolderDataset
from restore.data.paired_folder import PairedFolderDataset
from restore.data.shadow_folder import ShadowDataset
from restore.data.sidd_blocks import SIDDBlocksDataset
from restore.data.synthetic_noise import SyntheticNoiseDataset
from restore.errors import DataError

H, W = 12, 16


def corrupt(path, how):
    """Spoil an image file: ``empty`` (0 bytes), ``text`` (not an image) or ``truncated`` header."""
    if how == "empty":
        path.write_bytes(b"")
    elif how == "text":
        path.write_text("this is not a PNG, whatever its name says\n" * 4)
    else:
        path.write_bytes(path.read_bytes()[:20])  # PNG signature + part of IHDR


def same_error_as_load(ds, index, *parts):
    """verify() raises a one-line DataError naming ``parts``, with load()'s very message."""
    with pytest.raises(DataError) as e:
        ds.verify()
    msg = assert_one_line(e, *parts)
    with pytest.raises(DataError) as loaded:
        ds[(index, 0)]
    assert str(loaded.value) == msg
    return msg


def no_decoding(monkeypatch):
    """Make a full decode fail, to show that verify() reads headers only."""
    def boom(data):
        raise AssertionError("verify() decoded pixels")

    monkeypatch.setattr(image_io, "_decode", boom)


@pytest.fixture
def pairs(tmp_path, rng):
    for name in ("a", "b", "c"):
        img = random_rgb(rng, H, W)
        save_rgb(tmp_path / "in" / f"{name}.png", img)
        save_rgb(tmp_path / "gt" / f"{name}.png", img)
    return tmp_path / "in", tmp_path / "gt"


def paired(pairs, **kw):
    return PairedFolderDataset(str(pairs[0]), str(pairs[1]), phase="val", **kw)


def test_paired_valid_set_reads_headers_only(pairs, monkeypatch):
    no_decoding(monkeypatch)
    assert paired(pairs).verify() == 3
    assert paired(pairs, crop_size=H).verify() == 3


@pytest.mark.parametrize("how, expect", [("empty", "file is empty"), ("text", "corrupt"), ("truncated", "corrupt")])
@pytest.mark.parametrize("role", [0, 1])
def test_paired_bad_file(pairs, how, expect, role):
    bad = pairs[role] / "b.png"
    corrupt(bad, how)
    same_error_as_load(paired(pairs), 1, str(bad), expect)


def test_paired_size_mismatch(pairs, rng):
    save_rgb(pairs[1] / "c.png", random_rgb(rng, H, W + 1))
    same_error_as_load(paired(pairs), 2, str(pairs[0] / "c.png"), str(pairs[1] / "c.png"), "17x12")


def test_paired_scale_and_crop(tmp_path, rng):
    save_rgb(tmp_path / "lr" / "a.png", random_rgb(rng, H, W))
    save_rgb(tmp_path / "hr" / "a.png", random_rgb(rng, 2 * H, 2 * W))
    lr, hr = str(tmp_path / "lr"), str(tmp_path / "hr")
    assert PairedFolderDataset(lr, hr, scale=2).verify() == 1
    with pytest.raises(DataError) as e:
        PairedFolderDataset(lr, hr).verify()  # scale 1: the 2x target is a size mismatch
    assert_one_line(e, "32x24", "expected 16x12")
    with pytest.raises(DataError) as e:
        PairedFolderDataset(lr, hr, scale=3).verify()
    assert_one_line(e, "expected 48x36 (3x the input)")
    same_error_as_load(PairedFolderDataset(lr, hr, scale=2, crop_size=H + 1), 0, "smaller than crop_size 13")


def test_paired_tip2018_sizes(tmp_path, rng):
    save_rgb(tmp_path / "src" / "a.png", random_rgb(rng, H, W))
    save_rgb(tmp_path / "tgt" / "a.png", random_rgb(rng, H, W))
    src, tgt = str(tmp_path / "src"), str(tmp_path / "tgt")
    # TIP2018 resizes to 256x256 before cropping, so a crop larger than the file is fine ...
    assert PairedFolderDataset(src, tgt, preprocess="tip2018", crop_size=200).verify() == 1
    # ... but not one larger than 256, and the pair must still match before pre-processing
    same_error_as_load(PairedFolderDataset(src, tgt, preprocess="tip2018", crop_size=300), 0,
                       "256x256", "crop_size 300")
    save_rgb(tmp_path / "tgt" / "a.png", random_rgb(rng, H + 3, W))
    same_error_as_load(PairedFolderDataset(src, tgt, preprocess="tip2018"), 0, "16x15")


@pytest.fixture
def shadow(tmp_path, rng):
    for name in ("1", "2"):
        img = random_rgb(rng, H, W)
        save_rgb(tmp_path / "test_A" / f"{name}.png", img)
        save_rgb(tmp_path / "test_B" / f"{name}.png", np.where(img[:, :, 0] > 100, 255, 0).astype(np.uint8))
        save_rgb(tmp_path / "test_C" / f"{name}.png", img)
    return tmp_path


def shadow_set(root, **kw):
    return ShadowDataset(root=str(root), split="test", phase="test", **kw)


def test_shadow_valid_set_reads_headers_only(shadow, monkeypatch):
    no_decoding(monkeypatch)
    assert shadow_set(shadow).verify() == 2
    assert shadow_set(shadow, with_target=False).verify() == 2


@pytest.mark.parametrize("how, expect", [("empty", "file is empty"), ("text", "corrupt"), ("truncated", "corrupt")])
@pytest.mark.parametrize("folder", ["test_A", "test_B", "test_C"])
def test_shadow_bad_file(shadow, how, expect, folder):
    bad = shadow / folder / "2.png"
    corrupt(bad, how)
    same_error_as_load(shadow_set(shadow), 1, str(bad), expect)


def test_shadow_mask_and_target_size(shadow, rng):
    save_rgb(shadow / "test_B" / "1.png", np.zeros((H, W - 1), np.uint8))
    same_error_as_load(shadow_set(shadow), 0, str(shadow / "test_B" / "1.png"), "15x12", "a mask must")
    save_rgb(shadow / "test_B" / "1.png", np.zeros((H, W), np.uint8))  # all zero: no shadow, legal
    save_rgb(shadow / "test_C" / "2.png", random_rgb(rng, H + 1, W))
    same_error_as_load(shadow_set(shadow), 1, str(shadow / "test_C" / "2.png"), "16x13")
    assert shadow_set(shadow, with_target=False).verify() == 2  # the bad target is not read


def test_shadow_01_mask_passes(shadow):
    save_rgb(shadow / "test_B" / "1.png", (np.arange(H * W).reshape(H, W) % 2).astype(np.uint8))
    assert shadow_set(shadow).verify() == 2


@pytest.mark.parametrize("make", [
    lambda root: NoisyFolderDataset(str(root), phase="test"),
    lambda root: SyntheticNoiseDataset(str(root), phase="test"),
    lambda root: SyntheticNoiseDataset(str(root), phase="test", repeat=3),
], ids=["noisy_folder", "synthetic_noise", "synthetic_noise_repeat"])
def test_single_image_sets(tmp_path, rng, monkeypatch, make):
    for name in ("a", "b"):
        save_rgb(tmp_path / f"{name}.png", random_rgb(rng, H, W))
    ds = make(tmp_path)
    with monkeypatch.context() as m:
        no_decoding(m)
        assert ds.verify() == len(ds)
    for how, expect in (("truncated", "corrupt"), ("text", "corrupt"), ("empty", "file is empty")):
        corrupt(tmp_path / "b.png", how)
        same_error_as_load(ds, 1, str(tmp_path / "b.png"), expect)
    save_rgb(tmp_path / "b.png", random_rgb(rng, H, W))
    ds.crop_size = W
    same_error_as_load(ds, 0, str(tmp_path / "a.png"), "smaller than crop_size 16")


def test_files_opencv_reads_but_pil_does_not_pass(tmp_path, rng, monkeypatch):
    """A header PIL cannot parse falls back to a full decode rather than a false alarm."""
    img = random_rgb(rng, H, W)
    save_rgb(tmp_path / "a.png", img)
    from PIL import Image

    def refuse(*args, **kwargs):
        raise OSError("cannot identify image file")

    monkeypatch.setattr(Image, "open", refuse)
    assert image_io.read_image_size(tmp_path / "a.png") == (H, W)
    assert NoisyFolderDataset(str(tmp_path)).verify() == 1


def test_16bit_and_float_headers(tmp_path, rng):
    img16 = rng.integers(0, 65536, size=(H, W, 3), dtype=np.uint16)
    image_io.write_image(tmp_path / "x.png", img16, bit_depth=16)
    image_io.write_image(tmp_path / "g.tif", img16[:, :, 0], bit_depth=16)
    assert image_io.read_image_size(tmp_path / "x.png") == (H, W)
    assert image_io.read_image_size(tmp_path / "g.tif") == (H, W)
    import cv2

    cv2.imwrite(str(tmp_path / "f.tif"), np.zeros((H, W), np.float32))  # read_image refuses floats
    with pytest.raises(DataError) as e:
        image_io.read_image_size(tmp_path / "f.tif")
    assert_one_line(e, "f.tif", "unsupported pixel type float32")


def test_sidd_blocks_verify(tmp_path, rng):
    path = tmp_path / "ValidationNoisyBlocksSrgb.mat"
    scipy.io.savemat(path, {"ValidationNoisyBlocksSrgb": rng.integers(0, 256, (2, 3, 16, 16, 3), dtype=np.uint8)})
    assert SIDDBlocksDataset(str(path)).verify() == 6
    assert SIDDBlocksDataset(str(path), crop_size=16, max_images=4).verify() == 4
    same_error_as_load(SIDDBlocksDataset(str(path), crop_size=17), 0, str(path), "smaller than crop_size 17")
