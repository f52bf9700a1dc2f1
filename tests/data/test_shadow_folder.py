"""restore.data.shadow_folder: ISTD and SRD layouts, the mask travelling with the sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_helpers import assert_one_line, random_rgb, save_rgb

from restore.data.shadow_folder import ShadowDataset
from restore.errors import ConfigError, DataError

H, W = 24, 32


def triplet(rng):
    """Shadow image, its mask (red > 100 -> 255) and a target = image + 30."""
    img = random_rgb(rng, H, W, high=200)
    mask = np.where(img[:, :, 0] > 100, 255, 0).astype(np.uint8)
    return img, mask, img + 30


def check_alignment(s):
    """Mask and target still correspond pixel by pixel to the (cropped/flipped) input."""
    red = torch.round(s["input"][0] * 255)
    assert torch.equal(s["mask"][0], (red > 100).float())
    assert torch.allclose(s["target"] - s["input"], torch.full_like(s["input"], 30 / 255), atol=1e-6)


@pytest.fixture
def istd(tmp_path, rng):
    root = tmp_path / "ISTD"
    for split, names in (("train", ["90-1", "90-2", "118-14"]), ("test", ["1-1", "1-2"])):
        for n in names:
            img, mask, tgt = triplet(rng)
            save_rgb(root / split / f"{split}_A" / f"{n}.png", img)
            save_rgb(root / split / f"{split}_B" / f"{n}.png", mask)
            save_rgb(root / split / f"{split}_C" / f"{n}.png", tgt)
    return root


def test_istd_layout_train_and_test(istd):
    train = ShadowDataset(root=str(istd / "train"), phase="train", crop_size=16, flip_rotate=True)
    assert train.names == ["118-14", "90-1", "90-2"]
    for seed in range(10):
        s = train[(seed % 3, seed)]
        assert set(s) == {"input", "mask", "target", "name", "input_path", "mask_path", "target_path"}
        assert s["input"].shape == (3, 16, 16) and s["mask"].shape == (1, 16, 16)
        check_alignment(s)
    test = ShadowDataset(root=str(istd / "test"), phase="val")  # split defaults to test_ outside training
    assert test.names == ["1-1", "1-2"]
    s = test[0]
    assert s["mask"].shape == (1, H, W) and s["mask_path"].endswith("test_B/1-1.png")
    assert set(torch.unique(s["mask"]).tolist()) <= {0.0, 1.0}
    check_alignment(s)
    # the distribution layout ISTD/{train,test}/{split}_A: root may be the parent of the split
    parent = ShadowDataset(root=str(istd), split="test", phase="test")
    assert parent.names == test.names and parent.image_dir == istd / "test" / "test_A"
    assert ShadowDataset(root=str(istd), phase="train").names == train.names
    with pytest.raises(DataError) as e:
        ShadowDataset(root=str(istd / "nowhere"), split="test")
    assert_one_line(e, "test_A")


def test_mask_is_raw_over_255_and_rgb_masks_become_grey(tmp_path, rng):
    img = random_rgb(rng, H, W)
    soft = np.tile(np.arange(W, dtype=np.uint8) * 8, (H, 1))
    save_rgb(tmp_path / "A" / "x.png", img)
    save_rgb(tmp_path / "B" / "x.png", np.repeat(soft[:, :, None], 3, axis=2))  # 3-channel grey mask
    s = ShadowDataset(image_dir=str(tmp_path / "A"), mask_dir=str(tmp_path / "B"), with_target=False)[0]
    assert set(s) == {"input", "mask", "name", "input_path", "mask_path"}
    assert torch.allclose(s["mask"][0], torch.from_numpy(soft).float() / 255)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_01_mask_reads_like_0_255(tmp_path, rng, channels):
    """A mask stored as 0/1 is not 1/255 (LAB-Net's > 0.5 would see no shadow at all)."""
    img = random_rgb(rng, H, W)
    binary = (img[:, :, 0] > 100).astype(np.uint8)
    stored = binary if channels == 1 else np.repeat(binary[:, :, None], 3, axis=2)
    if channels == 4:
        stored = np.concatenate([stored, np.full((H, W, 1), 255, np.uint8)], axis=2)  # opaque alpha
    save_rgb(tmp_path / "A" / "x.png", img)
    save_rgb(tmp_path / "B" / "x.png", stored)
    save_rgb(tmp_path / "A" / "y.png", img)
    save_rgb(tmp_path / "B" / "y.png", np.zeros((H, W), np.uint8))  # all zero: no shadow, stays 0
    ds = ShadowDataset(image_dir=str(tmp_path / "A"), mask_dir=str(tmp_path / "B"), with_target=False)
    assert ds.verify() == 2
    assert torch.equal(ds[0]["mask"][0], torch.from_numpy(binary).float())
    assert float(ds[1]["mask"].max()) == 0.0
    # a soft mask whose maximum is above 1 keeps its raw / 255 values
    save_rgb(tmp_path / "B" / "x.png", binary * 2)
    assert torch.allclose(ds[0]["mask"][0], torch.from_numpy(binary * 2).float() / 255)


def test_srd_layout_free_suffix_and_separate_masks(tmp_path, rng):
    root = tmp_path / "SRD" / "test"
    masks = tmp_path / "SRD_masks" / "test"
    for n in ("IMG_6581", "_MG_2"):
        img, mask, tgt = triplet(rng)
        save_rgb(root / "shadow" / f"{n}.png", img)  # SRD ships .jpg; .png keeps the test exact
        save_rgb(root / "shadow_free" / f"{n}_free.png", tgt)
        save_rgb(masks / f"{n}.png", mask)
    ds = ShadowDataset(root=str(root), layout="srd", mask_dir=str(masks), phase="test")
    assert ds.names == ["IMG_6581", "_MG_2"]
    s = ds[0]
    assert s["target_path"].endswith("IMG_6581_free.png")
    check_alignment(s)
    with pytest.raises(ConfigError) as e:
        ShadowDataset(root=str(root), layout="srd")
    assert_one_line(e, "mask_dir")
    # SRD renamed into the A/B/C scheme (DHAN) is simply the istd layout
    for sub, folder in (("shadow", "test_A"), ("shadow_free", "test_C")):
        for p in (root / sub).iterdir():
            save_rgb(tmp_path / "SRD_abc" / folder / p.name.replace("_free", ""), np.zeros((H, W, 3), np.uint8))
    for p in masks.iterdir():
        save_rgb(tmp_path / "SRD_abc" / "test_B" / p.name, np.zeros((H, W), np.uint8))
    assert ShadowDataset(root=str(tmp_path / "SRD_abc"), split="test").names == ds.names


def test_mask_of_wrong_size(tmp_path, rng):
    save_rgb(tmp_path / "test_A" / "a.png", random_rgb(rng, H, W))
    save_rgb(tmp_path / "test_B" / "a.png", np.zeros((H, W - 1), np.uint8))
    save_rgb(tmp_path / "test_C" / "a.png", random_rgb(rng, H, W))
    ds = ShadowDataset(root=str(tmp_path), split="test")
    with pytest.raises(DataError) as e:
        ds[0]
    assert_one_line(e, str(tmp_path / "test_B" / "a.png"), str(tmp_path / "test_A" / "a.png"), "31x24", "32x24")


def test_target_of_wrong_size(tmp_path, rng):
    save_rgb(tmp_path / "test_A" / "a.png", random_rgb(rng, H, W))
    save_rgb(tmp_path / "test_B" / "a.png", np.zeros((H, W), np.uint8))
    save_rgb(tmp_path / "test_C" / "a.png", random_rgb(rng, H + 2, W))
    with pytest.raises(DataError) as e:
        ShadowDataset(root=str(tmp_path), split="test")[0]
    assert_one_line(e, str(tmp_path / "test_C" / "a.png"), "32x26")


def test_missing_mask_listed(istd):
    (istd / "test" / "test_B" / "1-2.png").unlink()
    with pytest.raises(DataError) as e:
        ShadowDataset(root=str(istd / "test"), phase="test")
    assert_one_line(e, "1 of 2", "'1-2.png'", "mask")


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError):
        ShadowDataset()
    with pytest.raises(ConfigError):
        ShadowDataset(image_dir=str(tmp_path), mask_dir=str(tmp_path))  # target needed unless with_target false


def test_shared_shadow_examples(shared_data):
    ds = ShadowDataset(image_dir=str(shared_data / "shadow" / "images"), mask_dir=str(shared_data / "shadow" / "masks"),
                       with_target=False, phase="test")
    assert len(ds) == 6
    s = ds[0]
    assert s["mask"].shape[1:] == s["input"].shape[1:] and s["mask"].shape[0] == 1
    assert 0.0 <= float(s["mask"].min()) and float(s["mask"].max()) <= 1.0
