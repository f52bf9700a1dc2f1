"""``restore quickstart --task demoire`` runs end to end on scikit-image's photos (tiny settings),
and the folder it batch-restores holds exactly the moiré photos it scored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from restore.cli.main import main
from restore.cli.quickstart import HELD_OUT_PHOTOS
from restore.cli.quickstart_tasks import COLOUR_TRAIN_PHOTOS

TINY = ["--set", "train.total_iter=2", "--set", "network.n_feature=8",
        "--set", "datasets.train.crop_size=32", "--set", "datasets.train.num_workers=0"]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_demoire_quickstart_trains_evaluates_and_restores(tmp_path: Path, capsys, monkeypatch) -> None:
    from restore.config import load_options
    from restore.data.image_io import read_image

    monkeypatch.chdir(tmp_path)
    assert main(["quickstart", "--task", "demoire", "--workdir", "qs", *TINY]) == 0
    out = capsys.readouterr().out
    assert "synthetic moire, preset 'moire'" in out
    assert "moire input  PSNR" in out and "restored     PSNR" in out
    assert "demoire_skimage.yml" in out  # the by-hand commands name the demoire option file
    expected = sorted(f"{n}.png" for n in HELD_OUT_PHOTOS)
    assert sorted(p.name for p in (tmp_path / "qs" / "restored").iterdir()) == expected
    assert (tmp_path / "qs" / "experiments" / "quickstart_demoire" / "models" / "final.pth").is_file()

    # it trains on colour photos only: none is a grey photo stored as RGB
    train = sorted((tmp_path / "qs" / "data" / "train_colour").iterdir())
    assert [p.stem for p in train] == sorted(COLOUR_TRAIN_PHOTOS)
    for path in train:
        image = read_image(path).astype(np.int16)
        assert np.abs(image[..., 0] - image[..., 2]).mean() > 2, path.name

    # the batch-restored folder is the held-out set's own input, quantised to 8 bits
    options = load_options(Path(__file__).resolve().parents[2] / "options/quickstart/demoire_skimage.yml",
                           [f"datasets.val.heldout.root={tmp_path / 'qs/data/val'}"])
    heldout = options.datasets.val["heldout"].dataset.build()
    for index, name in enumerate(heldout.names):
        written = read_image(tmp_path / "qs" / "data" / "moire" / f"{name}.png").astype(np.float64)
        scored = heldout[index]["input"].permute(1, 2, 0).double().numpy() * 255
        clean = read_image(tmp_path / "qs" / "data" / "val" / f"{name}.png").astype(np.float64)
        assert np.abs(written - scored).max() <= 0.5 + 1e-6
        assert np.abs(written - clean).mean() > 3  # and it does carry moiré


def test_an_unknown_task_is_refused(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["quickstart", "--task", "deblur", "--workdir", "qs"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'deblur'" in capsys.readouterr().err
    assert not (tmp_path / "qs").exists()
