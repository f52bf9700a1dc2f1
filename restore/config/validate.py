"""Validating a loaded option tree against the schema, at load time.

Every problem becomes one line that names the key, the file the key came from, and — for an
unknown key or name — the closest valid one. Component arguments are validated against the
registered constructor's signature and type hints (importing only that one component); a
component class may add checks across its arguments that types cannot express (a degradation
name and its options) as a static ``check_options(args)`` raising :class:`ConfigKeyError`.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from typing import Any

from restore import registry
from restore.config.loader import KeyPath, Origins, one_line
from restore.config.schema import INJECTED, Component, FolderName, Kind, OneOf
from restore.config.typecheck import describe, matches, strip_annotated, yaml_type_name
from restore.errors import ConfigError, ConfigKeyError
from restore.utils.suggest import did_you_mean

_MISSING = dataclasses.MISSING


class _Context:
    """Where we are: the origin map and the file to blame when a key has no origin."""

    def __init__(self, origin: Origins, default_source: str) -> None:
        self.origin = origin
        self.default_source = default_source

    def source(self, path: KeyPath) -> str:
        for end in range(len(path), 0, -1):
            if path[:end] in self.origin:
                return self.origin[path[:end]]
        return self.default_source

    def fail(self, path: KeyPath, message: str) -> typing.NoReturn:
        raise ConfigError(f"{self.source(path)}: {message}")


def _dotted(path: KeyPath) -> str:
    return one_line(".".join(path)) if path else "(top level)"


def _shown_name(value: Any) -> str:
    text = value if not isinstance(value, str) or len(value) <= 60 else value[:57] + "..."
    return one_line(repr(text))


def _check_folder_name(ctx: _Context, path: KeyPath, value: Any, rule: FolderName) -> None:
    problem = rule.problem(value)
    if problem is not None:
        ctx.fail(path, f"key {_dotted(path)!r} {problem}, got {_shown_name(value)} (the {rule.what} becomes a folder name)")


def _set_keys(ctx: _Context, path: KeyPath, data: dict, rule: FolderName) -> dict:
    """The keys of a mapping whose keys become folder names: plain, distinct even ignoring case."""
    out: dict[str, Any] = {}
    folded: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            ctx.fail(path, f"{rule.what} {key!r} under {_dotted(path)!r} must be a string (quote it in YAML)")
        name = str(key)
        problem = rule.problem(name)
        if problem is not None:
            ctx.fail(
                path + (name,),
                f"{rule.what} {_shown_name(name)} under {_dotted(path)!r} {problem} (it becomes a folder name)",
            )
        other = folded.setdefault(name.casefold(), name)
        if other != name:
            ctx.fail(
                path + (name,),
                f"{rule.what}s {_shown_name(other)} and {_shown_name(name)} under {_dotted(path)!r} differ only in case "
                "(they would share a folder on some disks)",
            )
        out[name] = value
    return out


def _check_keys(ctx: _Context, path: KeyPath, data: dict, valid: list[str], what: str) -> None:
    for key in data:
        if not isinstance(key, str):
            ctx.fail(path, f"key {key!r} under {_dotted(path)!r} must be a string")
        if key not in valid:
            listing = ", ".join(sorted(valid))
            ctx.fail(
                path + (key,),
                f"unknown key {_dotted(path + (key,))!r}{did_you_mean(key, valid)}; valid keys for {what}: {listing}",
            )


def _type_error(ctx: _Context, path: KeyPath, value: Any, annotation: Any) -> typing.NoReturn:
    shown = repr(value) if not isinstance(value, (dict, list)) or len(repr(value)) < 60 else yaml_type_name(value)
    ctx.fail(path, f"key {_dotted(path)!r} must be {describe(annotation)}, got {yaml_type_name(value)} {shown}")


def _convert(ctx: _Context, path: KeyPath, value: Any, annotation: Any, shown: Any = None) -> Any:
    """Validate ``value`` against ``annotation`` and build dataclasses/components from it.

    ``shown`` is the annotation named in a type error (the whole ``X | None``, not just ``X``).
    """
    shown = annotation if shown is None else shown
    base, meta = strip_annotated(annotation)
    origin = typing.get_origin(base)

    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(base)
        if value is None:
            if type(None) in options:
                return None
            _type_error(ctx, path, value, shown)
        structured = [a for a in options if a is not type(None)]
        if len(structured) == 1:
            return _convert(ctx, path, value, structured[0], shown)
        if not matches(value, base):
            _type_error(ctx, path, value, shown)
        return value

    kind = next((m.kind for m in meta if isinstance(m, Kind)), None)
    if base is Component and kind:
        return _component(ctx, path, value, kind)
    one_of = next((m for m in meta if isinstance(m, OneOf)), None)
    if one_of is not None:
        if not isinstance(value, str):
            _type_error(ctx, path, value, shown)
        choices = list(one_of.choices())
        if value not in choices:
            ctx.fail(
                path,
                f"key {_dotted(path)!r}: unknown {one_of.what} {value!r}{did_you_mean(value, choices)} "
                f"(known: {', '.join(choices)})",
            )
        return value
    if dataclasses.is_dataclass(base):
        return validate_section(ctx, path, value, base)
    if origin is list:
        if not isinstance(value, list):
            _type_error(ctx, path, value, shown)
        (item,) = typing.get_args(base) or (Any,)
        return [_convert(ctx, path + (str(i),), v, item) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            _type_error(ctx, path, value, shown)
        key_type, item = typing.get_args(base) or (Any, Any)
        key_rule = next((m for m in strip_annotated(key_type)[1] if isinstance(m, FolderName)), None)
        if key_rule is not None:
            value = _set_keys(ctx, path, value, key_rule)
        return {str(k): _convert(ctx, path + (str(k),), v, item) for k, v in value.items()}
    if not matches(value, base):
        _type_error(ctx, path, value, shown)
    folder_rule = next((m for m in meta if isinstance(m, FolderName)), None)
    if folder_rule is not None:
        _check_folder_name(ctx, path, value, folder_rule)
    if base is float and isinstance(value, int):
        return float(value)
    return value


def component_parameters(kind: str, name: str) -> tuple[dict[str, inspect.Parameter], dict[str, Any], bool]:
    """Configurable parameters of a registered component, their type hints, and ``**kwargs``."""
    target = registry.get(kind, name)
    func = target.__init__ if inspect.isclass(target) else target
    signature = inspect.signature(target)
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception:  # hints that do not resolve (third-party forward refs): check names only
        hints = {}
    params: dict[str, inspect.Parameter] = {}
    var_kw = False
    for p in signature.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in INJECTED[kind]:
            params[p.name] = p
    return params, hints, var_kw


def _component(
    ctx: _Context, path: KeyPath, value: Any, kind: str, reserved: dict[str, Any] | None = None
) -> Component:
    """``{type: name, **args}`` -> Component, args checked against the constructor."""
    if isinstance(value, str):
        value = {"type": value}
    if not isinstance(value, dict):
        ctx.fail(path, f"key {_dotted(path)!r} must be a mapping with a 'type' ({kind} name), got {yaml_type_name(value)}")
    name = value.get("type")
    if name is None:
        ctx.fail(path, f"missing required key {_dotted(path + ('type',))!r} (the {kind} name; known: {', '.join(registry.names(kind))})")
    if not isinstance(name, str) or name not in registry.names(kind):
        ctx.fail(path + ("type",), f"key {_dotted(path + ('type',))!r}: {registry.unknown_name_message(kind, str(name))}")
    params, hints, var_kw = component_parameters(kind, name)
    args = {k: v for k, v in value.items() if k != "type" and k not in (reserved or {})}
    for key in sorted(INJECTED[kind] & set(args)):
        ctx.fail(path + (key,), f"key {_dotted(path + (key,))!r} is set by the engine, not by options")
    if not var_kw:
        valid = list(dict.fromkeys(["type", *params, *(reserved or {})]))
        _check_keys(ctx, path, args, valid, f"{kind} {name!r}")
    checked: dict[str, Any] = {}
    for pname, param in params.items():
        if pname in args:
            checked[pname] = _convert(ctx, path + (pname,), args[pname], hints.get(pname, Any))
        elif param.default is inspect.Parameter.empty:
            ctx.fail(path, f"missing required key {_dotted(path + (pname,))!r} for {kind} {name!r}")
    checked.update({k: v for k, v in args.items() if k not in params})  # **kwargs pass-through
    _check_values(ctx, path, kind, name, checked)
    return Component(kind, name, checked, where=f"{ctx.source(path)}: {_dotted(path)}")


def _check_values(ctx: _Context, path: KeyPath, kind: str, name: str, args: dict[str, Any]) -> None:
    """A component's own value checks, at load time: its optional ``check_options(args)`` (a
    static method) refuses one key by raising :class:`ConfigKeyError` (``key`` relative to the
    component's section), so the error names the whole key and its file."""
    check = getattr(registry.get(kind, name), "check_options", None)
    if not callable(check):
        return
    try:
        check(dict(args))
    except ConfigKeyError as exc:
        where = path + tuple(exc.key.split(".")) if exc.key else path
        ctx.fail(where, f"key {_dotted(where)!r} {exc.problem}")


def _expand_pair(cls: type, value: dict) -> dict:
    """``{K: V}`` -> ``{key field: K, value field: V}`` for a section that declares
    ``__pair__ = (key field, value field)`` (a transfer rule written ``{encoders: freeze}``)."""
    pair = getattr(cls, "__pair__", None)
    if pair is None or len(value) != 1:
        return value
    ((key, item),) = value.items()
    if key in {f.name for f in dataclasses.fields(cls)}:
        return value
    return {pair[0]: key, pair[1]: item}


def validate_section(ctx: _Context, path: KeyPath, value: Any, cls: type) -> Any:
    """A mapping -> an instance of the section dataclass ``cls``.

    The section's own cross-key check (its ``__post_init__``) may refuse one key by raising
    :class:`ConfigKeyError`; the message then names that key under ``path``.
    """
    if not isinstance(value, dict):
        ctx.fail(path, f"key {_dotted(path)!r} must be a mapping, got {yaml_type_name(value)}")
    value = _expand_pair(cls, value)
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    own = {f.name for f in fields}
    flat = getattr(cls, "__component__", None)
    kwargs: dict[str, Any] = {}
    if flat:
        comp_field, kind = flat
        own.discard(comp_field)
        reserved = {k: value[k] for k in own if k in value}
        kwargs[comp_field] = _component(ctx, path, value, kind, reserved=dict.fromkeys(own))
        value = reserved
    else:
        _check_keys(ctx, path, value, [f.name for f in fields], f"section {_dotted(path)!r}")
    for f in fields:
        if flat and f.name == flat[0]:
            continue
        if f.name in value:
            kwargs[f.name] = _convert(ctx, path + (f.name,), value[f.name], hints[f.name])
        elif f.default is _MISSING and f.default_factory is _MISSING:
            ctx.fail(path, f"missing required key {_dotted(path + (f.name,))!r}")
    try:
        return cls(**kwargs)
    except ConfigKeyError as exc:  # the section's __post_init__ refusing one of its keys
        where = path + tuple(exc.key.split(".")) if exc.key else path
        ctx.fail(where, f"key {_dotted(where)!r} {exc.problem}")
    except ConfigError as exc:  # a check across keys in the section's __post_init__
        ctx.fail(path, str(exc))


def validate(tree: dict, origin: Origins, cls: type, default_source: str) -> Any:
    """Validate a whole option tree (``cls`` = :class:`restore.config.schema.Options`)."""
    return validate_section(_Context(origin, default_source), (), tree, cls)
