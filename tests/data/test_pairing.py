"""restore.data.pairing: every rule on the real benchmark naming schemes, and the errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_helpers import assert_one_line

from restore.data.image_io import list_images
from restore.data.pairing import Pairing, pair_files, strip_image_ext
from restore.errors import ConfigError, DataError


def touch(root: Path, *names: str) -> None:
    for name in names:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")  # pairing only looks at names


def rel_pairs(pairs, in_root, t_root):
    return [(i.relative_to(in_root).as_posix(), t.relative_to(t_root).as_posix()) for i, t in pairs]


def pair(in_root, t_root, rule="same_name", replace=None, recursive=True):
    return pair_files(
        list_images(in_root, recursive), in_root, list_images(t_root, recursive), t_root,
        Pairing.from_options(rule, replace),
    )


def test_strip_image_ext():
    assert strip_image_ext("a/b.PNG") == "a/b"
    assert strip_image_ext("x.v2.jpeg") == "x.v2"
    assert strip_image_ext("noext") == "noext"


def test_same_name_istd(tmp_path):
    names = ["118-14.png", "90-1.png", "90-2.png"]
    touch(tmp_path / "train_A", *names)
    touch(tmp_path / "train_C", *names)
    pairs = pair(tmp_path / "train_A", tmp_path / "train_C")
    assert rel_pairs(pairs, tmp_path / "train_A", tmp_path / "train_C") == [(n, n) for n in sorted(names)]


def test_same_name_extension_may_differ_and_subfolders_pair(tmp_path):
    touch(tmp_path / "in", "a.jpg", "s/b.jpg")
    touch(tmp_path / "gt", "a.png", "s/b.png", "b.png")  # top-level b.png must not steal s/b
    pairs = pair(tmp_path / "in", tmp_path / "gt")
    assert rel_pairs(pairs, tmp_path / "in", tmp_path / "gt") == [("a.jpg", "a.png"), ("s/b.jpg", "s/b.png")]


def test_replace_rain100l_prenet_layout(tmp_path):
    root = tmp_path / "Rain100L"
    touch(root / "rainy", "rain-001.png", "rain-002.png", "rain-100.png")
    touch(root, "norain-001.png", "norain-002.png", "norain-100.png")
    for recursive in (False, True):  # recursive: rainy/ is inside the target root; extras ignored
        pairs = pair(root / "rainy", root, "replace", ["rain-", "norain-"], recursive=recursive)
        assert rel_pairs(pairs, root / "rainy", root) == [
            ("rain-001.png", "norain-001.png"),
            ("rain-002.png", "norain-002.png"),
            ("rain-100.png", "norain-100.png"),
        ]


def test_replace_tip2018_source_target(tmp_path):
    touch(tmp_path / "source", "image_test_part001_00000044_source.png", "image_test_part001_00000045_source.png")
    touch(tmp_path / "target", "image_test_part001_00000045_target.png", "image_test_part001_00000044_target.png")
    pairs = pair(tmp_path / "source", tmp_path / "target", "replace", ["source", "target"])
    assert [(i.name, t.name) for i, t in pairs] == [
        ("image_test_part001_00000044_source.png", "image_test_part001_00000044_target.png"),
        ("image_test_part001_00000045_source.png", "image_test_part001_00000045_target.png"),
    ]


def test_srd_free_suffix_by_replace_and_regex(tmp_path):
    touch(tmp_path / "shadow", "IMG_6581.jpg", "_MG_2.jpg", "DSCF3.jpg")
    touch(tmp_path / "shadow_free", "IMG_6581_free.jpg", "_MG_2_free.jpg", "DSCF3_free.jpg")
    expected = [("DSCF3.jpg", "DSCF3_free.jpg"), ("IMG_6581.jpg", "IMG_6581_free.jpg"), ("_MG_2.jpg", "_MG_2_free.jpg")]
    a = pair(tmp_path / "shadow", tmp_path / "shadow_free", "replace", [".jpg", "_free.jpg"])
    b = pair(tmp_path / "shadow", tmp_path / "shadow_free", "regex", [r"(\.[a-z]+)$", r"_free\1"])
    assert [(i.name, t.name) for i, t in a] == expected
    assert [(i.name, t.name) for i, t in b] == expected


def test_sidd_medium_same_folder_noisy_gt(tmp_path):
    data = tmp_path / "Data"
    touch(data / "0001_001_S6_00100_00060_3200_L",
          "0001_GT_SRGB_010.PNG", "0001_GT_SRGB_011.PNG", "0001_NOISY_SRGB_010.PNG", "0001_NOISY_SRGB_011.PNG")
    touch(data / "0002_001_S6_00100_00060_3200_N", "0002_GT_SRGB_010.PNG", "0002_NOISY_SRGB_010.PNG")
    pairs = pair(data, data, "replace", ["NOISY", "GT"])
    got = [(i.name, t.name) for i, t in pairs]
    assert got == [
        ("0001_NOISY_SRGB_010.PNG", "0001_GT_SRGB_010.PNG"),
        ("0001_NOISY_SRGB_011.PNG", "0001_GT_SRGB_011.PNG"),
        ("0002_NOISY_SRGB_010.PNG", "0002_GT_SRGB_010.PNG"),
    ]


def test_sorted_by_position(tmp_path):
    touch(tmp_path / "input", "a.png", "b.png", "c.png")
    touch(tmp_path / "output", "x.png", "y.png", "z.png")
    pairs = pair(tmp_path / "input", tmp_path / "output", "sorted")
    assert [(i.name, t.name) for i, t in pairs] == [("a.png", "x.png"), ("b.png", "y.png"), ("c.png", "z.png")]


def test_sorted_unequal_counts_lists_surplus(tmp_path):
    touch(tmp_path / "input", "a.png", "b.png", "c.png")
    touch(tmp_path / "output", "x.png")
    with pytest.raises(DataError) as e:
        pair(tmp_path / "input", tmp_path / "output", "sorted")
    assert_one_line(e, "3 input", "1 target", "'b.png'", "'c.png'", str(tmp_path / "output"))


def test_unmatched_inputs_listed_first_ten_and_count(tmp_path):
    touch(tmp_path / "rainy", *[f"rain-{i:03d}.png" for i in range(1, 16)])
    touch(tmp_path / "gt", "norain-001.png", "norain-002.png", "norain-003.png")
    with pytest.raises(DataError) as e:
        pair(tmp_path / "rainy", tmp_path / "gt", "replace", ["rain-", "norain-"])
    msg = assert_one_line(e, "12 of 15", "'rain-004.png'", "'rain-013.png'", "and 2 more", str(tmp_path / "gt"))
    assert "rain-014" not in msg and "rain-001" not in msg


def test_replace_input_without_the_from_string_is_unmatched(tmp_path):
    touch(tmp_path / "in", "src_00001.png", "oops.png")
    touch(tmp_path / "gt", "tar_00001.png")
    with pytest.raises(DataError) as e:
        pair(tmp_path / "in", tmp_path / "gt", "replace", ["src_", "tar_"])
    assert_one_line(e, "'oops.png'", "does not match")


def test_ambiguous_target(tmp_path):
    touch(tmp_path / "in", "a.png")
    touch(tmp_path / "gt", "a.png", "a.jpg")
    with pytest.raises(DataError) as e:
        pair(tmp_path / "in", tmp_path / "gt")
    assert_one_line(e, "ambiguous", "'a.jpg'", "'a.png'")


def test_same_folder_same_name_is_an_error(tmp_path):
    touch(tmp_path, "a.png")
    with pytest.raises(DataError) as e:
        pair(tmp_path, tmp_path)
    assert_one_line(e, "itself", "a.png")


@pytest.mark.parametrize(
    "rule, replace, expect",
    [
        ("replace", None, "pair_replace"),
        ("replace", ["only-one"], "pair_replace"),
        ("regex", ["(", "x"], "invalid regular expression"),
        ("same_name", ["a", "b"], "only used with"),
        ("natural", None, "unknown pairing"),
    ],
)
def test_bad_options_raise_config_error(rule, replace, expect):
    with pytest.raises(ConfigError) as e:
        Pairing.from_options(rule, replace)
    assert_one_line(e, expect)
