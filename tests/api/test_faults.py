"""Bad input to the Python API: one-line :mod:`restore.errors` exceptions, the CLI's where it has one.

Where ``restore infer`` can meet the same fault (a missing weights file, a bad ``infer`` value,
a missing image), the exception's message is compared with the line the CLI prints.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from api_nets import generated_image, rectangle_mask
from data_helpers import assert_one_line, save_rgb

import restore
from restore.cli.main import main
from restore.errors import ConfigError, DataError, RestoreError


@pytest.fixture(scope="module")
def n2n(case_files):
    options, weights = case_files["n2n_unet"]
    return restore.load(options, weights=weights)


@pytest.fixture(scope="module")
def labnet(case_files):
    options, weights = case_files["labnet"]
    return restore.load(options, weights=weights)


def cli_error(capsys, *args: str) -> str:
    """The one error line of ``restore ARGS``, without its ``restore: error: `` prefix."""
    capsys.readouterr()
    assert main(list(args)) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("restore: error: "), lines
    return lines[0][len("restore: error: "):]


@pytest.mark.parametrize("image,fragments", [
    (np.zeros((40, 56, 5), np.uint8), ["shape (40, 56, 5)", "C = 1 (grey)"]),
    (np.zeros((3, 40, 56), np.uint8), ["shape (3, 40, 56)", "transpose(1, 2, 0)"]),
    (np.zeros((2, 40, 56, 3), np.uint8), ["shape (2, 40, 56, 3)"]),
    (torch.zeros(6, 40, 56), ["(C, H, W) tensor", "(6, 40, 56)"]),
    (torch.zeros(1, 1, 3, 40, 56), ["(N, C, H, W)", "(1, 1, 3, 40, 56)"]),
    (np.zeros((40, 56, 3), np.int32), ["unsupported dtype int32"]),
    (torch.zeros(3, 40, 56, dtype=torch.int64), ["unsupported tensor dtype torch.int64"]),
    (generated_image().astype(np.float32), ["must lie in [0, 1]", "0..255", "divide 8-bit values by 255"]),
    (np.full((40, 56, 3), np.nan, np.float32), ["NaN"]),
    ([[0, 1], [1, 0]], ["expected a numpy array, a PIL image, a torch tensor or a path, got list"]),
])
def test_images_the_api_cannot_take_are_one_line_data_errors(n2n, image, fragments):
    with pytest.raises(DataError) as excinfo:
        n2n(image)
    assert_one_line(excinfo, "image: ", *fragments)


def test_a_missing_or_broken_image_file_is_the_cli_message(n2n, case_files, tmp_path, capsys):
    options, weights = case_files["n2n_unet"]
    (tmp_path / "in").mkdir()
    (tmp_path / "in/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(DataError) as excinfo:
        n2n(tmp_path / "in/broken.png")
    assert_one_line(excinfo, str(tmp_path / "in/broken.png"))
    capsys.readouterr()
    assert main(["infer", "-opt", str(options), "--weights", str(weights), "--input", str(tmp_path / "in"),
                 "--output", str(tmp_path / "out"), "--no-progress"]) == 1
    assert f"restore: failed: {excinfo.value}" in capsys.readouterr().err
    with pytest.raises(DataError) as excinfo:
        n2n(tmp_path / "in/none.png")
    assert_one_line(excinfo, "none.png", "no such file")


def test_a_missing_weights_file_is_the_cli_message(case_files, tmp_path, capsys):
    options, _ = case_files["n2n_unet"]
    missing = tmp_path / "nope.pth"
    with pytest.raises(DataError) as excinfo:
        restore.load(options, weights=missing)
    assert_one_line(excinfo, str(missing))
    save_rgb(tmp_path / "in/a.png", generated_image())
    assert str(excinfo.value) == cli_error(capsys, "infer", "-opt", str(options), "--weights", str(missing),
                                           "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"))


def test_weights_of_another_network_are_the_cli_message(case_files, tmp_path, capsys):
    options, _ = case_files["n2n_unet"]
    _, other = case_files["wdnet"]
    with pytest.raises(RestoreError) as excinfo:
        restore.load(options, weights=other)
    assert_one_line(excinfo, str(other))
    save_rgb(tmp_path / "in/a.png", generated_image())
    assert str(excinfo.value) == cli_error(capsys, "infer", "-opt", str(options), "--weights", str(other),
                                           "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"))


@pytest.mark.parametrize("override,value,fragments", [
    ("tile", "big", ["key 'infer.tile' must be int or null, got str 'big'"]),
    ("tiles", 3, ["unknown key 'infer.tiles'", "did you mean 'tile'?"]),
    ("backend", "tensorrt", ["key 'infer.backend' must be one of"]),
    ("tile_batch", 1.5, ["key 'infer.tile_batch' must be int"]),
])
def test_a_bad_override_is_the_option_file_check(case_files, tmp_path, capsys, override, value, fragments):
    options, weights = case_files["n2n_unet"]
    with pytest.raises(ConfigError) as excinfo:
        restore.load(options, weights=weights, **{override: value})
    message = assert_one_line(excinfo, f"restore.load({override}=...): ", *fragments)
    # the same check as the option file: the CLI's line for --set infer.KEY=VALUE, after its origin
    save_rgb(tmp_path / "in/a.png", generated_image())
    line = cli_error(capsys, "infer", "-opt", str(options), "--weights", str(weights), "--set", f"infer.{override}={value}",
                     "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"))
    assert message.split(": ", 1)[1] == line.split(": ", 1)[1]


def test_values_the_engine_refuses_are_refused_at_load(case_files):
    options, weights = case_files["n2n_unet"]
    with pytest.raises(ConfigError) as excinfo:
        restore.load(options, weights=weights, tile=0)
    assert_one_line(excinfo, "key 'infer.tile' must be a positive number of pixels, got 0")
    with pytest.raises(ConfigError) as excinfo:
        restore.load(options, weights=weights, tile=64, tile_overlap=64)
    assert_one_line(excinfo, "key 'infer.tile_overlap' must be in [0, tile=64), got 64")
    with pytest.raises(ConfigError) as excinfo:
        restore.load(options, weights=weights, device="cuda:7" if torch.cuda.is_available() else "cuda")
    assert_one_line(excinfo, "key 'device'")


def test_no_weights_and_no_option_file_are_one_line(case_files, tmp_path):
    options, _ = case_files["n2n_unet"]
    with pytest.raises(ConfigError) as excinfo:
        restore.load(options)
    assert_one_line(excinfo, str(options), "no weights to restore with", "weights=")
    with pytest.raises(ConfigError) as excinfo:
        restore.load(tmp_path / "none.yml", weights=tmp_path / "w.pth")
    assert_one_line(excinfo, "none.yml")


def test_masks_wrong_for_the_network_are_one_line(n2n, labnet):
    rgb = generated_image()
    mask = rectangle_mask(40, 56)
    with pytest.raises(ConfigError) as excinfo:
        labnet(rgb)
    assert_one_line(excinfo, "network 'labnet' needs a shadow mask", "mask=")
    with pytest.raises(ConfigError) as excinfo:
        n2n(rgb, mask=mask)
    assert_one_line(excinfo, "network 'n2n_unet' takes no mask")
    with pytest.raises(DataError) as excinfo:
        labnet(rgb, mask=mask[:20])
    assert_one_line(excinfo, "mask '<mask>' is 56x20 but input '<image>' is 56x40")
    with pytest.raises(DataError) as excinfo:
        labnet(torch.zeros(3, 3, 40, 56), mask=torch.zeros(2, 1, 40, 56))
    assert_one_line(excinfo, "2 masks for 3 images")


def test_the_pixel_limit_holds_for_arrays_and_files(n2n, tmp_path, monkeypatch):
    rgb = generated_image()
    path = save_rgb(tmp_path / "a.png", rgb)
    monkeypatch.setenv("RESTORE_MAX_PIXELS", "1000")
    with pytest.raises(DataError) as excinfo:
        n2n(rgb)
    assert_one_line(excinfo, "56x40", "over the limit of 0.0 MP", "RESTORE_MAX_PIXELS")
    with pytest.raises(DataError) as excinfo:
        n2n(path)
    assert_one_line(excinfo, str(path), "RESTORE_MAX_PIXELS")
