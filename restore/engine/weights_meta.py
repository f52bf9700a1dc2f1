"""What a weights file says about the run that wrote it, and checking it against an option file.

Why: a weights file that loads strictly into a network built with different options (the
quickstart's ``network.residual: true`` scored with a test file that lacks it) gives wrong
numbers without any warning. Every weights file restore writes (``final.pth``, ``best_*.pth``,
checkpoints) therefore carries a ``meta`` entry::

    {"format": "restore-weights-meta-v1", "network": {type: ..., every argument, defaults
     filled in}, "task": "denoise", "restore": "0.1.0", "run": "<name>", "iteration": N}

made of plain dicts, lists, strings and numbers, so ``torch.load(weights_only=True)`` reads it.
:func:`match_network` compares it with an option file's ``network`` before anything runs.
Files without it (official releases, files from older versions) load as before.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from restore import registry
from restore.config import Component, Options
from restore.errors import ConfigError
from restore.utils.shorten import shorten_list

META_KEY = "meta"
META_FORMAT = "restore-weights-meta-v1"
_SHOWN = 6  # differing keys named in one error line


def plain(value: Any) -> Any:
    """``value`` as the plain types a weights-only load accepts (tuples become lists; anything
    else that is not a number, string, bool or None becomes its ``repr``)."""
    if isinstance(value, Component):
        return resolved_component(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def resolved_component(component: Component) -> dict[str, Any]:
    """``{"type": ..., **every constructor argument}``: the given ones, and the defaults of the
    rest, so that two sections that build the same module compare equal however they were
    written (``residual: false`` and no ``residual`` at all)."""
    from restore.config.validate import component_parameters

    out: dict[str, Any] = {"type": component.type}
    try:
        params, _, _ = component_parameters(component.kind, component.type)
    except Exception:  # an unknown type cannot be resolved further; keep what was written
        params = {}
    for name, param in params.items():
        if name in component.args:
            out[name] = plain(component.args[name])
        elif param.default is not inspect.Parameter.empty:
            out[name] = plain(param.default)
    for name, value in component.args.items():  # **kwargs pass-through
        if name not in out:
            out[name] = plain(value)
    return out


def weights_meta(options: Options, iteration: int | None = None) -> dict[str, Any]:
    """The ``meta`` entry for a weights file written by the run of ``options``."""
    from restore import __version__

    meta: dict[str, Any] = {
        "format": META_FORMAT,
        "network": resolved_component(options.network) if options.network is not None else None,
        "task": options.task,
        "restore": __version__,
        "run": options.name,
    }
    if iteration is not None:
        meta["iteration"] = int(iteration)
    return meta


def read_weights_meta(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``meta`` entry of the weights file ``path``, or None when it has none.

    Memory-mapped, so reading it costs little even for a large file. A file that cannot be
    read at all returns None here: the weights loader reports it properly, in one line.
    """
    import torch

    path = Path(path)
    if path.suffix == ".safetensors" or not path.is_file():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError:  # the legacy (non-zip) format cannot be memory-mapped
                obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None
    meta = obj.get(META_KEY) if isinstance(obj, Mapping) else None
    if isinstance(meta, Mapping) and isinstance(meta.get("network"), Mapping):
        return dict(meta)
    return None


def _flatten(tree: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}.{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, dotted))
        else:
            out[dotted] = value
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (type(a) is type(b) and a == b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def same_weights(a: Any, b: Any) -> bool:
    """Whether networks of types ``a`` and ``b`` share their weights files: one declares
    ``weights_of = <the other>`` (a slimmable version of a network holds its very state_dict)."""
    if a == b:
        return True
    for one, other in ((a, b), (b, a)):
        try:
            if isinstance(one, str) and getattr(registry.get("arch", one), "weights_of", None) == other:
                return True
        except ConfigError:
            pass
    return False


def network_differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``"network.KEY (weights: X, option file: Y)"`` for each key whose value differs.

    A key the weights do not record (written by an older version, before the argument
    existed) is not compared. Under a ``type`` that differs, only the type is named.
    """
    old, new = _flatten(stored, "network"), _flatten(current, "network")
    retyped = [k[: -len(".type")] for k in old if k.endswith(".type") and k in new and not _same(old[k], new[k])]
    lines = []
    for key in sorted(set(old) | set(new), key=lambda k: (k.count("."), k)):
        if key not in old or any(key.startswith(p + ".") and key != p + ".type" for p in retyped):
            continue
        if key not in new:
            lines.append(f"{key} (weights: {old[key]!r}, option file: absent)")
        elif not _same(old[key], new[key]):
            lines.append(f"{key} (weights: {old[key]!r}, option file: {new[key]!r})")
    return lines


def with_network(options: Options, network: Mapping[str, Any], where: str) -> Options:
    """``options`` with its ``network`` section replaced by ``network`` (validated like an
    option file; ``where`` names it in errors)."""
    from restore.config.validate import validate

    tree = options.to_dict()
    tree["network"] = dict(network)
    out = validate(tree, {}, Options, default_source=where)
    out.source = options.source
    return out


def match_network(
    options: Options,
    weights: str | os.PathLike[str],
    *,
    network_from_weights: bool = False,
    say: Callable[[str], None] | None = None,
) -> Options:
    """Check the network ``weights`` were trained with against ``options.network``.

    No metadata (an official release file): ``options`` unchanged. Same network: unchanged.
    A difference: a one-line :class:`ConfigError` naming the differing keys, or, with
    ``network_from_weights``, ``options`` with the stored network (``say`` tells which).
    An option file without a ``network`` takes the stored one only with ``network_from_weights``.
    """
    source = options.source or options.name
    if not Path(weights).is_file() and options.network is None:
        raise ConfigError(f"{source}: missing required key 'network'")
    meta = read_weights_meta(weights)
    if meta is None:
        if options.network is None:
            raise ConfigError(
                f"{source}: missing required key 'network' ('{weights}' carries no network description to take)"
            )
        return options
    stored = meta["network"]
    run = f" (run {meta.get('run')!r})" if meta.get("run") else ""
    if options.network is None:
        if not network_from_weights:
            raise ConfigError(
                f"{source}: missing required key 'network'; '{weights}'{run} records the network it was trained "
                "with: add --network-from-weights to use it"
            )
        if say is not None:
            say(f"restore: note: using the network stored in '{weights}'{run}: type {stored.get('type')!r}")
        return with_network(options, stored, f"{weights} (stored network)")
    current = resolved_component(options.network)
    if same_weights(stored.get("type"), current["type"]):  # wdnet weights in wdnet_slim, and back
        stored = {**stored, "type": current["type"]}
    diffs = network_differences(stored, current)
    if not diffs:
        return options
    if not network_from_weights:
        raise ConfigError(
            f"{source}: the network differs from the one '{weights}'{run} was trained with in {shorten_list(diffs, _SHOWN, '; ')}; "
            "fix the option file, or pass --network-from-weights to use the stored network"
        )
    if say is not None:
        say(f"restore: note: using the network stored in '{weights}'{run}, not the option file's "
            f"(they differ in {shorten_list(diffs, _SHOWN, '; ')})")
    return with_network(options, stored, f"{weights} (stored network)")
