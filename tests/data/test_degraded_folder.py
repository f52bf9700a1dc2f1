"""restore.data.degraded_folder: sample contents, SR sizes, seeding, options errors."""

from __future__ import annotations

import pytest
import torch
from data_helpers import assert_one_line, random_rgb, save_rgb

from restore.data.degradations import parse_degradation
from restore.data.degraded_folder import DegradedFolderDataset
from restore.errors import ConfigError


@pytest.fixture
def clean_dir(tmp_path, rng):
    root = tmp_path / "clean"
    for i in range(3):
        save_rgb(root / f"img{i}.png", random_rgb(rng, 37, 50))
    return root


def test_sample_contents_and_task_tag(clean_dir):
    ds = DegradedFolderDataset(str(clean_dir), degradation="rain", phase="val")
    s = ds[1]
    assert set(s) == {"input", "target", "name", "input_path", "task"}
    assert s["name"] == "img1" and s["task"] == "rain" and s["input_path"].endswith("img1.png")
    assert s["input"].shape == s["target"].shape == (3, 37, 50) and s["input"].dtype == torch.float32
    assert DegradedFolderDataset(str(clean_dir), degradation="rain", task="derain")[0]["task"] == "derain"


def test_val_is_a_pure_function_of_seed_and_name(clean_dir):
    a = DegradedFolderDataset(str(clean_dir), degradation="gauss5_50", phase="val", repeat=2)
    b = DegradedFolderDataset(str(clean_dir), degradation="gauss5_50", phase="val", repeat=2)
    assert a.names[:4] == ["img0#0", "img1#0", "img2#0", "img0#1"]
    for i in range(len(a)):
        assert torch.equal(a[i]["input"], b[i]["input"])
    assert not torch.equal(a[0]["input"], a[3]["input"])  # repeats: independent degradations
    c = DegradedFolderDataset(str(clean_dir), degradation="gauss5_50", phase="val", seed=1)
    assert not torch.equal(a[0]["input"], c[0]["input"])


def test_train_keys_are_exact_and_streams_independent(clean_dir):
    ds = DegradedFolderDataset(str(clean_dir), degradation="haze", crop_size=32, flip_rotate=True)
    x, y = ds[(2, 99)], ds[(2, 99)]
    assert x["input"].shape == (3, 32, 32)
    assert torch.equal(x["input"], y["input"]) and torch.equal(x["target"], y["target"])
    assert not torch.equal(x["input"], ds[(2, 100)]["input"])


def test_sr_lr_input_is_matlab_bicubic_of_the_hr_crop(clean_dir):
    ds = DegradedFolderDataset(str(clean_dir), degradation="bicubic_x3", crop_size=24, flip_rotate=True)
    assert ds.scale == 3 and ds.sample_sizes() == (8, 24)
    s = ds[(0, 5)]
    assert s["input"].shape == (3, 8, 8) and s["target"].shape == (3, 24, 24)
    expected = parse_degradation("bicubic_x3")(s["target"], torch.Generator())
    torch.testing.assert_close(s["input"], expected, atol=0, rtol=0)


def test_sr_without_crop_modcrops_the_hr_image(clean_dir):
    s = DegradedFolderDataset(str(clean_dir), degradation="bicubic_x4", phase="test")[0]
    assert s["target"].shape == (3, 36, 48) and s["input"].shape == (3, 9, 12)


def test_sr_upsampled_input_has_the_target_size(clean_dir):
    ds = DegradedFolderDataset(str(clean_dir), degradation="bicubic_x2", crop_size=16, sr_input="upsampled")
    s = ds[(1, 3)]
    assert ds.scale == 1 and ds.sample_sizes() == (16, 16)
    assert s["input"].shape == s["target"].shape == (3, 16, 16)
    assert float(s["input"].min()) >= 0 and float(s["input"].max()) <= 1
    # upsampled LR is a smooth version of the HR crop: closer to it than a constant image
    assert float((s["input"] - s["target"]).abs().mean()) < float((s["target"] - s["target"].mean()).abs().mean())


def test_option_errors_are_one_line(clean_dir):
    with pytest.raises(ConfigError) as e:
        DegradedFolderDataset(str(clean_dir), degradation="bicubic_x3", crop_size=32)
    assert_one_line(e, "crop_size 32", "multiple of the scale 3")
    with pytest.raises(ConfigError) as e:
        DegradedFolderDataset(str(clean_dir), degradation="rain", degradation_args={"angel": 3})
    assert_one_line(e, "angel")
    with pytest.raises(ConfigError):
        DegradedFolderDataset(str(clean_dir), degradation="rain", sr_input="bilinear")


def test_verify_checks_the_crop(clean_dir):
    assert DegradedFolderDataset(str(clean_dir), degradation="gauss30", crop_size=32).verify() == 3
    from restore.errors import DataError

    with pytest.raises(DataError):
        DegradedFolderDataset(str(clean_dir), degradation="gauss30", crop_size=48).verify()


def test_real_kodak_image(shared_data):
    ds = DegradedFolderDataset(str(shared_data / "kodak24"), degradation="bicubic_x2", phase="val", max_images=1)
    s = ds[0]
    assert s["target"].shape[1:] in {(512, 768), (768, 512)}
    assert s["input"].shape[1] * 2 == s["target"].shape[1]
