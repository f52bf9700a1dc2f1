"""Two CPU processes under torchrun (gloo): they train, validate on shards and agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from restore.engine.checkpoint import load_file
from restore.engine.sampler import ResumableSampler

ROOT = Path(__file__).resolve().parents[2]


def test_sampler_shards_are_disjoint_within_an_epoch_and_cover_it() -> None:
    a, b = ResumableSampler(7, 1, rank=0, world_size=2), ResumableSampler(7, 1, rank=1, world_size=2)
    ea, eb = a.epoch_indices(0), b.epoch_indices(0)
    assert len(ea) == len(eb) == 4
    assert set(ea) | set(eb) == set(range(7))
    assert len(set(ea + eb)) == 7  # only the wrap-around padding position repeats an index
    assert a.key(0)[1] != b.key(0)[1]  # different sample seeds on different ranks


def test_sampler_can_start_anywhere() -> None:
    s = ResumableSampler(5, 9)
    stream = iter(s)
    keys = [next(stream) for _ in range(13)]
    later = iter(ResumableSampler(5, 9, start=7))
    assert [next(later) for _ in range(6)] == keys[7:]
    assert sorted(k[0] for k in keys[:5]) == list(range(5))  # epoch 0 is a permutation


def test_two_gloo_processes_train_and_validate(tmp_path: Path) -> None:
    import cv2

    root = tmp_path / "clean"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        cv2.imwrite(str(root / f"{i}.png"), (rng.random((48, 40, 3)) * 255).astype(np.uint8))
    options = tmp_path / "ddp.yml"
    options.write_text(
        f"""
name: ddp
network: {{type: n2n_unet, n_feature: 8}}
datasets:
  train: {{type: synthetic_noise, root: {root}, noise: gauss25, crop_size: 32, batch_size: 2, num_workers: 0}}
  val:
    clean: {{type: synthetic_noise, root: {root}, noise: gauss25, protocol: basicsr}}
train: {{total_iter: 4, val_every: 2, save_every: 2, log_every: 2}}
path: {{experiments_root: {tmp_path / 'experiments'}}}
"""
    )
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(ROOT / "train.py"), "-opt", str(options), "--no-tensorboard",
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = tmp_path / "experiments" / "ddp"
    records = [json.loads(x) for x in (exp / "log.jsonl").read_text().splitlines()]
    val = [r for r in records if "val/clean/psnr" in r]
    assert [r["iter"] for r in val] == [2, 4]
    state = load_file(exp / "checkpoints" / "iter_00000004.pth")
    assert len(state["rng"]) == 2  # every rank's RNG state is saved
    assert state["sampler"]["world_size"] == 2
    # pooled over both shards: each of the 5 images counted once
    assert all(r["val/clean/n_images"] == 5 for r in val)
    assert (exp / "models" / "best_clean_psnr.pth").is_file()
    assert torch.isfinite(torch.tensor(val[-1]["val/clean/psnr"]))
