"""Images too large to decode are refused from their header, before any pixel is decoded.

The refusal reaches the user as one line everywhere an image is read: the reader itself,
``restore infer`` (the run goes on), ``restore score``, ``train --check`` and training.
"""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import pytest
from data_helpers import assert_one_line, random_rgb, save_rgb

from restore.cli.main import main
from restore.data import image_header, image_io
from restore.data.paired_folder import PairedFolderDataset
from restore.errors import ConfigError, DataError


def png_bytes(width: int, height: int, idat: bytes = b"") -> bytes:
    """A PNG written by hand (8-bit RGB), its header claiming ``width`` x ``height``."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def zeros_png(size: int) -> bytes:
    """A real, complete PNG of ``size`` x ``size`` black RGB pixels (compresses to almost nothing)."""
    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * size)
    body = b"".join(packer.compress(row) for _ in range(size)) + packer.flush()
    return png_bytes(size, size, body)


@pytest.fixture
def no_decoding(monkeypatch):
    def boom(data):
        raise AssertionError("an image over the limit was decoded")

    monkeypatch.setattr(image_io, "_decode", boom)


def test_tiny_file_claiming_ten_gigapixels_is_refused_from_its_header(tmp_path, no_decoding):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes(100_000, 100_000))
    assert path.stat().st_size < 100
    for read in (image_io.read_image, image_io.read_image_size):
        with pytest.raises(DataError) as e:
            read(path)
        assert_one_line(e, str(path), "100000x100000", "over the limit of 50.0 MP", "RESTORE_MAX_PIXELS")


def test_16000_squared_zeros_png_is_refused_quickly(tmp_path, no_decoding):
    path = tmp_path / "zeros.png"
    path.write_bytes(zeros_png(16_000))
    assert path.stat().st_size < 1_000_000  # about 750 KB that would decode to 768 MB
    start = time.perf_counter()
    with pytest.raises(DataError) as e:
        image_io.read_image(path)
    assert time.perf_counter() - start < 1.0
    assert_one_line(e, "16000x16000", "256.0 MP")


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif", ".bmp"])
def test_the_limit_is_read_from_every_format_header(tmp_path, rng, monkeypatch, ext):
    path = save_rgb(tmp_path / f"a{ext}", random_rgb(rng, 30, 40))
    monkeypatch.setenv("RESTORE_MAX_PIXELS", "1199")
    with monkeypatch.context() as m:
        m.setattr(image_io, "_decode", lambda data: pytest.fail("decoded"))
        with pytest.raises(DataError) as e:
            image_io.read_image(path)
    assert_one_line(e, str(path), "40x30", "over the limit")
    monkeypatch.setenv("RESTORE_MAX_PIXELS", "1200")  # exactly at the limit is allowed
    assert image_io.read_image(path).shape[:2] == (30, 40)


@pytest.mark.parametrize("value", ["abc", "-5", "0", "1.5", "inf"])
def test_a_bad_limit_value_is_one_line(tmp_path, rng, monkeypatch, value):
    path = save_rgb(tmp_path / "a.png", random_rgb(rng, 4, 4))
    monkeypatch.setenv("RESTORE_MAX_PIXELS", value)
    with pytest.raises(ConfigError, match="RESTORE_MAX_PIXELS must be a positive number"):
        image_io.read_image(path)


def test_limit_accepts_underscores_and_exponents(monkeypatch):
    monkeypatch.setenv("RESTORE_MAX_PIXELS", "2_000_000")
    assert image_header.max_pixels() == 2_000_000
    monkeypatch.setenv("RESTORE_MAX_PIXELS", "1e8")
    assert image_header.max_pixels() == 100_000_000
    monkeypatch.delenv("RESTORE_MAX_PIXELS")
    assert image_header.max_pixels() == 50_000_000


def test_a_raised_limit_reads_beyond_pillows_own_bomb_guard(tmp_path, monkeypatch):
    """Pillow refuses headers over 2 x 89 MP by itself; with our limit raised, our limit rules."""
    from PIL import Image

    path = tmp_path / "wide.png"
    path.write_bytes(png_bytes(200_000, 1_000))  # 200 MP: over Pillow's guard
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 89_478_485)
    monkeypatch.setenv("RESTORE_MAX_PIXELS", str(300_000_000))
    header = image_header.read_header(path)
    assert header is not None and (header.width, header.height) == (200_000, 1_000)
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # restored after the header read


def test_a_file_far_larger_than_its_pixels_is_not_read(tmp_path, rng, monkeypatch):
    path = save_rgb(tmp_path / "a.png", random_rgb(rng, 8, 8))
    with path.open("ab") as handle:
        handle.write(b"\0" * 5000)  # trailing junk after IEND
    monkeypatch.setattr(image_header, "_METADATA_ALLOWANCE", 1024)
    with pytest.raises(DataError) as e:
        image_io.read_image(path)
    assert_one_line(e, str(path), "far more than a 8x8 image")


def test_dataset_load_and_verify_refuse_alike(tmp_path, rng):
    save_rgb(tmp_path / "in/a.png", random_rgb(rng, 16, 16))
    save_rgb(tmp_path / "gt/a.png", random_rgb(rng, 16, 16))
    (tmp_path / "in/b.png").write_bytes(png_bytes(100_000, 100_000))
    (tmp_path / "gt/b.png").write_bytes(png_bytes(100_000, 100_000))
    ds = PairedFolderDataset(str(tmp_path / "in"), str(tmp_path / "gt"), phase="val")
    with pytest.raises(DataError) as verified:
        ds.verify()
    with pytest.raises(DataError) as loaded:
        ds[(1, 0)]
    assert str(verified.value) == str(loaded.value)
    assert_one_line(verified, "b.png", "over the limit")


# --------------------------------------------------------------------------- through the CLI

OPTIONS = "name: px\ndevice: cpu\nnetwork: {type: n2n_unet, n_feature: 8}\n"


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    import torch

    from restore.archs.n2n_unet import N2NUNet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "n2n.pth"
    torch.save(N2NUNet(n_feature=8).state_dict(), path)
    return path


def test_infer_refuses_the_file_in_one_line_and_goes_on(tmp_path, rng, weights, capfd):
    save_rgb(tmp_path / "in/a.png", random_rgb(rng, 32, 32))
    (tmp_path / "in/b_bomb.png").write_bytes(png_bytes(100_000, 100_000))
    (tmp_path / "in/c_zeros.png").write_bytes(zeros_png(16_000))
    save_rgb(tmp_path / "in/d.png", random_rgb(rng, 32, 32))
    (tmp_path / "o.yml").write_text(OPTIONS)
    code = main(["infer", "-opt", str(tmp_path / "o.yml"), "--weights", str(weights),
                 "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")])
    assert code == 1
    captured = capfd.readouterr()
    lines = captured.err.strip().splitlines()
    assert "Traceback" not in captured.err and len(lines) == 2, lines
    assert "b_bomb.png" in lines[0] and "over the limit" in lines[0]
    assert "c_zeros.png" in lines[1] and "16000x16000" in lines[1]
    assert "restored 2, skipped 0 (output exists), failed 2" in captured.out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "d.png"]


def test_score_refuses_in_one_line(tmp_path, rng, capsys):
    img = random_rgb(rng, 16, 16)
    save_rgb(tmp_path / "gt/a.png", img)
    (tmp_path / "pred").mkdir()
    (tmp_path / "pred/a.png").write_bytes(png_bytes(100_000, 100_000))
    code = main(["score", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                 "--csv", str(tmp_path / "s.csv")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pred/a.png" in err[0] and "over the limit" in err[0], err
    assert not (tmp_path / "s.csv").exists()


TRAIN = """\
name: px
device: cpu
network: {{type: n2n_unet, n_feature: 8}}
path: {{experiments_root: {root}/exp}}
train: {{total_iter: 1, val_every: 1}}
datasets:
  train: {{type: paired_folder, input_dir: {root}/in, target_dir: {root}/gt, crop_size: 8, batch_size: 1, num_workers: 0}}
