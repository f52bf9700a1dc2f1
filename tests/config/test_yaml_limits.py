"""The bounds of option-text reading: exactly at a limit loads, one past it is one error line."""

from __future__ import annotations

import pytest

from restore.config.yaml_text import MAX_DEPTH, MAX_NODES, parse_yaml_text
from restore.errors import ConfigError


def test_nesting_up_to_the_limit_loads_and_one_more_level_does_not():
    value = parse_yaml_text("[" * MAX_DEPTH + "]" * MAX_DEPTH, "f.yml")
    for _ in range(MAX_DEPTH - 1):
        value = value[0]
    assert value == []
    with pytest.raises(ConfigError, match=rf"^f\.yml:1:\d+: invalid YAML: nested more than {MAX_DEPTH}"):
        parse_yaml_text("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "f.yml")


def test_nesting_through_aliases_counts():
    lines = ["a0: &a0 [1]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, MAX_DEPTH + 2)]
    with pytest.raises(ConfigError, match="nested more than"):
        parse_yaml_text("\n".join(lines), "f.yml")


def test_shared_aliases_are_not_cycles_and_count_each_use():
    data = parse_yaml_text("a: &a {x: 1}\nb: [*a, *a]\n", "f.yml")
    assert data == {"a": {"x": 1}, "b": [{"x": 1}, {"x": 1}]}
    side = 1000
    text = "a: &a [" + ", ".join(["1"] * side) + "]\nb: [" + ", ".join(["*a"] * (MAX_NODES // side + 1)) + "]\n"
    with pytest.raises(ConfigError, match="expands to more than"):
        parse_yaml_text(text, "f.yml")


def test_a_control_character_is_located():
    with pytest.raises(ConfigError, match=r"^f\.yml:3:4: invalid YAML: control character U\+0007"):
        parse_yaml_text("a: 1\nb: 2\nc: \x07\n", "f.yml")
    # tabs, newlines and non-ASCII text are fine
    assert parse_yaml_text('a: "x\\ty"\nb: café\n', "f.yml") == {"a": "x\ty", "b": "café"}
