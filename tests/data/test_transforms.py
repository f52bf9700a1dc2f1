"""restore.data.transforms: one crop window / one dihedral element for the whole sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_helpers import assert_one_line

from restore.data.transforms import (
    check_mask_size,
    check_pair_size,
    dihedral,
    dihedral_tensor,
    inverse_dihedral_tensor,
    random_crop,
    random_dihedral,
    tip2018_box,
    tip2018_preprocess,
)
from restore.errors import DataError


def coords(h: int, w: int) -> np.ndarray:
    """(H, W, 2) int array holding each pixel's own (y, x): a crop reveals where it came from."""
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return np.stack([yy, xx], axis=2).astype(np.int32)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_crop_is_one_window_for_input_target_mask():
    x = coords(40, 50)
    target = x + 1000  # "target = input shifted by a constant"
    mask = (x[:, :, :1] * 7 + x[:, :, 1:]) % 256
    tops, lefts = set(), set()
    for seed in range(20):
        cx, ct, cm = random_crop([x, target, mask], 16, gen(seed))
        assert cx.shape == (16, 16, 2) and ct.shape == (16, 16, 2) and cm.shape == (16, 16, 1)
        top, left = int(cx[0, 0, 0]), int(cx[0, 0, 1])
        assert 0 <= top <= 24 and 0 <= left <= 34
        np.testing.assert_array_equal(cx, x[top : top + 16, left : left + 16])  # contiguous window
        np.testing.assert_array_equal(ct - cx, np.full_like(cx, 1000))
        np.testing.assert_array_equal(cm, mask[top : top + 16, left : left + 16])
        tops.add(top)
        lefts.add(left)
    assert len(tops) > 5 and len(lefts) > 5  # the window really moves


def test_crop_same_generator_seed_same_window():
    x = coords(30, 30)
    a = random_crop([x], 8, gen(5))[0]
    b = random_crop([x], 8, gen(5))[0]
    np.testing.assert_array_equal(a, b)


def test_crop_window_reaches_every_corner():
    x = coords(10, 10)
    seen = {tuple(random_crop([x], 8, gen(s))[0][0, 0]) for s in range(200)}
    assert seen == {(t, l) for t in range(3) for l in range(3)}  # noqa: E741


def test_crop_with_scale_keeps_correspondence():
    lr = coords(20, 24)
    hr = coords(40, 48)  # hr pixel (Y, X) corresponds to lr (Y//2, X//2)
    for seed in range(10):
        cl, ch = random_crop([lr, hr], 6, gen(seed), scales=[1, 2])
        assert ch.shape == (12, 12, 2)
        np.testing.assert_array_equal(ch[0, 0], 2 * cl[0, 0])
        np.testing.assert_array_equal(ch[::2, ::2] // 2, cl)


def test_crop_larger_than_image_names_the_file():
    with pytest.raises(DataError) as e:
        random_crop([coords(10, 12)], 16, gen(0), path="data/small.png")
    assert_one_line(e, "data/small.png", "12x10", "crop_size 16")


def test_eight_dihedral_transforms_are_distinct_and_invertible():
    a = np.arange(12).reshape(3, 4, 1)
    outs = [dihedral(a, k) for k in range(8)]
    assert len({o.tobytes() + bytes(o.shape) for o in outs}) == 8
    np.testing.assert_array_equal(outs[0], a)
    np.testing.assert_array_equal(outs[1][:, :, 0], np.rot90(a[:, :, 0]))
    np.testing.assert_array_equal(outs[4][:, :, 0], a[:, ::-1, 0])
    t = torch.from_numpy(a[:, :, 0].copy())
    for k in range(8):
        dt = dihedral_tensor(t, k)
        np.testing.assert_array_equal(dt.numpy(), outs[k][:, :, 0])
        assert torch.equal(inverse_dihedral_tensor(dt, k), t)
        assert outs[k].flags["C_CONTIGUOUS"]


def test_random_dihedral_identical_across_sample_and_covers_all_eight():
    x = coords(5, 7)
    seen = set()
    for seed in range(100):
        ox, ot = random_dihedral([x, x + 3], gen(seed))
        np.testing.assert_array_equal(ot - ox, np.full_like(ox, 3))
        k = next(k for k in range(8) if dihedral(x, k).shape == ox.shape and np.array_equal(dihedral(x, k), ox))
        seen.add(k)
    assert seen == set(range(8))


def test_size_checks_name_both_files():
    a, b = np.zeros((10, 12, 3)), np.zeros((10, 11, 3))
    with pytest.raises(DataError) as e:
        check_pair_size(a, "in/x.png", b, "gt/x.png")
    assert_one_line(e, "in/x.png", "gt/x.png", "12x10", "11x10")
    check_pair_size(a, "a", np.zeros((20, 24, 3)), "b", scale=2)
    with pytest.raises(DataError) as e:
        check_mask_size(a, "A/x.png", np.zeros((5, 6, 1)), "B/x.png")
    assert_one_line(e, "A/x.png", "B/x.png", "6x5", "12x10", "mask")
    check_mask_size(a, "a", np.zeros((10, 12, 1)), "b")


def test_tip2018_box_golden():
    assert tip2018_box(600, 400) == (100, 66, 500, 333)
    assert tip2018_box(601, 401, 6, -6) == (106, 60, 506, 328)


def test_tip2018_preprocess_matches_pil_and_jitters(rng=np.random.default_rng(0)):  # noqa: B008
    from PIL import Image

    moire = rng.integers(0, 256, size=(90, 120, 3), dtype=np.uint8)
    clean = rng.integers(0, 256, size=(90, 120, 3), dtype=np.uint8)
    out = tip2018_preprocess([moire, clean], ["m", "c"])
    expected = np.asarray(Image.fromarray(moire).crop((20, 15, 100, 75)).resize((256, 256), Image.BILINEAR))
    assert out[0].shape == (256, 256, 3) and out[1].shape == (256, 256, 3)
    np.testing.assert_array_equal(out[0], expected)
    jittered = [tip2018_preprocess([moire], ["m"], gen(s))[0] for s in range(6)]
    assert any(not np.array_equal(j, out[0]) for j in jittered)
    # one jitter for every image of the sample, drawn as dx then dy from the generator
    for seed in range(4):
        g = gen(seed)
        dx, dy = (int(torch.randint(-6, 7, (1,), generator=g)) for _ in range(2))
        o1, o2 = tip2018_preprocess([moire, clean], ["m", "c"], gen(seed))
        box = tip2018_box(120, 90, dx, dy)
        for got, img in ((o1, moire), (o2, clean)):
            want = np.asarray(Image.fromarray(img).crop(box).resize((256, 256), Image.BILINEAR))
            np.testing.assert_array_equal(got, want)
