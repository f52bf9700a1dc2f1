"""Option files: base merging, --set overrides, strict YAML, provenance."""

from __future__ import annotations

from pathlib import Path

import pytest

from restore.config.loader import apply_overrides, read_option_file
from restore.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_base_merge_is_deep_for_mappings_and_child_wins(tmp_path):
    write(tmp_path / "base/a.yml", "train: {total_iter: 10, accumulate: 2}\nname: a\nlist: [1, 2, 3]\n")
    child = write(tmp_path / "exp/c.yml", "base: ../base/a.yml\ntrain: {total_iter: 99}\nlist: [7]\n")
    tree, origin = read_option_file(child)
    assert tree == {"name": "a", "train": {"total_iter": 99, "accumulate": 2}, "list": [7]}
    assert origin[("train", "total_iter")] == str(child)
    assert origin[("train", "accumulate")].endswith("a.yml")


def test_a_child_that_switches_a_component_type_replaces_the_mapping(tmp_path):
    write(tmp_path / "a.yml", "name: a\nd: {type: synthetic_noise, root: x, noise: gauss25, crop_size: 64}\n")
    child = write(tmp_path / "c.yml", "base: a.yml\nd: {type: noisy_folder, root: y}\n")
    tree, origin = read_option_file(child)
    assert tree["d"] == {"type": "noisy_folder", "root": "y"}
    assert ("d", "noise") not in origin and origin[("d", "root")] == str(child)
    same = write(tmp_path / "s.yml", "base: a.yml\nd: {type: synthetic_noise, root: z}\n")
    assert read_option_file(same)[0]["d"] == {"type": "synthetic_noise", "root": "z", "noise": "gauss25", "crop_size": 64}


def test_bases_merge_in_order_and_chain(tmp_path):
    write(tmp_path / "root.yml", "x: {a: 0, b: 0, c: 0}\n")
    write(tmp_path / "one.yml", "base: root.yml\nx: {a: 1, b: 1}\n")
    write(tmp_path / "two.yml", "x: {b: 2}\n")
    top = write(tmp_path / "top.yml", "base: [one.yml, two.yml]\nx: {c: 3}\n")
    tree, origin = read_option_file(top)
    assert tree == {"x": {"a": 1, "b": 2, "c": 3}}
    assert origin[("x", "a")].endswith("one.yml") and origin[("x", "b")].endswith("two.yml")


def test_mapping_replaced_by_scalar_drops_stale_origins(tmp_path):
    write(tmp_path / "a.yml", "x: {deep: 1}\n")
    top = write(tmp_path / "b.yml", "base: a.yml\nx: 5\n")
    tree, origin = read_option_file(top)
    assert tree == {"x": 5}
    assert ("x", "deep") not in origin


def test_base_cycle_is_an_error(tmp_path):
    write(tmp_path / "a.yml", "base: b.yml\n")
    write(tmp_path / "b.yml", "base: a.yml\n")
    with pytest.raises(ConfigError, match="cycle"):
        read_option_file(tmp_path / "a.yml")


def test_missing_base_names_the_child(tmp_path):
    top = write(tmp_path / "top.yml", "base: nothere.yml\n")
    with pytest.raises(ConfigError, match=r"top\.yml: base file .*nothere\.yml' not found"):
        read_option_file(top)


def test_duplicate_keys_are_rejected_with_line(tmp_path):
    top = write(tmp_path / "dup.yml", "name: a\ntrain:\n  lr: 1\n  lr: 2\n")
    with pytest.raises(ConfigError, match=r"dup\.yml:4: duplicate key 'lr'"):
        read_option_file(top)


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    top = write(tmp_path / "bad.yml", "name: a\ntrain: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yml:\d+:\d+: invalid YAML"):
        read_option_file(top)


def test_no_code_execution_tags(tmp_path):
    top = write(tmp_path / "evil.yml", "x: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError):
        read_option_file(top)


def test_overrides_parse_yaml_values_and_create_keys():
    tree, origin = apply_overrides(
        {"train": {"lr": 1.0, "betas": [0.9, 0.99]}},
        {("train",): "f.yml", ("train", "lr"): "f.yml", ("train", "betas"): "f.yml"},
        ["train.lr=1e-4", "train.betas=[0.5, 0.6]", "new.deep.key=true", "name=run 1"],
    )
    assert tree["train"] == {"lr": 1e-4, "betas": [0.5, 0.6]}
    assert tree["new"] == {"deep": {"key": True}} and tree["name"] == "run 1"
    assert origin[("train", "lr")] == "--set train.lr"


@pytest.mark.parametrize("bad", ["novalue", "=3", "a..b=1"])
def test_malformed_override(bad):
    with pytest.raises(ConfigError, match="KEY.PATH=VALUE"):
        apply_overrides({}, {}, [bad])


def test_exponent_without_dot_is_a_float(tmp_path):
    tree, _ = read_option_file(write(tmp_path / "f.yml", "lr: 2e-4\neps: 1E+3\nname: 1e\n"))
    assert tree == {"lr": 2e-4, "eps": 1000.0, "name": "1e"}


def test_overrides_index_into_lists_and_merge_mappings():
    tree = {"train": {"losses": [{"type": "l1", "weight": 1.0}, {"type": "l2"}]}, "x": {"a": 1, "b": 2}}
    new, origin = apply_overrides(tree, {}, ["train.losses.1.weight=0.5", "x={b: 3, c: 4}", "train.losses.0=charbonnier"])
    assert new["train"]["losses"] == ["charbonnier", {"type": "l2", "weight": 0.5}]
    assert new["x"] == {"a": 1, "b": 3, "c": 4}
    assert tree["train"]["losses"][1] == {"type": "l2"}  # the input is not modified
    assert origin[("train", "losses", "1", "weight")] == "--set train.losses.1.weight"
    with pytest.raises(ConfigError, match=r"'train\.losses\.5' must index the list of 2 items"):
        apply_overrides(tree, {}, ["train.losses.5.weight=1"])
