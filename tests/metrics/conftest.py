"""Reference pairs of metrics.md §6, built from the shared images (skipped when absent).

md5s of the constructed arrays are checked: golden values are only asserted when the arrays are
exactly the ones the spec measured (``Pair.golden``); otherwise tests fall back to independent
computations. BasicSR's 480x492 baboon test image is the shared Set14 baboon (480x500) cut to
its first 492 columns (md5-checked), so P1 and P4 are built from that crop.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from .reference import load_rgb, md5, to_tensor

MD5 = {
    "kodim07": "a21ef695052bc9a6cfa00c2ac2a8f9d4",
    "P2": "5fc6e5309933b5cc15606acbff9c46a7",
    "P3": "74d6aafe508a44ec0f060188c9934db9",
    "baboon_basicsr": "65fe57f716c107bebf8cc53c5a0ab4e0",
    "P1": "b5f494dc6553a9078f18b9b56d6f469b",
    "P4": "d295f5eb993b26985284f4298ce2c2f1",
}


@dataclass
class Pair:
    name: str
    gt: np.ndarray  # HxWx3 uint8 RGB
    out: np.ndarray
    golden: bool  # arrays match the spec's md5s: its reference values apply

    @property
    def gt_t(self) -> torch.Tensor:
        return to_tensor(self.gt)

    @property
    def out_t(self) -> torch.Tensor:
        return to_tensor(self.out)


@pytest.fixture(scope="session")
def kodim07(shared_data) -> np.ndarray:
    img = load_rgb(shared_data / "kodak24" / "kodim07.png")
    if md5(img) != MD5["kodim07"]:
        pytest.skip("kodim07.png differs from the image metrics.md §6 was measured on")
    return img


@pytest.fixture(scope="session")
def pair_p2(kodim07) -> Pair:
    """P2: kodim07 through Pillow JPEG quality 30 (md5 depends on Pillow/libjpeg)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(kodim07).save(buf, format="JPEG", quality=30)
    buf.seek(0)
    with Image.open(buf) as im:
        out = np.asarray(im.convert("RGB"))
    return Pair("P2", kodim07, out, md5(out) == MD5["P2"])


@pytest.fixture(scope="session")
def pair_p3(kodim07) -> Pair:
    """P3: kodim07 shifted by one pixel horizontally (wrap-around)."""
    out = np.roll(kodim07, 1, axis=1)
    return Pair("P3", kodim07, out, md5(out) == MD5["P3"])


@pytest.fixture(scope="session")
def baboon_basicsr(shared_data) -> np.ndarray:
    """BasicSR's baboon.png = Set14 baboon, first 492 columns."""
    img = np.ascontiguousarray(load_rgb(shared_data / "set14" / "baboon.png")[:, :492])
    if md5(img) != MD5["baboon_basicsr"]:
        pytest.skip("set14/baboon.png differs from the image metrics.md §6 was measured on")
    return img


@pytest.fixture(scope="session")
def pair_p1(baboon_basicsr) -> Pair:
    """P1: baboon + N(0, 25^2) (one float64 draw, seed 0), rounded and clipped to uint8."""
    noise = np.random.default_rng(0).normal(0, 25, baboon_basicsr.shape)
    out = np.clip(np.rint(baboon_basicsr + noise), 0, 255).astype(np.uint8)
    return Pair("P1", baboon_basicsr, out, md5(out) == MD5["P1"])


@pytest.fixture(scope="session")
def pair_p4(baboon_basicsr) -> Pair:
    """P4: clip(baboon/255 + N(0, (10/255)^2), 0, 1) as float32 (seed 1), unquantised."""
    noise = np.random.default_rng(1).normal(0, 10 / 255, baboon_basicsr.shape)
    out = np.clip(baboon_basicsr / 255 + noise, 0, 1).astype(np.float32)
    return Pair("P4", baboon_basicsr, out, md5(out) == MD5["P4"])


@pytest.fixture(scope="session")
def baboon_pair(shared_data) -> Pair:
    """A small P1-style pair (baboon crop) for fast independent cross-checks (no golden values)."""
    gt = load_rgb(shared_data / "set14" / "baboon.png")[:160, :200]
    rng = np.random.default_rng(0)
    out = np.clip(np.rint(gt + rng.normal(0, 25, gt.shape)), 0, 255).astype(np.uint8)
    return Pair("baboon", gt, out, False)


@pytest.fixture(scope="session")
def shadow_example(kodim07):
    """metrics.md §4.4 worked example: circular mask, result = clip(rint(GT*k))."""
    h, w = kodim07.shape[:2]
    r, c = np.mgrid[:h, :w]
    inside = (r - 256) ** 2 + (c - 384) ** 2 <= 120**2
    assert inside.sum() == 45225
    k = np.where(inside, 0.85, 1.02)[..., None]
    result = np.clip(np.rint(kodim07 * k), 0, 255).astype(np.uint8)
    mask = (inside * 255).astype(np.uint8)
    return result, kodim07, mask
