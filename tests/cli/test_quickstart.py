"""The quickstart runs end to end on scikit-image's bundled photos (tiny settings)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from restore.cli.quickstart import DEFAULT_OPTIONS, HELD_OUT_PHOTOS, export_photos
from restore.cli.quickstart_tasks import TRAIN_PHOTOS


def test_photos_are_exported_as_rgb_pngs_without_network(tmp_path: Path) -> None:
    from restore.data.image_io import read_image

    export_photos(tmp_path, ("camera", "coffee"))
    camera = read_image(tmp_path / "camera.png")
    assert camera.shape == (512, 512, 3) and camera.dtype == np.uint8
    assert np.array_equal(camera[..., 0], camera[..., 2])  # grey photo replicated
    assert not set(TRAIN_PHOTOS) & set(HELD_OUT_PHOTOS)


def test_quickstart_trains_evaluates_and_restores_with_early_rate_and_relative_commands(tmp_path: Path) -> None:
    """One whole quickstart (tiny settings) trains, scores the held-out photos and restores them.
    stdout is a pipe (a log file, a CI job): no bar, so a plain rate/ETA line must come early,
    before the first log line; the printed commands name the option file copied into the
    workdir (relative to the current folder), and the printed train command works as is."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p)}
    tiny = [f"--set={k}" for k in ("train.total_iter=8", "network.n_feature=8", "datasets.train.crop_size=32",
                                   "datasets.train.num_workers=0", "train.log_every=8")]

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "restore.cli.main", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=900)

    proc = cli("quickstart", "--workdir", "qs", *tiny)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "noisy input  PSNR" in proc.stdout and "restored     PSNR" in proc.stdout
    restored = sorted(p.name for p in (tmp_path / "qs" / "restored").iterdir())
    assert restored == sorted(f"{n}.png" for n in HELD_OUT_PHOTOS)
    assert (tmp_path / "qs" / "experiments" / "quickstart_denoise" / "models" / "final.pth").is_file()
    lines = proc.stdout.splitlines()
    rate = re.compile(r"\[iter (\d)/8\] \d+\.\d%, \d[\d.]* it/s, ETA (\d+s|\d+m\d\ds)")
    plain = [i for i, line in enumerate(lines) if rate.fullmatch(line)]
    assert plain, proc.stdout
    assert rate.fullmatch(lines[plain[0]]).group(1) == "2"  # 5% of 8 iterations, at least one, after the first
    assert plain[0] < lines.index("3/4 evaluating the held-out photos (Gaussian sigma 25, seeded per image)")
    copy = Path("qs") / "denoise_skimage.yml"
    assert f"  restore train -opt {copy} --resume auto" in lines
    weights = Path("qs") / "experiments" / "quickstart_denoise" / "models" / "final.pth"
    assert (f"  restore infer -opt {copy} --weights {weights} --input {Path('qs') / 'data/noisy'} "
            f"--output {Path('qs') / 'restored'}") in lines
    assert str(DEFAULT_OPTIONS) not in proc.stdout
    assert "n_feature: 8" in (tmp_path / copy).read_text()  # the --set overrides are in the copy
    again = cli("train", "-opt", str(copy), "--resume", "auto")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "nothing to do: the run is complete" in again.stdout + again.stderr
