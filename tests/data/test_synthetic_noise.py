"""restore.data.synthetic_noise: seeded validation noise, fresh training noise, repeats."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_helpers import random_rgb, save_rgb
from torch.utils.data import DataLoader

from restore.data.synthetic_noise import SyntheticNoiseDataset
from restore.errors import ConfigError


@pytest.fixture
def clean_dir(tmp_path, rng):
    root = tmp_path / "Kodak"
    for i in range(1, 5):
        save_rgb(root / f"kodim{i:02d}.png", random_rgb(rng, 24, 32))
    return root


def all_samples(ds):
    return [ds[i] for i in range(len(ds))]


def test_val_sample_contents(clean_dir):
    ds = SyntheticNoiseDataset(str(clean_dir), noise="gauss25", phase="val")
    assert len(ds) == 4 and ds.names == ["kodim01", "kodim02", "kodim03", "kodim04"]
    s = ds[0]
    assert set(s) == {"input", "target", "name", "input_path", "noise_level"}
    assert s["input"].shape == s["target"].shape == (3, 24, 32)
    assert s["input"].dtype == torch.float32 and s["name"] == "kodim01"
    assert s["input_path"].endswith("kodim01.png") and s["noise_level"] == 25.0
    assert float((s["input"] - s["target"]).std()) == pytest.approx(25 / 255, rel=0.15)


def test_val_noise_identical_across_instances_and_calls(clean_dir):
    a = SyntheticNoiseDataset(str(clean_dir), noise="gauss5_50", phase="val", repeat=2)
    b = SyntheticNoiseDataset(str(clean_dir), noise="gauss5_50", phase="val", repeat=2)
    for x, y, z in zip(all_samples(a), all_samples(b), all_samples(a)):
        assert x["name"] == y["name"]
        assert torch.equal(x["input"], y["input"]) and torch.equal(x["input"], z["input"])
    c = SyntheticNoiseDataset(str(clean_dir), noise="gauss5_50", phase="val", repeat=2, seed=1)
    assert not torch.equal(a[0]["input"], c[0]["input"])  # the dataset seed matters


def test_val_noise_independent_of_worker_count(clean_dir):
    ds = SyntheticNoiseDataset(str(clean_dir), noise="poisson5_50", phase="test", repeat=2)
    runs = []
    for workers in (0, 2):
        loader = DataLoader(ds, batch_size=3, shuffle=False, num_workers=workers)
        runs.append([(name, x) for batch in loader for name, x in zip(batch["name"], batch["input"])])
    assert len(runs[0]) == len(runs[1]) == 8
    for (n0, x0), (n1, x1) in zip(*runs):
        assert n0 == n1 and torch.equal(x0, x1)


def test_repeats_have_independent_noise_and_suffixed_names(clean_dir):
    ds = SyntheticNoiseDataset(str(clean_dir), noise="gauss25", phase="val", repeat=3)
    assert len(ds) == 12
    assert ds.names[:5] == ["kodim01#0", "kodim02#0", "kodim03#0", "kodim04#0", "kodim01#1"]
    r0, r1 = ds[0], ds[4]
    assert torch.equal(r0["target"], r1["target"])
    assert not torch.equal(r0["input"], r1["input"])


def test_train_randomness_differs_per_draw_but_explicit_seed_is_exact(clean_dir):
    ds = SyntheticNoiseDataset(str(clean_dir), noise="gauss25", phase="train", crop_size=16, flip_rotate=True)
    a, b = ds[0], ds[0]
    assert a["input"].shape == (3, 16, 16)
    assert not torch.equal(a["input"], b["input"])
    c, d = ds[(0, 123)], ds[(0, 123)]
    assert torch.equal(c["input"], d["input"]) and torch.equal(c["target"], d["target"])
    assert not torch.equal(c["input"], ds[(0, 124)]["input"])
    # explicit seeds behave the same in any phase: the engine's sampler owns the randomness
    v = SyntheticNoiseDataset(str(clean_dir), noise="gauss25", phase="val", crop_size=16, flip_rotate=True)
    assert torch.equal(v[(0, 123)]["input"], c["input"])


def test_train_draws_follow_torchs_global_rng(clean_dir):
    ds = SyntheticNoiseDataset(str(clean_dir), noise="gauss25", phase="train")
    torch.manual_seed(0)
    a = ds[1]["input"]
    torch.manual_seed(0)
    assert torch.equal(ds[1]["input"], a)


def test_grey_and_range_level(clean_dir):
    ds = SyntheticNoiseDataset(str(clean_dir), noise="poisson5_50", channels=1, phase="val", max_images=2)
    assert len(ds) == 2
    s = ds[1]
    assert s["input"].shape == (1, 24, 32) and 5 <= s["noise_level"] < 50


def test_kodak24_real_images(shared_data):
    ds = SyntheticNoiseDataset(str(shared_data / "kodak24"), noise="gauss25", phase="val", max_images=2)
    s = ds[0]
    assert s["name"] == "kodim01" and s["target"].shape[0] == 3
    assert set(s["target"].shape[1:]) == {512, 768}
    assert float((s["input"] - s["target"]).std()) == pytest.approx(25 / 255, rel=0.02)


def official_validation_noise(root, noise: str, repeat: int) -> list[np.ndarray]:
    """N2N's validation loop written out independently: one global numpy stream seeded with 101,
    repeats outermost over the sorted files, PIL-style uint8 RGB / 255 in float32, the level drawn
    before the noise, the float32 cast at the end (neighbor2neighbor.md §5, §7)."""
    import cv2

    kind, value = ("gauss", noise[5:]) if noise.startswith("gauss") else ("poisson", noise[7:])
    state = np.random.get_state()
    np.random.seed(101)
    try:
        out = []
        files = sorted(root.glob("*.png"))
        for _ in range(repeat):
            for path in files:
                im = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
                im = np.array(im, dtype=np.float32) / 255.0
                if kind == "gauss" and "_" not in value:
                    noisy = im + np.random.normal(size=im.shape) * (float(value) / 255.0)
                elif kind == "gauss":
                    lo, hi = (float(v) / 255.0 for v in value.split("_"))
                    std = np.random.uniform(low=lo, high=hi, size=(1, 1, 1))
                    noisy = im + np.random.normal(size=im.shape) * std
                elif "_" not in value:
                    lam = float(value)
                    noisy = np.random.poisson(lam * im) / lam
                else:
                    lo, hi = (float(v) for v in value.split("_"))
                    lam = np.random.uniform(low=lo, high=hi, size=(1, 1, 1))
                    noisy = np.random.poisson(lam * im) / lam
                out.append(np.array(noisy, dtype=np.float32))
        return out
    finally:
        np.random.set_state(state)


@pytest.mark.parametrize("noise", ["gauss25", "gauss5_50", "poisson30", "poisson5_50"])
def test_official_stream_reproduces_n2n_validation_noise_draw_for_draw(clean_dir, noise):
    ds = SyntheticNoiseDataset(str(clean_dir), noise=noise, repeat=3, noise_stream="official", phase="val")
    expected = official_validation_noise(clean_dir, noise, 3)
    assert len(ds) == len(expected) == 12
    order = [7, 0, 11, 3, 3, 10]  # random access, out of order and repeated
    for i in order:
        got = ds[i]["input"].permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(got, expected[i])
    assert ds[5]["name"] == "kodim02#1"  # repeat-major, as the official loop


def test_official_stream_is_the_same_in_a_fresh_instance_and_in_workers(clean_dir):
    make = lambda: SyntheticNoiseDataset(str(clean_dir), noise="poisson30", repeat=2, noise_stream="official", phase="test")  # noqa: E731
    a = make()[6]["input"]
    loaded = list(DataLoader(make(), batch_size=1, num_workers=2))
    assert torch.equal(loaded[6]["input"][0], a)


def test_official_stream_refuses_training_and_altered_images(clean_dir):
    with pytest.raises(ConfigError, match="val/test"):
        SyntheticNoiseDataset(str(clean_dir), noise_stream="official", phase="train")
    with pytest.raises(ConfigError, match="crop_size"):
        SyntheticNoiseDataset(str(clean_dir), noise_stream="official", phase="val", crop_size=16)
