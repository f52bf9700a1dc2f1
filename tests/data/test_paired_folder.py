"""restore.data.paired_folder: layouts, alignment under crop/flip, sizes, 16-bit, TIP2018."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_helpers import assert_one_line, random_rgb, save_rgb
from PIL import Image
from torch.utils.data import DataLoader

from restore.data.image_io import write_image
from restore.data.paired_folder import PairedFolderDataset
from restore.errors import ConfigError, DataError


@pytest.fixture
def rain100l(tmp_path, rng):
    """PReNet layout: Rain100L/rainy/rain-XXX.png and Rain100L/norain-XXX.png; GT = rainy + 40."""
    root = tmp_path / "Rain100L"
    for i in range(1, 4):
        rainy = random_rgb(rng, 20, 30, high=200)
        save_rgb(root / "rainy" / f"rain-{i:03d}.png", rainy)
        save_rgb(root / f"norain-{i:03d}.png", rainy + 40)
    return root


def make(root, **kw):
    return PairedFolderDataset(
        str(root / "rainy"), str(root), pairing="replace", pair_replace=["rain-", "norain-"], **kw
    )


def test_rain100l_sample(rain100l):
    ds = make(rain100l, phase="val", recursive=False)
    assert len(ds) == 3 and ds.names == ["rain-001", "rain-002", "rain-003"]
    s = ds[1]
    assert set(s) == {"input", "target", "name", "input_path", "target_path"}
    assert s["input"].shape == s["target"].shape == (3, 20, 30)
    assert s["target_path"].endswith("norain-002.png")
    assert torch.allclose(s["target"] - s["input"], torch.full_like(s["input"], 40 / 255), atol=1e-6)


def test_crop_and_flip_keep_pairs_aligned(rain100l):
    ds = make(rain100l, phase="train", crop_size=8, flip_rotate=True)
    full = make(rain100l, phase="val")[0]["input"]
    for seed in range(12):
        s = ds[(0, seed)]
        assert s["input"].shape == (3, 8, 8)
        assert torch.allclose(s["target"] - s["input"], torch.full_like(s["input"], 40 / 255), atol=1e-6)
    # the crop is a real window of the image (under some dihedral transform)
    from restore.data.transforms import dihedral_tensor

    s = ds[(0, 3)]
    found = any(
        torch.equal(dihedral_tensor(full, k)[:, t : t + 8, l : l + 8], s["input"])
        for k in range(8)
        for t in range(dihedral_tensor(full, k).shape[1] - 7)
        for l in range(dihedral_tensor(full, k).shape[2] - 7)  # noqa: E741
    )
    assert found


def test_restormer_layout_same_name_and_loader(tmp_path, rng):
    for name in ("1.png", "2.png"):
        img = random_rgb(rng, 8, 8)
        save_rgb(tmp_path / "input" / name, img)
        save_rgb(tmp_path / "target" / name, img)
    ds = PairedFolderDataset(str(tmp_path / "input"), str(tmp_path / "target"), phase="test")
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["input"].shape == (2, 3, 8, 8) and batch["name"] == ["1", "2"]
    assert torch.equal(batch["input"], batch["target"])


def test_pair_size_mismatch_names_both_files(tmp_path, rng):
    save_rgb(tmp_path / "in" / "a.png", random_rgb(rng, 10, 12))
    save_rgb(tmp_path / "gt" / "a.png", random_rgb(rng, 10, 13))
    ds = PairedFolderDataset(str(tmp_path / "in"), str(tmp_path / "gt"))
    with pytest.raises(DataError) as e:
        ds[0]
    assert_one_line(e, str(tmp_path / "in" / "a.png"), str(tmp_path / "gt" / "a.png"), "12x10", "13x10")


def test_unmatched_at_construction(tmp_path, rng):
    save_rgb(tmp_path / "in" / "a.png", random_rgb(rng, 4, 4))
    save_rgb(tmp_path / "gt" / "b.png", random_rgb(rng, 4, 4))
    with pytest.raises(DataError) as e:
        PairedFolderDataset(str(tmp_path / "in"), str(tmp_path / "gt"))
    assert_one_line(e, "'a.png'", str(tmp_path / "gt"))


def test_duplicate_names_rejected(tmp_path, rng):
    for ext in ("png", "jpg"):
        save_rgb(tmp_path / "in" / f"a.{ext}", random_rgb(rng, 4, 4))
    save_rgb(tmp_path / "gt" / "a.png", random_rgb(rng, 4, 4))
    save_rgb(tmp_path / "gt2" / "x.png", random_rgb(rng, 4, 4))
    save_rgb(tmp_path / "gt2" / "y.png", random_rgb(rng, 4, 4))
    with pytest.raises(DataError) as e:
        PairedFolderDataset(str(tmp_path / "in"), str(tmp_path / "gt2"), pairing="sorted")
    assert_one_line(e, "share the name 'a'")


def test_16bit_and_grey_channels(tmp_path, rng):
    img16 = rng.integers(0, 65536, size=(6, 7, 3), dtype=np.uint16)
    write_image(tmp_path / "in" / "x.png", img16, bit_depth=16)
    write_image(tmp_path / "gt" / "x.tif", img16, bit_depth=16)
    s = PairedFolderDataset(str(tmp_path / "in"), str(tmp_path / "gt"))[0]
    assert torch.allclose(s["input"], torch.from_numpy(img16.transpose(2, 0, 1) / 65535.0).float())
    g = PairedFolderDataset(str(tmp_path / "in"), str(tmp_path / "gt"), channels=1)[0]
    assert g["input"].shape == (1, 6, 7) and g["target"].shape == (1, 6, 7)


def test_sidd_medium_same_folder_with_pattern_free_pairing(tmp_path, rng):
    scene = tmp_path / "Data" / "0001_001_S6_00100_00060_3200_L"
    for k in ("010", "011"):
        img = random_rgb(rng, 8, 8)
        save_rgb(scene / f"0001_NOISY_SRGB_{k}.PNG", img)
        save_rgb(scene / f"0001_GT_SRGB_{k}.PNG", img)
    ds = PairedFolderDataset(str(tmp_path / "Data"), str(tmp_path / "Data"), pairing="replace",
                             pair_replace=["NOISY", "GT"])
    assert ds.names == [f"0001_001_S6_00100_00060_3200_L/0001_NOISY_SRGB_{k}" for k in ("010", "011")]
    with_pattern = PairedFolderDataset(str(tmp_path / "Data"), str(tmp_path / "Data"), pairing="replace",
                                       pair_replace=["NOISY", "GT"], input_pattern="*NOISY*")
    assert with_pattern.names == ds.names


def test_scale_factor_target(tmp_path, rng):
    lr = random_rgb(rng, 10, 12)
    hr = np.repeat(np.repeat(lr, 2, axis=0), 2, axis=1)  # nearest 2x upscale: aligned by construction
    save_rgb(tmp_path / "lr" / "a.png", lr)
    save_rgb(tmp_path / "hr" / "a.png", hr)
    ds = PairedFolderDataset(str(tmp_path / "lr"), str(tmp_path / "hr"), scale=2, crop_size=4, flip_rotate=True)
    for seed in range(8):
        s = ds[(0, seed)]
        assert s["target"].shape == (3, 8, 8)
        assert torch.equal(s["target"][:, ::2, ::2], s["input"])
    with pytest.raises(DataError):
        PairedFolderDataset(str(tmp_path / "lr"), str(tmp_path / "hr"))[0]


def test_tip2018_preprocess(tmp_path, rng):
    src, tgt = random_rgb(rng, 60, 90), random_rgb(rng, 60, 90)
    save_rgb(tmp_path / "source" / "image_test_part001_00000001_source.png", src)
    save_rgb(tmp_path / "target" / "image_test_part001_00000001_target.png", tgt)
    kw = dict(pairing="replace", pair_replace=["source", "target"], preprocess="tip2018")
    val = PairedFolderDataset(str(tmp_path / "source"), str(tmp_path / "target"), phase="test", **kw)[0]
    box = (15, 10, 75, 50)  # (int(w/6), int(h/6), int(5w/6), int(5h/6)) for 90x60
    for key, img in (("input", src), ("target", tgt)):
        want = np.asarray(Image.fromarray(img).crop(box).resize((256, 256), Image.BILINEAR))
        assert torch.equal(val[key], torch.from_numpy(want.transpose(2, 0, 1).astype(np.float32) / 255))
    train = PairedFolderDataset(str(tmp_path / "source"), str(tmp_path / "target"), phase="train", crop_size=64, **kw)
    outs = [train[(0, s)]["input"] for s in range(4)]
    assert all(o.shape == (3, 64, 64) for o in outs)
    with pytest.raises(ConfigError):
        PairedFolderDataset(str(tmp_path / "source"), str(tmp_path / "target"), scale=2, **kw)


def test_max_images_and_option_errors(rain100l):
    assert len(make(rain100l, max_images=2)) == 2
    with pytest.raises(ConfigError):
        make(rain100l, crop_size=0)
    with pytest.raises(ConfigError):
        make(rain100l, phase="training")
    with pytest.raises(ConfigError):
        PairedFolderDataset(str(rain100l / "rainy"), str(rain100l), pairing="replace")
