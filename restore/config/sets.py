"""Naming, removing and picking the evaluation sets of an option tree (before validation).

Why: a set's name is its identity everywhere downstream (``results/<name>/<set>/``,
``models/best_<set>_<metric>.pth``, the rows of every table), and an option file written for
one benchmark is often reused for another. So, on the loaded tree:

* ``datasets.val.NAME: null`` / ``datasets.test.NAME: null`` (in a child file or
  ``--set datasets.test.NAME=null``) removes that set; ``datasets.test: null`` removes them all.
  Removing through ``--set`` a set that is not there is an error (a typo would otherwise run
  every set).
* ``label: NEW`` inside a set renames it: the set is then known as ``NEW`` everywhere (the key
  ``label`` itself does not reach validation); ``label: null`` keeps the key as the name.
* ``--rename-set OLD=NEW`` does the same from the command line, in ``val`` and ``test`` alike.
* ``--test-set NAME`` (repeatable) keeps only those test sets, in the order given.

Every new name must be a plain folder name (:func:`restore.utils.files.plain_name_problem`);
errors are one line naming the key and the file or argument it came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from restore.config.loader import KeyPath, Origins, one_line
from restore.errors import ConfigError
from restore.utils.files import plain_name_problem

SECTIONS = ("val", "test")


def set_names(tree: dict) -> dict[str, list[str]]:
    """``{"val": [...], "test": [...]}``: the set names a tree holds now (as strings)."""
    datasets = tree.get("datasets")
    out: dict[str, list[str]] = {}
    for section in SECTIONS:
        sets = datasets.get(section) if isinstance(datasets, dict) else None
        out[section] = [str(k) for k in sets] if isinstance(sets, dict) else []
    return out


def _listing(names: dict[str, list[str]], sections: Sequence[str] = SECTIONS) -> str:
    parts = [f"{s}: {', '.join(one_line(n) for n in names[s]) or '(none)'}" for s in sections]
    return "; ".join(parts)


def _source(origin: Origins, path: KeyPath, default: str) -> str:
    for end in range(len(path), 0, -1):
        if path[:end] in origin:
            return origin[path[:end]]
    return default


def _check_new_name(name: Any, where: str) -> str:
    problem = plain_name_problem(name)
    if problem is not None:
        shown = one_line(repr(name if not isinstance(name, str) or len(name) <= 60 else name[:57] + "..."))
        raise ConfigError(f"{where} {shown} {problem} (a set name becomes a folder and file name)")
    return name


def _rekey(sets: dict, origin: Origins, prefix: KeyPath, renames: dict[Any, str]) -> dict:
    """``sets`` with keys renamed (order kept), and the origin map moved along."""
    moved: Origins = {}
    for path in list(origin):
        if len(path) > len(prefix) and path[: len(prefix)] == prefix:
            for old, new in renames.items():
                if path[len(prefix)] == str(old):
                    moved[prefix + (new,) + path[len(prefix) + 1:]] = origin.pop(path)
                    break
    origin.update(moved)
    return {renames.get(k, k): v for k, v in sets.items()}


def _rename(section: str, sets: dict, origin: Origins, renames: dict[Any, str], blame: dict[Any, str]) -> dict:
    """Apply ``renames`` to one section, refusing two sets under one name (case-insensitively:
    ``Kodak`` and ``kodak`` would share a folder on a case-insensitive disk)."""
    seen: dict[str, Any] = {}
    for key in sets:
        new = renames.get(key, str(key))
        first = seen.setdefault(new.casefold(), key)
        if first is key:
            continue
        renamed = [k for k in (key, first) if k in renames]
        # blame the command line before a file: it is the newer of the two names
        culprit = next((k for k in renamed if blame[k].startswith("--")), renamed[0] if renamed else first)
        if culprit in renames:  # two names the file itself gives are validation's to report
            before = renames.get(first, str(first))
            clash = (
                f"would both be named {one_line(new)!r}" if before == new
                else f"would be named {one_line(before)!r} and {one_line(new)!r}, which differ only in case "
                "(one folder on some disks)"
            )
            raise ConfigError(f"{blame[culprit]}: {section} sets {one_line(str(first))!r} and {one_line(str(key))!r} {clash}")
    return _rekey(sets, origin, ("datasets", section), renames)


def resolve_sets(
    tree: dict,
    origin: Origins,
    *,
    before_overrides: dict[str, list[str]] | None = None,
    renames: Sequence[str] = (),
    test_sets: Sequence[str] = (),
    default_source: str = "",
) -> tuple[dict, Origins]:
    """Remove null sets, apply ``label:``, ``--rename-set`` and ``--test-set`` (see module doc).

    ``before_overrides``: the set names before ``--set`` was applied, to refuse removing with
    ``--set`` a set that never existed. The tree is changed in place and returned.
    """
    datasets = tree.get("datasets")
    if not isinstance(datasets, dict):
        datasets = {}
    for section in SECTIONS:
        if section in datasets and datasets[section] is None:
            datasets[section] = {}  # ``datasets.test: null``: no sets of this kind
        sets = datasets.get(section)
        if not isinstance(sets, dict):
            continue  # validation names the wrong type
        for name in [k for k, v in sets.items() if v is None]:
            path = ("datasets", section, str(name))
            source = _source(origin, path, default_source)
            known = (before_overrides or {}).get(section)
            if source.startswith("--set") and known is not None and str(name) not in known:
                raise ConfigError(
                    f"{source}: there is no {section} set {one_line(str(name))!r} to remove "
                    f"({section} sets: {', '.join(one_line(n) for n in known) or 'none'})"
                )
            del sets[name]
            for stale in [p for p in origin if p[:3] == path]:
                del origin[stale]
        labels: dict[Any, str] = {}
        blame: dict[Any, str] = {}
        for name, spec in sets.items():
            if isinstance(spec, dict) and "label" in spec and spec["label"] is None:
                del spec["label"]  # ``label: null``: the key stays the name (a child undoing a base's label)
                origin.pop(("datasets", section, str(name), "label"), None)
            elif isinstance(spec, dict) and "label" in spec:
                label_path = ("datasets", section, str(name), "label")
                where = f"{_source(origin, label_path, default_source)}: key 'datasets.{section}.{one_line(str(name))}.label'"
                blame[name] = where
                labels[name] = _check_new_name(spec.pop("label"), where)
                origin.pop(label_path, None)
        if labels:
            datasets[section] = _rename(section, sets, origin, labels, blame)

    for item in renames:
        old, sep, new = item.partition("=")
        where = f"--rename-set {one_line(item)!r}"
        if not sep or not old:
            raise ConfigError(f"{where}: expected OLD=NEW, e.g. --rename-set kodak24=bsd300")
        _check_new_name(new, f"{where}: the new name")
        found = False
        for section in SECTIONS:
            sets = datasets.get(section)
            match = [k for k in sets if str(k) == old] if isinstance(sets, dict) else []
            if match:
                datasets[section] = _rename(section, sets, origin, {match[0]: new}, {match[0]: f"--rename-set {one_line(item)}"})
                found = True
        if not found:
            raise ConfigError(f"{where}: there is no set named {one_line(old)!r} ({_listing(set_names(tree))})")

    if test_sets:
        sets = datasets.get("test")
        sets = sets if isinstance(sets, dict) else {}
        by_name = {str(k): k for k in sets}
        for name in test_sets:
            if name not in by_name:
                raise ConfigError(
                    f"--test-set {one_line(name)!r}: there is no test set of that name "
                    f"(test sets: {', '.join(one_line(n) for n in by_name) or 'none'})"
                )
        chosen = list(dict.fromkeys(test_sets))
        datasets["test"] = {by_name[n]: sets[by_name[n]] for n in chosen}
        for path in [p for p in origin if p[:2] == ("datasets", "test") and len(p) > 2 and p[2] not in chosen]:
            del origin[path]
    return tree, origin
