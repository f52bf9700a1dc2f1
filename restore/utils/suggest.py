"""'Did you mean ...?' suggestions for misspelt keys and names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, valid: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The valid word most like ``word`` (case-insensitive), or None if nothing is close."""
    by_lower: dict[str, str] = {}
    for v in valid:
        by_lower.setdefault(str(v).lower(), str(v))
    lower = str(word).lower()
    match = difflib.get_close_matches(lower, list(by_lower), n=1, cutoff=cutoff)
    if match:
        return by_lower[match[0]]
    # a truncated name ('sidd' for 'sidd_matlab') is too short for difflib's ratio
    prefixed = sorted(v for v in by_lower if lower and v.startswith(lower))
    return by_lower[prefixed[0]] if prefixed else None


def did_you_mean(word: str, valid: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` or ``""``."""
    match = closest(word, valid)
    return f" (did you mean {match!r}?)" if match else ""