"""


@pytest.mark.parametrize("check", [["--check"], ["--check=quick"], []])
def test_train_check_and_training_refuse_in_one_line(tmp_path, rng, capsys, check):
    for folder in ("in", "gt"):
        save_rgb(tmp_path / folder / "a.png", random_rgb(rng, 16, 16))
        (tmp_path / folder / "b.png").write_bytes(png_bytes(100_000, 100_000))
    (tmp_path / "o.yml").write_text(TRAIN.format(root=tmp_path))
    assert main(["train", "-opt", str(tmp_path / "o.yml"), *check]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    expected = 2 if check else 1  # --check lists both files; training stops at the first
    assert len(err) == expected and all("over the limit" in line for line in err), err
    assert "in/b.png" in err[0]
    assert not any((tmp_path / "exp").rglob("*.pth"))


def test_a_bad_limit_stops_infer_and_check_before_anything_is_written(tmp_path, rng, weights, capsys, monkeypatch):
    save_rgb(tmp_path / "in/a.png", random_rgb(rng, 16, 16))
    save_rgb(tmp_path / "in/b.png", random_rgb(rng, 16, 16))
    (tmp_path / "o.yml").write_text(OPTIONS)
    monkeypatch.setenv("RESTORE_MAX_PIXELS", "lots")
    base = ["infer", "-opt", str(tmp_path / "o.yml"), "--weights", str(weights),
            "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]
    for extra in ([], ["--check"]):
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "RESTORE_MAX_PIXELS" in err[0] and "'lots'" in err[0], err
    assert not (tmp_path / "out").exists()
