"""The Python API restores a file exactly as ``restore infer`` writes it, on all six architectures.

``restore infer`` runs in-process on a folder (8-bit RGB, grey and 16-bit PNGs); ``model(path)``
on each file must equal the file infer wrote, bit for bit, and so must ``model(array)`` on the
decoded pixels and ``model.restore_folder`` (the same engine call as the CLI). Real images: a
Kodak24 crop (the shadow photographs and their hand-made masks for LAB-Net) from the shared
data; generated ones so that the comparison never skips.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from api_nets import generated_image, rectangle_mask
from data_helpers import save_rgb

from restore.cli.main import main
from restore.data.image_io import read_image


def generated_folder(folder: Path) -> dict[str, np.ndarray]:
    """8-bit RGB, 8-bit grey and 16-bit RGB PNGs (written with OpenCV, not our writer)."""
    rgb = generated_image(40, 56, seed=3)
    images = {"rgb.png": rgb, "grey.png": rgb[:, :, 1], "deep.png": rgb.astype(np.uint16) * 257 + 100}
    for name, array in images.items():
        save_rgb(folder / "in" / name, array)
    return images


def real_folder(folder: Path, shared: Path, takes_mask: bool) -> list[str]:
    """A Kodak24 crop, or for a shadow network a shadow photograph and its mask, downsized."""
    if takes_mask:
        image = read_image(shared / "shadow/images/USR_1.jpg")
        mask = read_image(shared / "shadow/masks/USR_1.png")[:, :, 0]
        save_rgb(folder / "in/usr_1.png", cv2.resize(image, (160, 120), interpolation=cv2.INTER_AREA))
        save_rgb(folder / "masks/usr_1.png", cv2.resize(mask, (160, 120), interpolation=cv2.INTER_NEAREST))
        return ["usr_1.png"]
    save_rgb(folder / "in/kodim05.png", read_image(shared / "kodak24/kodim05.png")[200:296, 300:428])
    return ["kodim05.png"]


def check_api_equals_infer(name: str, model, folder: Path, files: list[str], capsys) -> None:
    args = ["infer", "-opt", str(model.options.source), "--weights", str(model.weights),
            "--input", str(folder / "in"), "--output", str(folder / "out"), "--no-progress"]
    if model.needs_mask:
        args += ["--mask-dir", str(folder / "masks")]
    assert main(args) == 0, capsys.readouterr().err
    for file in files:
        mask = folder / "masks" / file if model.needs_mask else None
        written = read_image(folder / "out" / file)
        restored = model(folder / "in" / file, mask=mask)
        assert restored.dtype == written.dtype, (name, file)
        np.testing.assert_array_equal(restored, written, err_msg=f"{name}: {file}: model(path) != restore infer")
        decoded = read_image(folder / "in" / file)
        array_mask = read_image(mask)[:, :, 0] if mask is not None else None
        from_array = model(decoded if decoded.shape[2] > 1 else decoded[:, :, 0], mask=array_mask)
        np.testing.assert_array_equal(from_array.reshape(written.shape), written,
                                      err_msg=f"{name}: {file}: model(array) != restore infer")


def test_generated_images_equal_restore_infer(case, tmp_path, capsys):
    name, model = case
    images = generated_folder(tmp_path)
    if model.needs_mask:
        for file, array in images.items():
            save_rgb(tmp_path / "masks" / file, rectangle_mask(*array.shape[:2]))
    check_api_equals_infer(name, model, tmp_path, list(images), capsys)
    assert read_image(tmp_path / "out/deep.png").dtype == np.uint16


def test_real_images_equal_restore_infer(case, tmp_path, shared_data, capsys):
    name, model = case
    files = real_folder(tmp_path, shared_data, model.needs_mask)
    check_api_equals_infer(name, model, tmp_path, files, capsys)


def test_restore_folder_is_restore_infer(case_files, tmp_path, capsys):
    import restore

    options, weights = case_files["n2n_unet"]
    images = generated_folder(tmp_path)
    assert main(["infer", "-opt", str(options), "--weights", str(weights), "--input", str(tmp_path / "in"),
                 "--output", str(tmp_path / "out"), "--no-progress"]) == 0, capsys.readouterr().err
    model = restore.load(options, weights=weights)
    summary = model.restore_folder(tmp_path / "in", tmp_path / "api_out", progress=False)
    assert summary.ok and sorted(p.name for p in summary.restored) == sorted(images)
    for file in images:
        np.testing.assert_array_equal(read_image(tmp_path / "api_out" / file), read_image(tmp_path / "out" / file))
    again = model.restore_folder(tmp_path / "in", tmp_path / "api_out", progress=False)
    assert len(again.skipped) == len(images) and not again.restored  # infer's rule: outputs that exist are kept


@pytest.mark.parametrize("flag,override", [("--tile=48", {"tile": 48, "tile_overlap": 16}),
                                           ("--self-ensemble", {"self_ensemble": True})])
def test_overrides_equal_the_cli_flags(case_files, tmp_path, capsys, flag, override):
    import restore

    options, weights = case_files["n2n_unet"]
    generated_folder(tmp_path)
    extra = [flag] + (["--set", "infer.tile_overlap=16"] if "tile" in override else [])
    assert main(["infer", "-opt", str(options), "--weights", str(weights), "--input", str(tmp_path / "in"),
                 "--output", str(tmp_path / "out"), "--no-progress", *extra]) == 0, capsys.readouterr().err
    model = restore.load(options, weights=weights, **override)
    plain = restore.load(options, weights=weights)
    rgb = tmp_path / "in/rgb.png"
    np.testing.assert_array_equal(model(rgb), read_image(tmp_path / "out/rgb.png"))
    assert not np.array_equal(plain(rgb), model(rgb)), f"{override} changed nothing"
