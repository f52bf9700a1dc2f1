"""The quickstart runs end to end on scikit-image's bundled photos (tiny settings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from restore.cli.main import main
from restore.cli.quickstart import HELD_OUT_PHOTOS, TRAIN_PHOTOS, export_photos


def test_photos_are_exported_as_rgb_pngs_without_network(tmp_path: Path) -> None:
    from restore.data.image_io import read_image

    export_photos(tmp_path, ("camera", "coffee"))
    camera = read_image(tmp_path / "camera.png")
    assert camera.shape == (512, 512, 3) and camera.dtype == np.uint8
    assert np.array_equal(camera[..., 0], camera[..., 2])  # grey photo replicated
    assert not set(TRAIN_PHOTOS) & set(HELD_OUT_PHOTOS)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_quickstart_trains_evaluates_and_restores(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = main([
        "quickstart", "--workdir", "qs",
        "--set", "train.total_iter=2", "--set", "network.n_feature=8",
        "--set", "datasets.train.crop_size=32", "--set", "datasets.train.num_workers=0",
    ])
    out = capsys.readouterr().out
    assert code == 0
    assert "noisy input  PSNR" in out and "restored     PSNR" in out
    restored = sorted(p.name for p in (tmp_path / "qs" / "restored").iterdir())
    assert restored == sorted(f"{n}.png" for n in HELD_OUT_PHOTOS)
    assert (tmp_path / "qs" / "experiments" / "quickstart_denoise" / "models" / "final.pth").is_file()
