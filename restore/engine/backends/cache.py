"""The on-disk cache of exported graphs, keyed by what the graph depends on.

Why: exporting a network to ONNX takes seconds to minutes; a second ``restore infer`` with the
same weights must start at once. A graph depends on

* the weights and every buffer (persistent or not): :func:`tensor_digest`;
* the structure: every submodule's class, its plain attributes (``residual``, ``mask_threshold``,
  ``down_size``, ...) and the source files of those classes, so an edited architecture is
  exported again: :func:`structure_digest`;
* the inputs it was traced with (count, channels, dtype) and the exporter (name, opset, torch
  version): the ``options`` given to :func:`cache_key`.

Files live under ``$RESTORE_CACHE`` (default ``~/.cache/restore``) as ``onnx/<key>.onnx`` with a
``<key>.json`` note saying what they are; both are written atomically and checked to stay inside
that folder. Only the :data:`MAX_GRAPHS` most recently used graphs are kept. Deleting the folder
is always safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from restore.utils.files import atomic_write

#: Graphs kept; older ones (least recently used) are deleted. Validation during training
#: exports new weights each time, and the cache must not grow with every validation.
MAX_GRAPHS = 24
#: Attribute types that shape a traced graph and are cheap to describe.
_PLAIN = (bool, int, float, str, type(None))


def cache_root() -> Path:
    """``$RESTORE_CACHE`` when set, else ``~/.cache/restore``."""
    chosen = os.environ.get("RESTORE_CACHE")
    return Path(chosen).expanduser() if chosen else Path.home() / ".cache" / "restore"


def tensor_digest(module: nn.Module) -> str:
    """SHA-256 of every parameter and buffer (names, dtypes, shapes and bytes), in a fixed order."""
    digest = hashlib.sha256()
    seen: dict[str, torch.Tensor] = dict(module.named_parameters())
    seen.update(module.named_buffers())
    for name in sorted(seen):
        t = seen[name].detach()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        flat = t.cpu().contiguous().reshape(-1)
        if flat.numel():
            digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    """A JSON-able description of a plain attribute value, or None when it is not plain."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (tuple, list)) and all(isinstance(v, _PLAIN) for v in value):
        return list(value)
    return None


def structure_digest(module: nn.Module) -> str:
    """SHA-256 of the module tree: class names, plain attributes and the classes' source files."""
    digest = hashlib.sha256()
    files: set[str] = set()
    for name, sub in module.named_modules():
        cls = type(sub)
        attrs = {k: _plain(v) for k, v in sorted(vars(sub).items()) if not k.startswith("_") and k != "training"}
        digest.update(json.dumps([name, f"{cls.__module__}.{cls.__qualname__}", attrs], default=str).encode())
        source = getattr(sys.modules.get(cls.__module__), "__file__", None)
        if source:
            files.add(source)
    for source in sorted(files):
        try:
            digest.update(Path(source).read_bytes())
        except OSError:
            digest.update(source.encode())
    return digest.hexdigest()


def cache_key(module: nn.Module, options: Mapping[str, Any]) -> str:
    """The file stem of ``module``'s graph exported under ``options`` (40 hex digits)."""
    digest = hashlib.sha256()
    digest.update(tensor_digest(module).encode())
    digest.update(structure_digest(module).encode())
    digest.update(json.dumps(dict(options), sort_keys=True, default=str).encode())
    return digest.hexdigest()[:40]


class GraphCache:
    """``<root>/onnx/<key>.onnx`` files and their notes; ``root`` defaults to :func:`cache_root`."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else cache_root()
        self.folder = self.root / "onnx"

    def path(self, key: str) -> Path:
        """Where the graph of ``key`` is (or would be) stored."""
        return self.folder / f"{key}.onnx"

    def load(self, key: str) -> bytes | None:
        """The stored graph, or None when absent or unreadable (it is then exported again)."""
        try:
            graph = self.path(key).read_bytes() or None
            os.utime(self.path(key))  # most recently used: pruned last
        except OSError:
            return None
        return graph

    def store(self, key: str, graph: bytes, note: Mapping[str, Any]) -> Path:
        """Write the graph and a JSON note atomically inside the cache folder; returns the graph's path."""
        path = atomic_write(self.path(key), graph, inside=self.folder, fsync=False)
        atomic_write(self.folder / f"{key}.json", json.dumps(dict(note), indent=2, default=str) + "\n",
                     inside=self.folder, fsync=False)
        self.prune()
        return path

    def prune(self, keep: int = MAX_GRAPHS) -> None:
        """Delete all but the ``keep`` most recently used graphs (and their notes)."""
        try:
            graphs = sorted(self.folder.glob("*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
            for old in graphs[keep:]:
                old.unlink(missing_ok=True)
                old.with_suffix(".json").unlink(missing_ok=True)
        except OSError:
            pass  # another process pruned first, or the folder is read-only: nothing to do
