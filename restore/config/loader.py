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
* ``--set a.b.c=VALUE`` parses VALUE as YAML (``--set train.lr=1e-4``, ``--set x=[1,2]``);
  ``--set a.b.type=NAME`` switching to another component replaces ``a.b`` whole, as above.
* YAML is read strictly and within bounds (:mod:`restore.config.yaml_text`): duplicate keys,
  control characters, deep nesting and alias bombs are one-line errors.
* A file must be a regular UTF-8 file of at most 2 MiB; ``base:`` chains at most 32 deep.
"""

from __future__ import annotations

import copy
import stat
from pathlib import Path
from typing import Any

from restore.config.yaml_text import MAX_DEPTH, nesting_depth, parse_yaml_text
from restore.errors import ConfigError
from restore.utils.files import os_error_reason

__all__ = ["apply_overrides", "key_paths", "merge", "parse_yaml_text", "read_option_file"]

KeyPath = tuple[str, ...]
Origins = dict[KeyPath, str]


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


MAX_FILE_BYTES = 2 * 1024 * 1024  # real option files are a few KiB; a bigger one is the wrong file
MAX_BASE_DEPTH = 32  # ``base:`` chains deeper than this are a mistake (and would exhaust recursion)


def _read_text(path: Path, stack: tuple[Path, ...]) -> str:
    """The text of one option file, or a one-line ConfigError saying why it cannot be read."""
    shown = one_line(str(path))
    what = f"{one_line(str(stack[-1]))}: base file '{shown}'" if stack else f"option file '{shown}'"
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise ConfigError(f"{what} not found") from None
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read it: {os_error_reason(exc)}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{what} is a folder, not a YAML file")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{what} is not a regular file (a pipe, socket or device); save the options to a file")
    if info.st_size > MAX_FILE_BYTES:
        raise ConfigError(f"{what} is {info.st_size / 2**20:.1f} MiB; option files are at most 2 MiB (is it the right file?)")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read it: {os_error_reason(exc)}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{what} is over 2 MiB; option files are at most 2 MiB (is it the right file?)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{shown}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save option files as UTF-8"
        ) from None


def read_option_file(path: str | Path, _stack: tuple[Path, ...] = ()) -> tuple[dict, Origins]:
    """Read one option file and everything it inherits through ``base:``."""
    path = Path(path)
    text = _read_text(path, _stack)
    resolved = path.resolve()
    shown = one_line(str(path))  # every message and origin names the file on one line
    if resolved in _stack:
        chain = " -> ".join(one_line(str(p)) for p in (*_stack, resolved))
        raise ConfigError(f"{shown}: 'base' files form a cycle: {chain}")
    if len(_stack) >= MAX_BASE_DEPTH:
        raise ConfigError(f"{one_line(str(_stack[-1]))}: 'base' files chain more than {MAX_BASE_DEPTH} levels deep (at '{shown}')")
    data = parse_yaml_text(text, shown)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{shown}: the top level of an option file must be a mapping of keys, got a {type(data).__name__}")

    bases = data.pop("base", None)
    if bases is None:
        bases = []
    elif isinstance(bases, str):
        bases = [bases]
    elif not (isinstance(bases, list) and all(isinstance(b, str) for b in bases)):
        raise ConfigError(f"{shown}: key 'base' must be a file name or a list of file names")

    tree: dict = {}
    origin: Origins = {}
    for base in bases:
        if not base.strip():
            raise ConfigError(f"{shown}: key 'base' names an empty file name")
        base_tree, base_origin = read_option_file(path.parent / base, (*_stack, resolved))
        tree, origin = merge(tree, origin, base_tree, base_origin)
    own_origin = {p: shown for p in key_paths(data)}
    return merge(tree, origin, data, own_origin)


def one_line(text: str) -> str:
    """``text`` with control characters escaped (``\\n``), so an error quoting it stays one line."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def _shown(item: str, limit: int = 80) -> str:
    """An override as quoted in an error: escaped, whole when short, cut with '...' when long."""
    item = one_line(item)
    return item if len(item) <= limit else item[: limit - 3] + "..."


def apply_overrides(tree: dict, origin: Origins, overrides: list[str] | tuple[str, ...]) -> tuple[dict, Origins]:
    """Apply ``a.b.c=VALUE`` overrides (VALUE parsed as YAML) on top of a loaded tree.

    Missing mappings on the way are created (their origin is the whole override, so an error
    about them names ``--set a.b.c=VALUE``); a mapping VALUE merges deeply into a mapping like a
    base file would; a numeric part indexes a list that is already there
    (``--set train.losses.0.weight=0.5``). Setting ``type`` to a different component name
    replaces its whole mapping, as a child file that switches ``type`` does
    (``--set network.type=uformer_t`` drops the old network's arguments).
    """
    tree, origin = copy.deepcopy(tree), dict(origin)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        parts = key.split(".")
        if not sep or not key or any(not part.strip() for part in parts):
            raise ConfigError(f"--set '{_shown(item)}': expected KEY.PATH=VALUE, e.g. --set train.total_iter=1000")
        label = f"--set {_shown(key)}"
        whole = f"--set {_shown(item)}"
        value = parse_yaml_text(raw, whole)
        if len(parts) + nesting_depth(value) > MAX_DEPTH:
            raise ConfigError(f"{whole}: nested more than {MAX_DEPTH} levels deep")

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
                    origin[tuple(parts[: depth + 1])] = whole
            if not last:
                node = node[slot]
                continue
            old = node[slot] if isinstance(node, list) else node.get(slot)
            if isinstance(old, dict) and isinstance(value, dict) and not _switches_type(old, value):
                node[slot], _ = merge(old, {}, value, {})
            elif slot == "type" and depth > 0 and isinstance(node, dict) and old is not None and old != value:
                # a different component: its old arguments mean nothing to the new one
                drop_origins(tuple(parts[:-1]))
                node.clear()
                node["type"] = value
                origin[tuple(parts[:-1])] = whole
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
            f"--set '{_shown(item)}': '{'.'.join(path)}' must index the list of {len(items)} items there (0..{len(items) - 1})"
        ) from None
    return index
