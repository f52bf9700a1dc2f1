"""One way to name a long list of things in a one-line message: ``a, b, c and 7 more``.

Why: an error about a checkpoint with 300 missing keys, or a folder with 2000 unpaired images,
must stay one readable line that still names the first few and says how many there are.
"""

from __future__ import annotations

from collections.abc import Sequence


def shorten_list(items: Sequence[str], shown: int, sep: str = ", ") -> str:
    """The first ``shown`` of ``items`` joined by ``sep``, then `` and N more`` if some were left out.

    ``shorten_list(["a", "b", "c"], 2)`` is ``"a, b and 1 more"``; ``shown`` must be at least 1.
    """
    if shown < 1:
        raise ValueError(f"shown must be at least 1, got {shown}")
    text = sep.join(items[:shown])
    left = len(items) - shown
    return text + (f" and {left} more" if left > 0 else "")
