"""Pairing degraded images with their targets (or masks) across two folders.

Benchmarks name their pairs in several ways (see ``shared/specs/datasets.md``), so the rule is an
option. All rules work on paths *relative to each folder's root*, so recursive layouts (SIDD-Medium
scene folders, UHDM sub-folders) pair within the same sub-folder.

Rules (option ``pairing``, with ``pair_replace: [a, b]`` where needed):

``same_name``
    identical relative path without extension; the extension may differ (``x.jpg`` <-> ``x.png``).
    ISTD ``train_A/90-1.png`` <-> ``train_C/90-1.png``, LCDMoire, Restormer ``input/``/``target/``.
``sorted``
    by position in the sorted lists; counts must be equal. What WDNet, ShadowFormer and the
    MATLAB scorers do; use it only when names really differ arbitrarily.
``replace``
    plain substring substitution ``a -> b`` in the input's *file name (with extension)*; the
    result is looked up in the same relative sub-folder of the target root, ignoring the
    extension. Rain100L ``['rain-', 'norain-']``, TIP2018 ``['source', 'target']``, SRD
    ``['.jpg', '_free.jpg']``, SIDD ``['NOISY', 'GT']``, FHDMi ``['src_', 'tar_']``.
``regex``
    ``re.sub(a, b, file name)``; inputs whose name the pattern does not match are unmatched.

Every input must find exactly one target; extra target files are ignored (a target root may
hold other things, e.g. PReNet's ``Rain100L/`` contains ``rainy/``). When the input and the
target folder are the same (SIDD-Medium, UHDM), files that are the target of another input are
dropped from the inputs automatically. Any problem raises one-line :class:`DataError` listing
the first unmatched files and a count.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from restore.data.image_io import IMAGE_EXTENSIONS
from restore.errors import ConfigError, DataError
from restore.utils.shorten import shorten_list

PairingRule = Literal["same_name", "sorted", "replace", "regex"]
PAIRING_RULES: tuple[str, ...] = ("same_name", "sorted", "replace", "regex")
_SHOW = 10  # how many offending files an error message lists


def strip_image_ext(name: str) -> str:
    """``'a/b.PNG'`` -> ``'a/b'``; a name without an image extension is returned unchanged."""
    for ext in IMAGE_EXTENSIONS:
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


@dataclass(frozen=True)
class Pairing:
    """A pairing rule with its argument (``replace`` = the ``[a, b]`` pair for replace/regex)."""

    rule: str = "same_name"
    replace: tuple[str, str] | None = None

    @classmethod
    def from_options(
        cls, rule: str, replace: Sequence[str] | None, option: str = "pair_replace"
    ) -> Pairing:
        """Validate the YAML options (``pairing`` + ``pair_replace``) -> :class:`Pairing`."""
        if rule not in PAIRING_RULES:
            raise ConfigError(f"unknown pairing rule {rule!r} (known: {', '.join(PAIRING_RULES)})")
        if rule in ("replace", "regex"):
            if replace is None or len(replace) != 2 or not all(isinstance(s, str) for s in replace):
                raise ConfigError(
                    f"pairing {rule!r} needs {option}: [from, to] (two strings), got {replace!r}"
                )
            if not replace[0]:
                raise ConfigError(f"{option}: the 'from' string must not be empty")
            if rule == "regex":
                try:
                    re.compile(replace[0])
                except re.error as exc:
                    raise ConfigError(f"{option}: invalid regular expression {replace[0]!r}: {exc}") from None
            return cls(rule, (replace[0], replace[1]))
        if replace is not None:
            raise ConfigError(f"{option} is only used with pairing 'replace' or 'regex', not {rule!r}")
        return cls(rule, None)

    def describe(self) -> str:
        if self.replace is None:
            return self.rule
        return f"{self.rule} {self.replace[0]!r} -> {self.replace[1]!r}"

    def target_file_name(self, name: str) -> str | None:
        """The target's file name for an input file name (replace/regex); None = no match."""
        assert self.replace is not None
        a, b = self.replace
        if self.rule == "replace":
            return name.replace(a, b) if a in name else None
        if re.search(a, name) is None:
            return None
        return re.sub(a, b, name)


