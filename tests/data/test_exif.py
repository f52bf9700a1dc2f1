"""EXIF orientation: images (and masks) read upright, as viewers show them; outputs written upright.

Files are written by Pillow with a real ``Orientation`` tag. The expected pixels come from two
sources independent of restore: hand-written expectations for the marker position (EXIF 2.3:
6 means "turn 90 degrees clockwise to view", 8 anticlockwise, 3 half a turn, 2 mirror), and
Pillow's ``ImageOps.exif_transpose`` for all eight values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from restore import registry
from restore.cli.main import main
from restore.data.image_io import read_image, read_image_size
from restore.data.shadow_folder import read_mask

H, W = 20, 40  # stored: landscape


def stored_pixels() -> np.ndarray:
    """A white 5x10 marker in the top-left corner of a black landscape image."""
    a = np.zeros((H, W, 3), np.uint8)
    a[:5, :10] = 255
    return a


def save_with_orientation(path: Path, array: np.ndarray, orientation: int) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    extra = {"quality": 100, "subsampling": 0} if path.suffix == ".jpg" else {}
    Image.fromarray(array.squeeze()).save(path, exif=exif, **extra)
    return path


def marker_box(array: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the bright pixels."""
    ys, xs = np.nonzero(array[..., 0] > 128)
    return int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())


# orientation -> (upright shape (H, W), marker box after turning upright)
EXPECTED = {
    1: ((H, W), (0, 4, 0, 9)),
    2: ((H, W), (0, 4, 30, 39)),  # mirrored left-right
    3: ((H, W), (15, 19, 30, 39)),  # half a turn
    6: ((W, H), (0, 9, 15, 19)),  # a quarter turn clockwise: top-left goes top-right
    8: ((W, H), (30, 39, 0, 4)),  # a quarter turn anticlockwise: top-left goes bottom-left
}


@pytest.mark.parametrize("ext", [".jpg", ".png", ".tif"])
@pytest.mark.parametrize("orientation", sorted(EXPECTED))
def test_marker_lands_where_a_viewer_shows_it(tmp_path, ext, orientation):
    path = save_with_orientation(tmp_path / f"o{ext}", stored_pixels(), orientation)
    got = read_image(path)
    shape, box = EXPECTED[orientation]
    assert got.shape[:2] == shape
    assert marker_box(got) == box
    assert read_image_size(path) == shape  # the header-only size agrees (verify() == load())


@pytest.mark.parametrize("ext", [".jpg", ".png", ".tif"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_eight_orientations_match_pillows_transpose(tmp_path, ext, orientation):
    rng = np.random.default_rng(orientation)
    stored = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    path = save_with_orientation(tmp_path / f"o{ext}", stored, orientation)
    with Image.open(path) as img:
        upright = np.asarray(ImageOps.exif_transpose(img).convert("RGB")).astype(int)
    got = read_image(path).astype(int)
    assert got.shape == upright.shape
    tolerance = 2 if ext == ".jpg" else 0  # two JPEG decoders may round differently
    assert np.abs(got - upright).max() <= tolerance
    assert read_image_size(path) == got.shape[:2]


def test_a_mask_is_turned_upright_like_an_image(tmp_path):
    mask = np.zeros((H, W), np.uint8)
    mask[:5, :10] = 255
    path = save_with_orientation(tmp_path / "m.png", mask, 6)
    got = read_mask(path)
    assert got.shape == (W, H, 1)
    assert marker_box(got) == EXPECTED[6][1]


def test_no_tag_and_a_damaged_exif_block_read_as_stored(tmp_path):
    Image.fromarray(stored_pixels()).save(tmp_path / "plain.jpg", quality=100)
    assert read_image(tmp_path / "plain.jpg").shape == (H, W, 3)
    exif = Image.Exif()
    exif[0x0112] = 42  # not an orientation
    Image.fromarray(stored_pixels()).save(tmp_path / "odd.jpg", quality=100, exif=exif)
    assert read_image(tmp_path / "odd.jpg").shape == (H, W, 3)


def test_infer_writes_the_upright_image_without_the_tag(tmp_path, capsys):
    """An Orientation=6 photo comes back portrait, displaying like the input; the tag is gone."""
    (tmp_path / "in").mkdir()
    save_with_orientation(tmp_path / "in/photo.jpg", stored_pixels(), 6)
    torch.save(Identity().state_dict(), tmp_path / "w.pth")
    (tmp_path / "o.yml").write_text("name: ex\ndevice: cpu\nnetwork: {type: exif_identity}\n")
    with registry.registered("arch", "exif_identity", f"{__name__}:Identity"):
        code = main(["infer", "-opt", str(tmp_path / "o.yml"), "--weights", str(tmp_path / "w.pth"),
                     "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--format", "png"])
    assert code == 0, capsys.readouterr().err
    out = tmp_path / "out/photo.png"
    with Image.open(out) as img:
        assert img.size == (H, W)  # (width, height): portrait
        assert img.getexif().get(0x0112) is None
        assert marker_box(np.asarray(img.convert("RGB"))) == EXPECTED[6][1]


class Identity(torch.nn.Module):
    """A network that returns its input (its weights: one unused buffer)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("unused", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
