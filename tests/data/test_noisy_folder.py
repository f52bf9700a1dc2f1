"""restore.data.noisy_folder: noisy-only samples carry no target at all."""

from __future__ import annotations

import pytest
import torch
from data_helpers import random_rgb, save_rgb
from torch.utils.data import DataLoader

from restore.data.noisy_folder import NoisyFolderDataset


@pytest.fixture
def noisy_dir(tmp_path, rng):
    for name in ("b.png", "a.jpg", "sub/c.png", "sub/skip_me.png"):
        save_rgb(tmp_path / "noisy" / name, random_rgb(rng, 20, 24))
    return tmp_path / "noisy"


def test_no_target_key(noisy_dir):
    ds = NoisyFolderDataset(str(noisy_dir), phase="val")
    assert ds.names == ["a", "b", "sub/c", "sub/skip_me"]
    s = ds[0]
    assert set(s) == {"input", "name", "input_path"}
    assert "target" not in s and s["input"].shape == (3, 20, 24)
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert "target" not in batch and batch["input"].shape == (4, 3, 20, 24)


def test_pattern_crop_and_seeding(noisy_dir):
    ds = NoisyFolderDataset(str(noisy_dir), pattern="[abc].*", crop_size=8, flip_rotate=True)
    assert ds.names == ["a", "b", "sub/c"]
    assert ds[0]["input"].shape == (3, 8, 8)
    assert torch.equal(ds[(2, 9)]["input"], ds[(2, 9)]["input"])
    crops = {ds[(2, s)]["input"].numpy().tobytes() for s in range(10)}
    assert len(crops) > 5
    flat = NoisyFolderDataset(str(noisy_dir), recursive=False)
    assert flat.names == ["a", "b"]
