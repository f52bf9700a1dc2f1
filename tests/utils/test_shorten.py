"""Long lists in one-line messages: the first few, then how many were left out."""

from __future__ import annotations

import pytest

from restore.utils.shorten import shorten_list


def test_short_lists_are_named_in_full():
    assert shorten_list([], 3) == ""
    assert shorten_list(["a"], 3) == "a"
    assert shorten_list(["a", "b", "c"], 3) == "a, b, c"


def test_long_lists_say_how_many_more():
    assert shorten_list(["a", "b", "c", "d", "e"], 2) == "a, b and 3 more"
    assert shorten_list(["'x.png'", "'y.png'"], 1) == "'x.png' and 1 more"
    assert shorten_list(["k1 (1)", "k2 (2)", "k3 (3)"], 2, "; ") == "k1 (1); k2 (2) and 1 more"


def test_at_least_one_item_is_shown():
    with pytest.raises(ValueError):
        shorten_list(["a"], 0)
