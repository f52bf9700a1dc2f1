"""Messages that stay on one line whatever the file names in them.

Why: a file may be named ``a\nb.png``; a failure line naming it must still be one line, or a
user (or a script reading stderr) sees a second, bogus line.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(text: str) -> str:
    """``text`` with control characters (newline, tab, ESC, ...) written as escapes (``\\n``)."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
