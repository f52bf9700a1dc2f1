"""A tiny training run for CLI tests of `restore train` (a few 32x32 crops, an 8-wide UNet)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

TRAIN = """\
name: {name}
seed: 3
task: denoise
network: {{type: n2n_unet, n_feature: 8{network}}}
datasets:
  train: {{type: synthetic_noise, root: {root}, noise: gauss25, crop_size: 32, batch_size: 2, num_workers: 0}}
train:
  total_iter: {total}
  save_every: {save}
  log_every: 1
  val_every: 100000
  optimizer: {{type: adam, lr: {lr}}}
{train}path:
  experiments_root: {exp}
"""


def make_images(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        assert cv2.imwrite(str(folder / f"{i}.png"), (rng.random((36, 40, 3)) * 255).astype(np.uint8))
    return folder


def write_options(tmp_path: Path, name: str = "run", *, total: int = 4, save: int = 2, lr: float = 1e-3,
                  network: str = "", train: str = "", exp: Path | None = None) -> Path:
    """An option file for a run ``name`` under ``tmp_path/experiments`` (or ``exp``)."""
    images = tmp_path / "clean"
    if not images.is_dir():
        make_images(images)
    path = tmp_path / f"{name}.yml"
    path.write_text(TRAIN.format(name=name, root=images, total=total, save=save, lr=f"{lr:.6e}", network=network,
                                 train=train, exp=exp if exp is not None else tmp_path / "experiments"))
    return path


def tree(folder: Path, lock: bool = True) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` -> (size, mtime_ns): to prove nothing was written.
    ``lock=False`` leaves out the lock file, which a run that held the lock rewrites."""
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file() and (lock or p.name != ".lock")}


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("restore: error: "), lines
    assert "Traceback" not in err
    return lines[0]
