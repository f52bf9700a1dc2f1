"""Strict, bounded YAML reading for option files and ``--set`` values.

Why a module of its own: whatever text a user hands us (a file saved with a stray control
character, a ``--set`` value pasted from elsewhere, a generated file nested hundreds of levels
deep, a YAML "billion laughs" of aliases) must end as one :class:`ConfigError` line naming where
it came from, never as a PyYAML ``ReaderError`` or a ``RecursionError`` traceback, and never as
minutes spent walking an exponentially expanded tree.

Rules on top of ``yaml.safe_load``:
* duplicate keys in one mapping are an error (YAML would silently keep the last);
* a key must be hashable (a list or mapping as a key is an error);
* nesting is at most :data:`MAX_DEPTH` levels, counted through aliases too;
* a document expands to at most :data:`MAX_NODES` values (aliases counted every time they are
  used), and an alias may not contain itself;
* ``1e-4`` (an exponent without a dot) reads as a float, as it always means one in options.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from restore.errors import ConfigError

MAX_DEPTH = 64  # real option files nest 6-8 levels; this leaves room and keeps recursion safe
MAX_NODES = 200_000  # values in the expanded document (aliases counted each time they are used)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate or unhashable keys and bounds the nesting depth."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        # The composer recurses once per level: stop long before Python's recursion limit.
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH + 1:  # + 1: the scalar at the bottom is a node too
                raise _too_deep(self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Limit(yaml.MarkedYAMLError):
    """A bound of this module was exceeded at a known place in the text."""


def _too_deep(mark: Any) -> _Limit:
    return _Limit(problem=f"nested more than {MAX_DEPTH} levels deep", problem_mark=mark)


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise _Limit(problem="a list or mapping cannot be a key", problem_mark=key_node.start_mark) from None
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


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_expanded(root: yaml.Node) -> None:
    """Refuse alias cycles, and documents whose expansion is too deep or too large.

    Iterative (no recursion) over the node graph, each shared node measured once, so a
    hostile document costs time linear in its text, not in its expansion.
    """
    done: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, expanded depth)
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            children = _children(node)
            size = 1 + sum(done[id(c)][0] for c in children)
            collection = isinstance(node, yaml.CollectionNode)
            depth = int(collection) + max((done[id(c)][1] for c in children), default=0)
            active.discard(key)
            done[key] = (size, depth)
            if depth > MAX_DEPTH:
                raise _too_deep(node.start_mark)
            if size > MAX_NODES:
                raise _Limit(problem=f"expands to more than {MAX_NODES} values (through aliases)", problem_mark=node.start_mark)
            continue
        if key in done:
            continue
        if key in active:
            raise _Limit(problem="an alias refers to the value that contains it", problem_mark=node.start_mark)
        active.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in done)


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based (line, column) of character ``index`` in ``text``."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def parse_yaml_text(text: str, name: str) -> Any:
    """Parse option text strictly; every problem becomes one ConfigError line naming ``name``.

    ``name`` is the file (``options/x.yml``) or the override (``--set seed=...``) the text
    came from; locations are given as ``name:line:column``.
    """
    try:
        loader = _StrictLoader(text)  # the reader refuses control characters right here
    except yaml.reader.ReaderError as exc:
        line, column = _position(text, exc.position)
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        raise ConfigError(
            f"{name}:{line}:{column}: invalid YAML: control character U+{char:04X} is not allowed in option text"
        ) from None
    loader.name = name
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expanded(node)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        raise ConfigError(f"{where}: invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(f"{name}: invalid YAML: {reason}") from None
    except RecursionError:  # a last guard: the bounds above should make this unreachable
        raise ConfigError(f"{name}: invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()


def nesting_depth(value: Any) -> int:
    """Levels of lists/mappings in a parsed value (0 for a scalar); bounded by the parse limits."""
    if isinstance(value, dict):
        return 1 + max((nesting_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((nesting_depth(v) for v in value), default=0)
    return 0
