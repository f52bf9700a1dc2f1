"""restore.data.sidd_blocks: the .mat block files (small fakes written with scipy)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import torch
from data_helpers import assert_one_line

from restore.data.sidd_blocks import SIDDBlocksDataset
from restore.errors import DataError


@pytest.fixture
def mats(tmp_path, rng):
    noisy = rng.integers(0, 256, size=(2, 3, 16, 16, 3), dtype=np.uint8)
    gt = rng.integers(0, 256, size=(2, 3, 16, 16, 3), dtype=np.uint8)
    n_path, g_path = tmp_path / "ValidationNoisyBlocksSrgb.mat", tmp_path / "ValidationGtBlocksSrgb.mat"
    scipy.io.savemat(n_path, {"ValidationNoisyBlocksSrgb": noisy})
    scipy.io.savemat(g_path, {"ValidationGtBlocksSrgb": gt})
    return n_path, g_path, noisy, gt


def test_blocks_names_and_values(mats):
    n_path, g_path, noisy, gt = mats
    ds = SIDDBlocksDataset(str(n_path), str(g_path), phase="test")
    assert len(ds) == 6
    assert ds.names == ["0000_00", "0000_01", "0000_02", "0001_00", "0001_01", "0001_02"]
    s = ds[4]  # image 1, block 1
    assert s["name"] == "0001_01" and s["input_path"] == str(n_path)
    assert torch.equal(s["input"], torch.from_numpy(noisy[1, 1].transpose(2, 0, 1).astype(np.float32) / 255))
    assert torch.equal(s["target"], torch.from_numpy(gt[1, 1].transpose(2, 0, 1).astype(np.float32) / 255))


def test_benchmark_without_gt_and_crop(mats):
    n_path, _, noisy, _ = mats
    ds = SIDDBlocksDataset(str(n_path), crop_size=8, flip_rotate=True, max_images=4)
    s = ds[(3, 1)]
    assert "target" not in s and s["input"].shape == (3, 8, 8) and len(ds) == 4


def test_errors(tmp_path, mats, rng):
    n_path, g_path, _, _ = mats
    with pytest.raises(DataError) as e:
        SIDDBlocksDataset(str(tmp_path / "missing.mat"))
    assert_one_line(e, "missing.mat", "no such file")
    other = tmp_path / "Renamed.mat"
    scipy.io.savemat(other, {"blocks": np.zeros((1, 1, 4, 4, 3), np.uint8)})
    with pytest.raises(DataError) as e:
        SIDDBlocksDataset(str(other))
    assert_one_line(e, "Renamed.mat", "'Renamed'", "blocks")
    assert len(SIDDBlocksDataset(str(other), noisy_key="blocks")) == 1
    flat = tmp_path / "Flat.mat"
    scipy.io.savemat(flat, {"Flat": np.zeros((4, 4, 3), np.uint8)})
    with pytest.raises(DataError) as e:
        SIDDBlocksDataset(str(flat))
    assert_one_line(e, "Flat.mat", "shape")
    small_gt = tmp_path / "Gt.mat"
    scipy.io.savemat(small_gt, {"Gt": np.zeros((1, 3, 16, 16, 3), np.uint8)})
    with pytest.raises(DataError) as e:
        SIDDBlocksDataset(str(n_path), str(small_gt))
    assert_one_line(e, "Gt.mat", "must match")
    bad = tmp_path / "Bad.mat"
    bad.write_bytes(b"MATLAB garbage" * 20)
    with pytest.raises(DataError) as e:
        SIDDBlocksDataset(str(bad))
    assert_one_line(e, "Bad.mat")
    empty = tmp_path / "Empty.mat"
    empty.write_bytes(b"")
    with pytest.raises(DataError) as e:
        SIDDBlocksDataset(str(empty))
    assert_one_line(e, "Empty.mat", "empty")
