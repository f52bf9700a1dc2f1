"""Datasets feed the evaluator through a DataLoader: masks travel, values are what they claim."""

from __future__ import annotations

import math

import cv2
import numpy as np
from torch.utils.data import DataLoader

from restore.data.shadow_folder import ShadowDataset
from restore.data.synthetic_noise import SyntheticNoiseDataset
from restore.metrics import Evaluator


def write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


def test_shadow_masks_travel_through_the_batch_to_the_evaluator(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(4):
        free = rng.integers(60, 200, (64, 80, 3), dtype=np.uint8)
        mask = np.zeros((64, 80), np.uint8)
        mask[16:48, 10 + 5 * i: 50 + 5 * i] = 255
        shadow = np.where(mask[..., None] > 0, free // 2, free).astype(np.uint8)
        write(tmp_path / "ISTD/test/test_A" / f"{i}-1.png", shadow)
        write(tmp_path / "ISTD/test/test_B" / f"{i}-1.png", mask)
        write(tmp_path / "ISTD/test/test_C" / f"{i}-1.png", free)
    ds = ShadowDataset(root=str(tmp_path / "ISTD"), split="test", phase="test")
    ev = Evaluator("shadow_b")
    for batch in DataLoader(ds, batch_size=2, num_workers=2):
        assert batch["mask"].shape == (2, 1, 64, 80)
        # "restore" the shadow perfectly outside the mask only: error must sit in the shadow region
        ev.update(batch["input"], batch["target"], mask=batch["mask"], names=batch["name"])
    s = ev.summary()
    assert s["n_images"] == 4
    assert s["lab_mae_ns_pp"] == 0.0 and s["lab_mae_s_pp"] > 10.0
    assert math.isclose(s["lab_mae_pp"], s["lab_mae_s_pp"] * (32 * 40) / (64 * 80), rel_tol=1e-9)


def test_seeded_noise_scores_identically_whatever_the_workers(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(5):
        write(tmp_path / "clean" / f"im{i}.png", rng.integers(40, 216, (48, 64, 3), dtype=np.uint8))

    def run(workers: int) -> dict[str, float]:
        ds = SyntheticNoiseDataset(root=str(tmp_path / "clean"), noise="gauss25", phase="val")
        ev = Evaluator("basicsr")
        for batch in DataLoader(ds, batch_size=2, num_workers=workers):
            ev.update(batch["input"].clamp(0, 1), batch["target"], names=batch["name"])
        return ev.summary()

    a, b = run(0), run(2)
    assert a == b
    # sigma 25 on mid-range content, rounded to uint8: PSNR close to 20*log10(255/25) = 20.17 dB
    assert abs(a["psnr"] - 20 * math.log10(255 / 25)) < 0.3
