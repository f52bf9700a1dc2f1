"""restore.data.image_io: formats, bit depths, channel rules, errors, listing, atomic writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from data_helpers import assert_one_line, random_rgb, save_rgb

from restore.data import image_io
from restore.data.image_io import (
    filter_names,
    image_to_tensor,
    list_images,
    quantize,
    read_image,
    to_channels,
    write_image,
)
from restore.errors import DataError
from restore.utils import files


def test_rgb_order_red_pixel_written_by_cv2(tmp_path):
    bgr = np.zeros((2, 3, 3), np.uint8)
    bgr[0, 0] = (0, 0, 255)  # red in OpenCV's BGR order
    path = tmp_path / "red.png"
    cv2.imwrite(str(path), bgr)
    rgb = read_image(path)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [255, 0, 0]
    t = image_to_tensor(rgb)
    assert t.shape == (3, 2, 3) and t.dtype == torch.float32
    assert t[:, 0, 0].tolist() == [1.0, 0.0, 0.0]


def test_write_image_stores_bgr_on_disk(tmp_path):
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 0] = 200  # red
    write_image(tmp_path / "r.png", rgb)
    on_disk = cv2.imread(str(tmp_path / "r.png"), cv2.IMREAD_UNCHANGED)
    assert on_disk[0, 0].tolist() == [0, 0, 200]


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".tiff", ".PNG"])
def test_lossless_8bit_round_trip(tmp_path, rng, ext):
    img = random_rgb(rng, 17, 23)
    path = write_image(tmp_path / f"x{ext}", img)
    back = read_image(path)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, img)


@pytest.mark.parametrize("ext", [".jpg", ".jpeg"])
def test_jpeg_reads_like_opencv(tmp_path, rng, ext):
    img = np.full((32, 32, 3), (220, 40, 90), np.uint8)
    path = write_image(tmp_path / f"x{ext}", img)
    back = read_image(path)
    expected = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(back, expected)
    assert np.abs(back.astype(int) - img).max() <= 4  # lossy, but a flat colour survives


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_round_trip_and_scale(tmp_path, rng, ext):
    img = rng.integers(0, 65536, size=(9, 11, 3), dtype=np.uint16)
    img[0, 0] = (65535, 257, 0)
    path = write_image(tmp_path / f"x{ext}", img, bit_depth=16)
    back = read_image(path)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, img)
    t = image_to_tensor(back)
    assert t[:, 0, 0].tolist() == pytest.approx([1.0, 257 / 65535, 0.0])
    assert torch.allclose(t, torch.from_numpy(img.transpose(2, 0, 1).astype(np.float32) / 65535))


def test_16bit_to_jpeg_is_refused(tmp_path):
    with pytest.raises(DataError) as e:
        write_image(tmp_path / "x.jpg", np.zeros((4, 4, 3), np.uint16), bit_depth=16)
    assert_one_line(e, "x.jpg", "16-bit")


def test_grey_read_and_replicated_to_rgb(tmp_path, rng):
    grey = rng.integers(0, 256, size=(5, 7), dtype=np.uint8)
    path = save_rgb(tmp_path / "g.png", grey)
    arr = read_image(path)
    assert arr.shape == (5, 7, 1)
    rgb = to_channels(arr, 3)
    assert rgb.shape == (5, 7, 3)
    for c in range(3):
        np.testing.assert_array_equal(rgb[:, :, c], grey)
    np.testing.assert_array_equal(to_channels(arr, 1)[:, :, 0], grey)


def test_rgba_alpha_is_dropped_not_composited(tmp_path, rng):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = random_rgb(rng, 4, 4)
    rgba[..., 3] = 0  # fully transparent: compositing would change the colours
    rgba[0, 0] = (10, 20, 30, 77)
    path = save_rgb(tmp_path / "a.png", rgba)
    arr = read_image(path)
    assert arr.shape == (4, 4, 4)
    assert arr[0, 0].tolist() == [10, 20, 30, 77]  # RGBA order
    np.testing.assert_array_equal(to_channels(arr, 3), rgba[..., :3])


def test_colour_to_grey_is_bt601_luma(rng):
    rgb = random_rgb(rng, 8, 8)
    grey = to_channels(rgb, 1)
    expected = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    assert grey.shape == (8, 8, 1)
    assert np.abs(grey[..., 0] - expected).max() <= 0.51


def test_grey_is_opencv_rounding_not_pil(rng):
    """The documented rule: OpenCV's RGB2GRAY exactly; PIL's convert("L") may differ by 1."""
    from PIL import Image

    rgb = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    grey = to_channels(rgb, 1)[..., 0]
    np.testing.assert_array_equal(grey, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    pil = np.asarray(Image.fromarray(rgb).convert("L"))
    diff = np.abs(grey.astype(int) - pil.astype(int))
    assert diff.max() == 1  # not equal, as the docstring used to claim, but within 1
    doc = image_io.__doc__ + (to_channels.__doc__ or "")
    assert "which is also PIL" not in doc and "differ by 1" in doc


def test_grey_alpha_drops_alpha():
    ga = np.stack([np.full((2, 2), 9, np.uint8), np.zeros((2, 2), np.uint8)], axis=2)
    assert to_channels(ga, 1)[..., 0].tolist() == [[9, 9], [9, 9]]
    assert to_channels(ga, 3).shape == (2, 2, 3)


def test_float_writes_round_half_to_even(tmp_path):
    ks = np.arange(6, dtype=np.float64)
    x = (ks + 0.5) / 255
    assert np.all(x * 255 == ks + 0.5)  # exact halves, so the rounding rule is visible
    q = quantize(x.reshape(1, 6, 1), 8).ravel()
    assert q.tolist() == [0, 2, 2, 4, 4, 6]
    assert quantize(np.array([[[-0.2, 1.7]]]), 8).ravel().tolist() == [0, 255]


def test_tensor_write_then_read(tmp_path, rng):
    t = torch.rand(3, 6, 5, generator=torch.Generator().manual_seed(0))
    write_image(tmp_path / "t.png", t)
    back = read_image(tmp_path / "t.png")
    expected = np.rint(t.double().numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
    np.testing.assert_array_equal(back, expected)
    write_image(tmp_path / "t16.png", t, bit_depth=16)
    back16 = read_image(tmp_path / "t16.png")
    assert back16.dtype == np.uint16
    assert np.abs(back16 / 65535.0 - t.numpy().transpose(1, 2, 0)).max() <= 0.5 / 65535 + 1e-7


def test_grey_tensor_write(tmp_path):
    write_image(tmp_path / "g.png", torch.full((1, 3, 4), 0.5))
    arr = read_image(tmp_path / "g.png")
    assert arr.shape == (3, 4, 1) and int(arr[0, 0, 0]) == 128  # rint(127.5) = 128 (even)


def test_write_is_atomic_and_overwrites(tmp_path, rng):
    out = tmp_path / "sub" / "dir" / "x.png"
    write_image(out, random_rgb(rng, 4, 4))
    second = random_rgb(rng, 4, 4)
    write_image(out, second)
    np.testing.assert_array_equal(read_image(out), second)
    assert sorted(p.name for p in out.parent.iterdir()) == ["x.png"]  # no temp files left


@pytest.mark.parametrize(
    "setup, expect",
    [
        ("missing", "no such file"),
        ("empty", "file is empty (0 bytes)"),
        ("corrupt", "corrupt"),
        ("truncated_png", "corrupt"),
        ("folder", "folder"),
        ("extension", "unsupported extension"),
    ],
)
def test_read_errors_are_one_line_and_name_the_file(tmp_path, rng, setup, expect):
    path = tmp_path / "img.png"
    if setup == "empty":
        path.write_bytes(b"")
    elif setup == "corrupt":
        path.write_bytes(b"this is not an image at all" * 10)
    elif setup == "truncated_png":
        save_rgb(tmp_path / "full.png", random_rgb(rng, 64, 64))
        path.write_bytes((tmp_path / "full.png").read_bytes()[:40])
    elif setup == "folder":
        path.mkdir()
    elif setup == "extension":
        path = tmp_path / "img.gif"
        path.write_bytes(b"GIF89a")
    with pytest.raises(DataError) as e:
        read_image(path)
    assert_one_line(e, str(path), expect)


def test_list_images_sorted_filtered_recursive(tmp_path, rng):
    img = random_rgb(rng, 2, 2)
    for rel in ["b.png", "a.JPG", "sub/c.PNG", "sub/deeper/d.tif", ".hidden.png", ".cache/e.png"]:
        save_rgb(tmp_path / rel.replace("JPG", "jpg").replace("PNG", "png"), img)
        (tmp_path / rel.replace("JPG", "jpg").replace("PNG", "png")).rename(tmp_path / rel)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "blocks.mat").write_bytes(b"x")
    rels = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert rels == ["a.JPG", "b.png", "sub/c.PNG", "sub/deeper/d.tif"]
    flat = [p.name for p in list_images(tmp_path, recursive=False)]
    assert flat == ["a.JPG", "b.png"]


def test_list_images_errors(tmp_path):
    with pytest.raises(DataError) as e:
        list_images(tmp_path / "nope")
    assert_one_line(e, str(tmp_path / "nope"), "does not exist")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(DataError) as e:
        list_images(tmp_path / "empty")
    assert_one_line(e, str(tmp_path / "empty"), "no images")
    (tmp_path / "f.png").write_bytes(b"x")
    with pytest.raises(DataError) as e:
        list_images(tmp_path / "f.png")
    assert_one_line(e, "f.png", "not a folder")


def test_filter_names(tmp_path):
    paths = [tmp_path / "0001_NOISY_SRGB_010.PNG", tmp_path / "0001_GT_SRGB_010.PNG"]
    assert filter_names(paths, "*NOISY*", tmp_path, "input_pattern") == paths[:1]
    assert filter_names(paths, None, tmp_path, "input_pattern") == paths
    with pytest.raises(DataError) as e:
        filter_names(paths, "*noisy*", tmp_path, "input_pattern")  # case-sensitive
    assert_one_line(e, str(tmp_path), "input_pattern")


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_get_umask_permissions(tmp_path, rng, umask):
    """Not mkstemp's private 0600: what open() would create under the process umask."""
    old = os.umask(umask)
    try:
        out = write_image(tmp_path / "x.png", random_rgb(rng, 4, 4))
        assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask
        write_image(out, random_rgb(rng, 4, 4))  # overwriting too
        assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask
        assert os.umask(umask) == umask  # the writer left the umask as it was
    finally:
        os.umask(old)


