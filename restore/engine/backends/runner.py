"""An exported graph standing in for an architecture's core method while a Restorer runs.

:class:`ExportedCore` is a plain callable with the core method's call signature (positional
``(B, C, H, W)`` tensors -> tensor). :func:`standing_in` puts it on the instance in the method's
place for the duration of a forward, so every Python procedure above the core — the
architecture's ``forward_any_size`` (IPT's 48x48 patch rule, Uformer's centred padding, WDNet's
resize rule), ``with_mask``'s channel join, the engine's padding, tiling and self-ensemble —
runs unchanged and calls the graph where it called the method. The graph is exported on the
first call (traced on the tensors that call received, cropped to a small size, and checked
against the method on new random values before it is used), looked up in and stored to the
:class:`~restore.engine.backends.cache.GraphCache`, and kept per input signature (count,
channels, dtype) for the object's lifetime.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from restore.archs.contract import export_core, size_multiple
from restore.engine.backends.cache import GraphCache, cache_key
from restore.engine.backends.onnx_export import EXPORTER, OPSET, export_onnx
from restore.errors import ConfigError, RestoreError

#: Exports trace at most this many pixels per side (rounded up to the size multiple).
TRACE_SIDE = 256
#: A fresh graph must match its method to this (times the output's magnitude when above 1).
#: Why 1e-3 and not the parity tests' 1e-4: the check runs the real network on uniform noise, and
#: a deep one reorders enough float sums to pass 1e-4 without any fault (the released-size IPT on
#: random weights: 2.6e-4 with ONNX Runtime, 4.2e-5 on a noisy photo). A step the tracer froze
#: moves outputs by far more; a quarter of an 8-bit level is still below what anyone would see.
VERIFY_TOLERANCE = 1e-3
_ABSENT = object()


class Session(Protocol):
    name: str

    def __call__(self, inputs: list[np.ndarray]) -> np.ndarray: ...


def open_session(backend: str, graph: bytes, precision: str, device: torch.device) -> Session:
    """The backend's session for an ONNX graph (bytes)."""
    if backend == "onnxruntime":
        from restore.engine.backends.onnxruntime_backend import OnnxRuntimeSession

        return OnnxRuntimeSession(graph, precision, device)
    if backend == "openvino":
        from restore.engine.backends.openvino_backend import OpenVinoSession

        return OpenVinoSession(graph, precision, device)
    raise ValueError(f"no exported-graph backend named {backend!r}")


def trace_inputs(inputs: tuple[Tensor, ...], multiple: int) -> list[Tensor]:
    """One image of each input, cut to at most ``TRACE_SIDE`` (rounded up to ``multiple``) per side:
    the tensors a graph is traced on (the graph itself has dynamic batch, height and width)."""
    side = max(multiple, -(-TRACE_SIDE // multiple) * multiple)
    return [t[:1, :, :side, :side].contiguous() for t in inputs]


class ExportedCore:
    """``model``'s core method (``export_core``) run as an ONNX graph on ``backend``.

    Called with anything but positional 4-D tensors (a keyword argument, a tensor that is not
    ``(B, C, H, W)``) it runs the original method instead, so other call forms keep working.
    """

    def __init__(self, model: nn.Module, backend: str, precision: str, device: torch.device,
                 cache: GraphCache | None = None) -> None:
        self.owner, self.method = export_core(model)
        self.multiple = size_multiple(model)
        self.backend, self.precision, self.device = backend, precision, torch.device(device)
        self.cache = cache if cache is not None else GraphCache()
        self.sessions: dict[tuple[tuple[int, str], ...], Session] = {}
        self.graph_paths: list[str] = []

    def original(self, *args: Any, **kwargs: Any) -> Any:
        """The core method itself (the class's, bypassing this stand-in)."""
        return getattr(type(self.owner), self.method)(self.owner, *args, **kwargs)

    def __call__(self, *inputs: Any, **kwargs: Any) -> Any:
        """The graph on ``(B, C, H, W)`` tensors -> its output on the first input's device."""
        if kwargs or not inputs or not all(isinstance(t, Tensor) and t.ndim == 4 for t in inputs):
            return self.original(*inputs, **kwargs)
        signature = tuple((int(t.shape[1]), str(t.dtype).removeprefix("torch.")) for t in inputs)
        session = self.sessions.get(signature)
        if session is None:
            session = self.sessions[signature] = self._open(signature, inputs)
        out = session([t.detach().cpu().contiguous().numpy() for t in inputs])
        return torch.from_numpy(np.ascontiguousarray(out)).to(inputs[0].device)

    def _export(self, key: str, signature: tuple, inputs: tuple[Tensor, ...]) -> bytes:
        """A fresh graph, checked against the original method, then stored in the cache."""
        traced = trace_inputs(inputs, self.multiple)
        graph = export_onnx(self.owner, self.method, traced)
        self._verify(graph, traced)
        note = {"architecture": type(self.owner).__qualname__, "method": self.method, "inputs": signature,
                "exporter": EXPORTER, "opset": OPSET, "torch": torch.__version__}
        try:
            self.graph_paths.append(str(self.cache.store(key, graph, note)))
        except RestoreError as exc:  # a read-only home must not stop inference
            print(f"restore: note: the exported graph is not cached ({exc})", file=sys.stderr)
        return graph

    def _verify(self, graph: bytes, traced: list[Tensor]) -> None:
        """Refuse a graph that does not reproduce the method on new random values (fp32).

        Why: a step the tracer cannot follow (a round trip through numpy, a branch on a value)
        becomes a constant of the traced input without an error; the output would be wrong.
        """
        g = torch.Generator().manual_seed(0)
        check = [torch.rand(t.shape, generator=g, dtype=t.dtype).to(t.device) for t in traced]
        with torch.no_grad():
            expected = self.original(*check).float().cpu()
        got = torch.from_numpy(open_session(self.backend, graph, "fp32", self.device)(
            [t.cpu().numpy() for t in check])).float()
        diff = (got - expected).abs().max().item() if got.shape == expected.shape else math.inf
        if not diff <= VERIFY_TOLERANCE * max(1.0, expected.abs().max().item()):
            raise ConfigError(
                f"the exported {type(self.owner).__name__}.{self.method} does not reproduce torch on a random input "
                f"(max abs difference {diff:.1e}): it holds a step a traced graph cannot follow (use infer.backend: torch)"
            )

    def _open(self, signature: tuple, inputs: tuple[Tensor, ...]) -> Session:
        key = cache_key(self.owner, {"exporter": EXPORTER, "opset": OPSET, "torch": torch.__version__,
                                     "method": self.method, "inputs": signature})
        graph = self.cache.load(key)
        if graph is not None:
            try:
                session = open_session(self.backend, graph, self.precision, self.device)
                self.graph_paths.append(str(self.cache.path(key)))
                return session
            except ConfigError:
                raise
            except Exception:  # noqa: BLE001, S110 - any load failure of a damaged cache file: export again
                pass
        return open_session(self.backend, self._export(key, signature, inputs), self.precision, self.device)


@contextmanager
def standing_in(core: ExportedCore | None) -> Iterator[None]:
    """Put ``core`` on its owner instance in place of the core method for the ``with`` body
    (nothing when ``core`` is None); the instance is left as it was afterwards."""
    if core is None:
        yield
        return
    attributes = core.owner.__dict__
    before = attributes.get(core.method, _ABSENT)
    attributes[core.method] = core
    try:
        yield
    finally:
        if before is _ABSENT:
            attributes.pop(core.method, None)
        else:
            attributes[core.method] = before
