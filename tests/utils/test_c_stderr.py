"""c_stderr_captured: what C code writes on descriptor 2 during a call is caught, then restored."""

from __future__ import annotations

import os

from restore.utils.c_stderr import c_stderr_captured


def test_descriptor_2_is_caught_and_restored(capfd):
    os.write(2, b"before\n")
    with c_stderr_captured() as caught:
        os.write(2, b"libpng error: from C\n")
    os.write(2, b"after\n")
    assert caught == ["libpng error: from C\n"]
    assert capfd.readouterr().err == "before\nafter\n"


def test_nothing_written_gives_empty_text_and_a_second_call_starts_clean(capfd):
    with c_stderr_captured() as first:
        os.write(2, b"one\n")
    with c_stderr_captured() as second:
        pass
    assert first == ["one\n"] and second == [""]
    assert capfd.readouterr().err == ""


def test_descriptor_2_is_restored_when_the_call_raises(capfd):
    try:
        with c_stderr_captured():
            raise ValueError("boom")
    except ValueError:
        pass
    os.write(2, b"still here\n")
    assert capfd.readouterr().err == "still here\n"
