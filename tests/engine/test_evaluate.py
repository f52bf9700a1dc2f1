"""The shared evaluation loop: golden PSNR, sharding, worker errors, callbacks, masks."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from restore.config.schema import Component, EvalSet
from restore.data.paired_folder import PairedFolderDataset
from restore.data.shadow_folder import ShadowDataset
from restore.engine.distributed import DistContext
from restore.engine.evaluate import EvalResult, evaluate, shard_indices, unwrap_worker_error
from restore.engine.inference import Restorer
from restore.errors import ConfigError, DataError

H, W = 48, 64


class Identity(nn.Module):
    """Returns its input unchanged (a 'perfect' network for input == target checks)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class MaskedIdentity(nn.Module):
    """A shadow-style network taking (input, mask); records the mask shapes it saw."""

    input_keys = ("input", "mask")

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(mask.shape))
        return x


def write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)
    return path


def make_pairs(root: Path, n: int = 5, seed: int = 0) -> None:
    """``n`` noisy/clean 64x48 pairs under root/in and root/gt (written with cv2)."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        clean = rng.integers(30, 226, (H, W, 3), dtype=np.uint8)
        noisy = np.clip(clean.astype(int) + rng.integers(-25, 26, clean.shape), 0, 255).astype(np.uint8)
        write(root / "in" / f"im{i}.png", noisy)
        write(root / "gt" / f"im{i}.png", clean)


def numpy_psnr(root: Path, name: str) -> float:
    """RGB PSNR (MAX 255) of root/in/<name>.png against root/gt/<name>.png, from the files."""
    a = cv2.imread(str(root / "in" / f"{name}.png")).astype(np.float64)
    b = cv2.imread(str(root / "gt" / f"{name}.png")).astype(np.float64)
    return 10 * math.log10(255.0**2 / np.mean((a - b) ** 2))


def spec(protocol: str = "basicsr", batch_size: int = 2, workers: int = 0, **kw) -> EvalSet:
    return EvalSet(dataset=Component("dataset", "paired_folder"), protocol=protocol,
                   batch_size=batch_size, num_workers=workers, **kw)


def paired(root: Path) -> PairedFolderDataset:
    return PairedFolderDataset(str(root / "in"), str(root / "gt"), phase="test")


CPU = DistContext()


def test_identity_psnr_matches_numpy_from_files(tmp_path):
    make_pairs(tmp_path)
    ds = paired(tmp_path)
    res = evaluate(Restorer(Identity()), ds, spec("basicsr"), CPU, name="t")
    assert isinstance(res, EvalResult) and res.protocol == "basicsr" and res.label == "BasicSR RGB"
    expected = {f"im{i}": numpy_psnr(tmp_path, f"im{i}") for i in range(5)}
    assert [r["name"] for r in res.rows] == sorted(expected) and res.indices == list(range(5))
    for row in res.rows:
        assert row["psnr"] == pytest.approx(expected[row["name"]], abs=1e-9)
    assert res.summary["n_images"] == 5
    assert res.summary["psnr"] == pytest.approx(np.mean(list(expected.values())), abs=1e-9)
    assert "| metric | basicsr (BasicSR RGB) |" in res.table
    assert res.columns == ("psnr", "ssim") and res.name == "t"


def test_shards_cover_every_index_once():
    for n in (0, 1, 5, 8):
        for world in (1, 2, 3):
            parts = [shard_indices(n, r, world) for r in range(world)]
            flat = [i for p in parts for i in p]
            assert sorted(flat) == list(range(n)) and len(flat) == n
    with pytest.raises(ValueError):
        shard_indices(5, 2, 2)


def test_two_rank_shards_pool_to_the_single_process_result(tmp_path):
    """Without a process group the collectives are no-ops: each 'rank' sees its own shard."""
    make_pairs(tmp_path)
    ds = paired(tmp_path)
    full = evaluate(Restorer(Identity()), ds, spec(), CPU)
    r0 = evaluate(Restorer(Identity()), ds, spec(), DistContext(rank=0, world_size=2))
    r1 = evaluate(Restorer(Identity()), ds, spec(), DistContext(rank=1, world_size=2))
    assert r0.indices == [0, 2, 4] and r1.indices == [1, 3]
    names = [r["name"] for r in r0.rows + r1.rows]
    assert sorted(names) == [r["name"] for r in full.rows] and len(set(names)) == 5
    pooled = (r0.summary["psnr"] * 3 + r1.summary["psnr"] * 2) / 5
    assert pooled == pytest.approx(full.summary["psnr"], abs=1e-9)
    assert r0.summary["n_images"] + r1.summary["n_images"] == 5
    idle = evaluate(Restorer(Identity()), ds, spec(workers=1), DistContext(rank=6, world_size=7))  # empty shard
    assert idle.rows == [] and idle.summary["n_images"] == 0


def test_worker_data_error_arrives_as_the_original_line(tmp_path):
    make_pairs(tmp_path, n=3)
    ds = paired(tmp_path)  # files listed now, decoded later inside the worker
    bad = tmp_path / "gt" / "im1.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(DataError) as info:
        evaluate(Restorer(Identity()), ds, spec(batch_size=1, workers=1), CPU)
    msg = str(info.value)
    assert "\n" not in msg and "Caught" not in msg and "Traceback" not in msg, msg
    assert msg.startswith("cannot read image") and "im1.png" in msg
    assert info.value.__suppress_context__


def test_unwrap_leaves_plain_errors_alone():
    err = DataError("cannot read image 'a.png': file is empty (0 bytes)")
    assert unwrap_worker_error(err) is err
    wrapped = DataError(
        "Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n    raise DataError(...)\nrestore.errors.DataError: bad: file \'b.png\' here\n'
    )
    clean = unwrap_worker_error(wrapped)
    assert type(clean) is DataError and str(clean) == "bad: file 'b.png' here"


def test_on_image_gets_every_image_on_cpu_and_keep_keeps_the_first(tmp_path):
    make_pairs(tmp_path, n=3)
    seen = []

    def on_image(name, index, x, y, t):
        seen.append((name, index, x.device.type, y.device.type, tuple(x.shape), tuple(y.shape), tuple(t.shape)))
        assert torch.equal(x, y)  # identity

    res = evaluate(Restorer(Identity()), paired(tmp_path), spec(), CPU, keep=2, on_image=on_image)
    assert [s[:2] for s in seen] == [("im0", 0), ("im1", 1), ("im2", 2)]
    assert all(s[2:] == ("cpu", "cpu", (3, H, W), (3, H, W), (3, H, W)) for s in seen)
    assert len(res.samples) == 2 and all(t.shape == (3, H, W) for t in res.samples[0])
    other = evaluate(Restorer(Identity()), paired(tmp_path), spec(), DistContext(rank=1, world_size=2), keep=2)
    assert other.samples == []


def test_mask_goes_to_a_shadow_network_and_lab_mae_is_zero_for_perfect_output(tmp_path):
    rng = np.random.default_rng(3)
    for i in range(2):
        img = rng.integers(40, 200, (H, W, 3), dtype=np.uint8)
        mask = np.zeros((H, W), np.uint8)
        mask[10:30, 10:40] = 255
        write(tmp_path / "ISTD/test/test_A" / f"{i}.png", img)
        write(tmp_path / "ISTD/test/test_B" / f"{i}.png", mask)
        write(tmp_path / "ISTD/test/test_C" / f"{i}.png", img)
    ds = ShadowDataset(root=str(tmp_path / "ISTD"), split="test", phase="test")
    net = MaskedIdentity()
    res = evaluate(Restorer(net), ds, spec("shadow_b"), CPU)
    assert net.seen == [(2, 1, H, W)]
    assert res.summary["lab_mae_pp"] == pytest.approx(0.0, abs=1e-9)
    assert res.columns == ("lab_mae", "lab_mae_s", "lab_mae_ns")

    no_target = ShadowDataset(root=str(tmp_path / "ISTD"), split="test", phase="test", with_target=False)
    with pytest.raises(ConfigError, match="ground truth"):
        evaluate(Restorer(MaskedIdentity()), no_target, spec("shadow_b"), CPU)


def test_batch_of_different_sizes_is_one_line(tmp_path):
    make_pairs(tmp_path, n=2)
    rng = np.random.default_rng(9)
    big = rng.integers(0, 256, (H + 8, W, 3), dtype=np.uint8)
    write(tmp_path / "in" / "im1.png", big)
    write(tmp_path / "gt" / "im1.png", big)
    with pytest.raises(DataError) as info:
        evaluate(Restorer(Identity()), paired(tmp_path), spec(batch_size=2, workers=1), CPU)
    msg = str(info.value)
    assert "\n" not in msg and "batch_size: 1" in msg and "im1" in msg


def test_network_input_key_missing_from_samples(tmp_path):
    make_pairs(tmp_path, n=1)
    with pytest.raises(ConfigError, match="'mask'"):
        evaluate(Restorer(MaskedIdentity()), paired(tmp_path), spec(), CPU, name="s")
