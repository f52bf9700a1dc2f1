"""Reading option files: YAML, ``base:`` inheritance and ``--set`` overrides.

The result is a plain nested dict plus an *origin* map that records, for every key path, the
file (or ``--set`` argument) that last gave it a value. Validation uses the origin map so an
error names the file a wrong key actually came from, not just the top-level file.

Rules:
* ``base:`` is a file or a list of files, relative to the file that names them, merged in
  order; the child's own keys are merged last. Mappings merge deeply, the later side winning;
  any other value (lists included) is replaced whole. A mapping that names a different
  component ``type`` than the one it overrides replaces it whole too: a child switching a
  dataset from ``synthetic_noise`` to ``noisy_folder`` must not inherit ``noise``.
* ``--set a.b.c=VALUE`` parses VALUE as YAML (``--set train.lr=1e-4``, ``--set x=[1,2]``).
* Duplicate keys in one mapping are an error (YAML would silently keep the last).
* Only ``yaml.safe_load`` semantics: no tags, no code, no eval.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from restore.errors import ConfigError

KeyPath = tuple[str, ...]
Origins = dict[KeyPath, str]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys within one mapping."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(
                f"{loader.name}:{key_node.start_mark.line + 1}: duplicate key {key!r} "
                f"(first given on line {seen[key] + 1})"
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# YAML 1.1 reads ``1e-4`` (no dot) as a string; in option files it is always meant as a float.
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml_text(text: str, name: str) -> Any:
    """Parse YAML text strictly; syntax errors become one-line ConfigErrors naming ``name``."""
    loader = _StrictLoader(text)
    loader.name = name
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        raise ConfigError(f"{where}: invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()


def key_paths(tree: dict, prefix: KeyPath = ()) -> list[KeyPath]:
    """Every key path in a nested dict, mappings included."""
    out: list[KeyPath] = []
    for key, value in tree.items():
        path = prefix + (str(key),)
        out.append(path)
        if isinstance(value, dict):
            out.extend(key_paths(value, path))
    return out


def _switches_type(old: dict, new: dict) -> bool:
    return "type" in old and "type" in new and old["type"] != new["type"]


def merge(base: dict, base_origin: Origins, top: dict, top_origin: Origins) -> tuple[dict, Origins]:
    """Deep-merge ``top`` over ``base`` (mappings deep, everything else replaced)."""
    merged = copy.deepcopy(base)
    origin = dict(base_origin)

    def walk(dst: dict, src: dict, prefix: KeyPath) -> None:
        for key, value in src.items():
            path = prefix + (str(key),)
            old = dst.get(key)
            if isinstance(value, dict) and isinstance(old, dict) and not _switches_type(old, value):
                origin[path] = top_origin.get(path, origin.get(path, ""))
                walk(dst[key], value, path)
                continue
            for stale in [p for p in origin if p[: len(path)] == path]:
                del origin[stale]
            dst[key] = copy.deepcopy(value)
            for p, src_name in top_origin.items():
                if p[: len(path)] == path:
                    origin[p] = src_name

    walk(merged, top, ())
    return merged, origin


def read_option_file(path: str | Path, _stack: tuple[Path, ...] = ()) -> tuple[dict, Origins]:
    """Read one option file and everything it inherits through ``base:``."""
    path = Path(path)
    if not path.is_file():
        if _stack:
            raise ConfigError(f"{_stack[-1]}: base file '{path}' not found")
        raise ConfigError(f"option file '{path}' not found")
    resolved = path.resolve()
    if resolved in _stack:
        chain = " -> ".join(str(p) for p in (*_stack, resolved))
        raise ConfigError(f"{path}: 'base' files form a cycle: {chain}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read option file '{path}': {exc}") from None
    data = parse_yaml_text(text, str(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level of an option file must be a mapping of keys")

    bases = data.pop("base", None)
    if bases is None:
        bases = []
    elif isinstance(bases, str):
        bases = [bases]
    elif not (isinstance(bases, list) and all(isinstance(b, str) for b in bases)):
        raise ConfigError(f"{path}: key 'base' must be a file name or a list of file names")

    tree: dict = {}
    origin: Origins = {}
    for base in bases:
        base_tree, base_origin = read_option_file(path.parent / base, (*_stack, resolved))
        tree, origin = merge(tree, origin, base_tree, base_origin)
    own_origin = {p: str(path) for p in key_paths(data)}
    return merge(tree, origin, data, own_origin)


def apply_overrides(tree: dict, origin: Origins, overrides: list[str] | tuple[str, ...]) -> tuple[dict, Origins]:
    """Apply ``a.b.c=VALUE`` overrides (VALUE parsed as YAML) on top of a loaded tree.

    Missing mappings on the way are created; a mapping VALUE merges deeply into a mapping like a
    base file would; a numeric part indexes a list that is already there
    (``--set train.losses.0.weight=0.5``).
    """
    tree, origin = copy.deepcopy(tree), dict(origin)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        parts = key.split(".")
        if not sep or not key or any(not part for part in parts):
            raise ConfigError(f"--set {item!r}: expected KEY.PATH=VALUE, e.g. --set train.total_iter=1000")
        value = parse_yaml_text(raw, f"--set {key}")
        label = f"--set {key}"

        def drop_origins(prefix: KeyPath) -> None:
            for stale in [p for p in origin if p[: len(prefix)] == prefix]:
                del origin[stale]

        node: Any = tree
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, list):
                slot: Any = _list_index(node, part, parts[: depth + 1], item)
            else:
                slot = part
                if not last and not isinstance(node.get(part), (dict, list)):
                    drop_origins(tuple(parts[: depth + 1]))
                    node[part] = {}
            if not last:
                node = node[slot]
                continue
            old = node[slot] if isinstance(node, list) else node.get(slot)
            if isinstance(old, dict) and isinstance(value, dict):
                node[slot], _ = merge(old, {}, value, {})
            else:
                drop_origins(tuple(parts))
                node[slot] = value
        origin[tuple(parts)] = label
        if isinstance(value, dict):
            origin.update({tuple(parts) + p: label for p in key_paths(value)})
    return tree, origin


def _list_index(items: list, part: str, path: list[str], item: str) -> int:
    """``part`` as an index into ``items`` (an override that walks into a list)."""
    try:
        index = int(part)
        items[index]
    except (ValueError, IndexError):
        raise ConfigError(
            f"--set {item!r}: '{'.'.join(path)}' must index the list of {len(items)} items there (0..{len(items) - 1})"
        ) from None
    return index
