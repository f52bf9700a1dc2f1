"""Which row of the released-weights table a weights file is, by its keys and shapes.

Why: official files carry no metadata, are often renamed on download, and several releases share
a file name (LAB-Net's two ``best_net_G.pth``). The keys and shapes say which network a file fits
without running anything.

How: the file is read on the meta device (names, shapes and dtypes; a zip-format ``.pth`` or a
``.safetensors`` file is not read beyond its index), its wrapper is unwrapped by the same
:func:`~restore.engine.checkpoint.extract_state_dict` every load uses (``{'state_dict': ...}``,
``module.`` prefixes, ``params``/``params_ema``, restore's own files), and the result is compared
with the state_dict of each row's network, built from the row's option file on the meta device
(no memory, no weights).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from restore.config import load_options
from restore.engine.checkpoint import extract_state_dict, load_file
from restore.engine.network import build_network_on_meta
from restore.engine.released_weights import ReleasedWeights, option_path, released_weights
from restore.engine.weights_meta import resolved_component
from restore.errors import ConfigError

Shape = tuple[int, ...]


@dataclass(frozen=True)
class FileLayout:
    """What a weights file holds: ``shapes`` (key -> shape, prefix stripped), ``params`` (values
    of its floating-point tensors, the convention of the official listings: index buffers are
    not parameters) and ``wrapper`` (how the tensors were stored, in words)."""

    path: Path
    shapes: dict[str, Shape]
    params: int
    wrapper: str


@dataclass(frozen=True)
class Comparison:
    """A file against one row: keys the row's network has and the file lacks (``missing``),
    keys only the file has (``unexpected``), and ``(key, shape in the file, expected shape)``
    for keys both have with different shapes (``mismatched``, in the network's key order)."""

    entry: ReleasedWeights
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    mismatched: tuple[tuple[str, Shape, Shape], ...]
    expected: int

    @property
    def matches(self) -> bool:
        """Every key present on both sides with the same shape."""
        return not (self.missing or self.unexpected or self.mismatched)

    @property
    def agreeing(self) -> int:
        """Keys present on both sides with the same shape."""
        return self.expected - len(self.missing) - len(self.mismatched)

    @property
    def score(self) -> float:
        """Agreeing keys over all keys of either side (1.0 for a match): how close the file is."""
        return self.agreeing / max(1, self.expected + len(self.unexpected))


def _describe_wrapper(obj: Any) -> str:
    """``a bare state_dict`` or ``a dict of epoch, state_dict, optimizer``, plus the prefix."""
    inner = [obj] if isinstance(obj, Mapping) else []
    if isinstance(obj, Mapping) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        text = "a dict of " + ", ".join(map(str, obj))
        inner = [v for v in obj.values() if isinstance(v, Mapping)]
    else:
        text = "a bare state_dict"
    if any(str(k).startswith("module.") for d in inner for k, v in d.items() if isinstance(v, torch.Tensor)):
        text += ", keys prefixed 'module.'"
    return text


def read_layout(path: str | os.PathLike) -> FileLayout:
    """The keys and shapes of a weights file, read on the meta device (one-line DataError for a
    file that is not a readable checkpoint or holds no state_dict)."""
    path = Path(path)
    obj = load_file(path, device="meta")
    state = extract_state_dict(obj, str(path))
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    params = sum(v.numel() for v in state.values() if v.is_floating_point() or v.is_complex())
    return FileLayout(path, shapes, params, _describe_wrapper(obj))


#: networks already built, by their resolved ``network`` section (the key encodes every argument)
_SHAPES: dict[str, dict[str, Shape]] = {}


def expected_shapes(entry: ReleasedWeights) -> dict[str, Shape]:
    """The state_dict shapes of the network of ``entry.layout_options``, built on the meta device.

    Rows that share a network (the four Neighbor2Neighbor files) build it once per process.
    """
    options = load_options(option_path(entry.layout_options))
    if options.network is None:
        raise ConfigError(f"{entry.layout_options}: missing required key 'network'")
    key = json.dumps(resolved_component(options.network), sort_keys=True)
    if key not in _SHAPES:
        _SHAPES[key] = {k: tuple(v.shape) for k, v in build_network_on_meta(options).state_dict().items()}
    return _SHAPES[key]


def compare(found: Mapping[str, Shape], expected: Mapping[str, Shape], entry: ReleasedWeights) -> Comparison:
    """Compare a file's shapes with a network's (see :class:`Comparison`)."""
    missing = tuple(k for k in expected if k not in found)
    unexpected = tuple(k for k in found if k not in expected)
    mismatched = tuple((k, tuple(found[k]), tuple(s)) for k, s in expected.items() if k in found and tuple(found[k]) != tuple(s))
    return Comparison(entry, missing, unexpected, mismatched, len(expected))


def check_weights(path: str | os.PathLike, entries: Sequence[ReleasedWeights] | None = None) -> tuple[FileLayout, list[Comparison]]:
    """The file's layout and its comparison with every row, best first: matching rows (those
    released under the file's own name first), then the others by :attr:`Comparison.score`
    (ties: the file's own name first)."""
    layout = read_layout(path)
    rows = list(released_weights() if entries is None else entries)
    results = [compare(layout.shapes, expected_shapes(row), row) for row in rows]
    name = layout.path.name
    order = {id(c): i for i, c in enumerate(results)}
    results.sort(key=lambda c: (not c.matches, -c.score, c.entry.file != name, order[id(c)]))
    return layout, results
