"""Checking YAML values against Python type hints.

The option schema is written as type hints (on the dataclasses of :mod:`restore.config.schema`
and on the constructors of registered components), so one small checker validates both. YAML
gives us only None, bool, int, float, str, list and dict; everything here is about those.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union


def _args(annotation: Any) -> tuple[Any, ...]:
    return typing.get_args(annotation)


def _is_union(origin: Any) -> bool:
    return origin is Union or origin is types.UnionType


def strip_annotated(annotation: Any) -> tuple[Any, tuple[Any, ...]]:
    """``Annotated[T, m1, m2]`` -> ``(T, (m1, m2))``; anything else -> ``(annotation, ())``."""
    if typing.get_origin(annotation) is typing.Annotated:
        base, *meta = _args(annotation)
        return base, tuple(meta)
    return annotation, ()


def matches(value: Any, annotation: Any) -> bool:
    """Whether a YAML value fits ``annotation``. Unknown (non-YAML) classes are accepted."""
    annotation, _ = strip_annotated(annotation)
    if annotation is Any or annotation is typing.Any or annotation is object:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin = typing.get_origin(annotation)
    if _is_union(origin):
        return any(matches(value, a) for a in _args(annotation))
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in _args(annotation))
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str or annotation is Path:
        return isinstance(value, str)
    if origin in (list, list, typing.Sequence) or annotation in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        (item,) = _args(annotation) or (Any,)
        return all(matches(v, item) for v in value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False
        args = _args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return all(matches(v, args[0]) for v in value)
        return len(args) == len(value) and all(matches(v, a) for v, a in zip(value, args))
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            return False
        key_t, val_t = _args(annotation) or (Any, Any)
        return all(matches(k, key_t) and matches(v, val_t) for k, v in value.items())
    if isinstance(annotation, type):
        # A class YAML cannot express (a Tensor, a module): let the constructor judge.
        return isinstance(value, annotation) or annotation.__module__ not in ("builtins",)
    return True


def describe(annotation: Any) -> str:
    """Human wording of a type hint, for error messages (``"int or null"``)."""
    annotation, _ = strip_annotated(annotation)
    if annotation is Any:
        return "any value"
    if annotation is None or annotation is type(None):
        return "null"
    origin = typing.get_origin(annotation)
    if _is_union(origin):
        return " or ".join(dict.fromkeys(describe(a) for a in _args(annotation)))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in _args(annotation))
    if origin in (list, list, typing.Sequence):
        (item,) = _args(annotation) or (Any,)
        return f"a list of {describe(item)}"
    if origin is tuple:
        args = _args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {describe(args[0])}"
        return f"a list of {len(args)} ({', '.join(describe(a) for a in args)})"
    if origin is dict:
        return "a mapping"
    if annotation is Path:
        return "str"
    if dataclasses.is_dataclass(annotation):  # a section: its keys (a flat component's 'type' first)
        flat = getattr(annotation, "__component__", None)
        keys = [f.name for f in dataclasses.fields(annotation) if f.init and not (flat and f.name == flat[0])]
        return "{" + ", ".join((["type", "..."] if flat else []) + keys) + "}"
    return getattr(annotation, "__name__", str(annotation))


def yaml_type_name(value: Any) -> str:
    """The YAML-ish name of a value's type, for error messages."""
    if value is None:
        return "null"
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "mapping"}.get(
        type(value), type(value).__name__
    )