def _key(path: Path) -> str:
    """Absolute, normalised path text (no file-system calls: cheap for 10^4-file sets)."""
    return os.path.abspath(path)


def _relative(paths: Sequence[Path], root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def pair_files(
    inputs: Sequence[Path],
    input_root: Path,
    targets: Sequence[Path],
    target_root: Path,
    pairing: Pairing,
    roles: tuple[str, str] = ("input", "target"),
) -> list[tuple[Path, Path]]:
    """Match every input to one target; returns ``[(input, target), ...]`` in input order.

    ``inputs``/``targets`` are files under ``input_root``/``target_root`` (as from
    :func:`~restore.data.image_io.list_images`, sorted). ``roles`` words the error messages
    (e.g. ``("image", "mask")``).
    """
    what_in, what_t = roles
    input_root, target_root = Path(input_root), Path(target_root)
    if pairing.rule == "sorted":
        if len(inputs) != len(targets):
            longer, root, what = (
                (inputs, input_root, what_in) if len(inputs) > len(targets) else (targets, target_root, what_t)
            )
            surplus = [f"'{r}'" for r in _relative(longer[min(len(inputs), len(targets)):], root)]
            raise DataError(
                f"pairing 'sorted' needs equal counts: {len(inputs)} {what_in} files in "
                f"'{input_root}' but {len(targets)} {what_t} files in '{target_root}'; "
                f"{len(surplus)} {what} file(s) left unpaired at the end of the sorted list: "
                f"{shorten_list(surplus, _SHOW)}"
            )
        pairs = list(zip(inputs, targets))
    else:
        by_key: dict[str, list[Path]] = {}
        for rel, path in zip(_relative(targets, target_root), targets):
            by_key.setdefault(strip_image_ext(rel), []).append(path)
        pairs_or_none: list[tuple[Path, Path | None, str]] = []
        for rel, path in zip(_relative(inputs, input_root), inputs):
            folder, _, name = rel.rpartition("/")
            if pairing.rule == "same_name":
                wanted: str | None = name
            else:
                wanted = pairing.target_file_name(name)
            if wanted is None:
                pairs_or_none.append((path, None, f"'{rel}' (name does not match)"))
                continue
            key = strip_image_ext(f"{folder}/{wanted}" if folder else wanted)
            found = by_key.get(key, [])
            if len(found) > 1:
                names = ", ".join(f"'{p.relative_to(target_root).as_posix()}'" for p in found)
                raise DataError(
                    f"ambiguous {what_t} for {what_in} '{path}': {names} in '{target_root}' "
                    "differ only by extension; remove one"
                )
            pairs_or_none.append((path, found[0] if found else None, f"'{rel}' (no '{key}.*')"))
        # Same folder for inputs and targets: a file that is some input's target is not an input.
        used = {_key(t) for i, t, _why in pairs_or_none if t is not None and _key(t) != _key(i)}
        kept = [(i, t, why) for i, t, why in pairs_or_none if _key(i) not in used]
        missing = [why for _, t, why in kept if t is None]
        if missing:
            raise DataError(
                f"{len(missing)} of {len(kept)} {what_in} files in '{input_root}' have no "
                f"{what_t} in '{target_root}' (pairing {pairing.describe()}): {shorten_list(missing, _SHOW)}"
            )
        pairs = [(i, t) for i, t, _ in kept if t is not None]
    for i, t in pairs:
        if _key(i) == _key(t):
            raise DataError(
                f"{what_in} '{i}' is paired with itself (pairing {pairing.describe()}); when "
                f"{what_in}s and {what_t}s share a folder use pairing 'replace' or 'regex'"
            )
    if not pairs:
        raise DataError(f"no {what_in} files left to pair in '{input_root}'")
    return pairs