def test_umask_without_proc(monkeypatch):
    """Where /proc is missing the umask is read by setting it, and restored at once."""
    import builtins

    real_open = builtins.open

    def no_proc(path, *args, **kwargs):
        if str(path).startswith("/proc/"):
            raise FileNotFoundError(2, "No such file or directory", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_proc)
    old = os.umask(0o027)
    try:
        assert files._umask() == 0o027
        assert os.umask(0o027) == 0o027
    finally:
        os.umask(old)


def test_list_images_symlink_cycle_lists_each_file_once(tmp_path, rng):
    img = random_rgb(rng, 2, 2)
    cycle = tmp_path / "cycle"
    save_rgb(cycle / "a" / "x.png", img)
    save_rgb(cycle / "b" / "y.png", img)
    (cycle / "a" / "loop").symlink_to(cycle, target_is_directory=True)  # a/loop -> root
    assert [p.relative_to(cycle).as_posix() for p in list_images(cycle)] == ["a/x.png", "b/y.png"]
    alias = tmp_path / "alias"
    save_rgb(alias / "a" / "x.png", img)
    (alias / "c").symlink_to(alias / "a", target_is_directory=True)  # a second name for a
    (alias / "a" / "self").symlink_to(alias / "a", target_is_directory=True)
    assert [p.relative_to(alias).as_posix() for p in list_images(alias)] == ["a/x.png"]


def test_list_images_unreadable_subfolder(tmp_path, rng, monkeypatch):
    """Tests run as root (chmod does not stop reads), so the refusal is simulated."""
    save_rgb(tmp_path / "ok" / "x.png", random_rgb(rng, 2, 2))
    save_rgb(tmp_path / "locked" / "y.png", random_rgb(rng, 2, 2))
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(DataError) as e:  # os.walk used to skip it silently
        list_images(tmp_path)
    assert_one_line(e, str(tmp_path / "locked"), "Permission denied")


def test_list_images_unreadable_folder_flat(tmp_path, monkeypatch):
    def iterdir(self):  # like the real one, fails when iterated
        raise PermissionError(13, "Permission denied", str(self))
        yield

    monkeypatch.setattr(Path, "iterdir", iterdir)
    with pytest.raises(DataError) as e:  # was a bare PermissionError
        list_images(tmp_path, recursive=False)
    assert_one_line(e, str(tmp_path), "Permission denied")
