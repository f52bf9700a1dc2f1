"""Reference pairs of metrics.md §6, built from the shared images (skipped when absent).

md5s of the constructed arrays are checked: golden values are only asserted when the arrays are
exactly the ones the spec measured (``Pair.golden``); otherwise tests fall back to independent
computations. Set14's baboon here is 480x500 (md5 0cb5e6e0...), not BasicSR's 480x492 test
image, so P1/P4 goldens are never used; baboon only serves independent cross-checks.
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
def baboon_pair(shared_data) -> Pair:
    """P1-style pair on the local Set14 baboon (not BasicSR's: never golden), cropped for speed."""
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
