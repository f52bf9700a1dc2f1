"""Did-you-mean suggestions."""

from restore.utils.suggest import closest, did_you_mean


def test_closest_is_case_insensitive_and_keeps_the_valid_spelling():
    assert closest("L1", ["l1", "l2", "charbonnier"]) == "l1"
    assert closest("optimiser", ["optimizer", "scheduler"]) == "optimizer"


def test_truncated_names_are_suggested():
    assert closest("sidd", ["basicsr", "sidd_matlab"]) == "sidd_matlab"


def test_nothing_close_gives_no_suggestion():
    assert closest("zzz", ["alpha", "beta"]) is None
    assert did_you_mean("zzz", ["alpha"]) == ""
    assert did_you_mean("alpah", ["alpha"]) == " (did you mean 'alpha'?)"
