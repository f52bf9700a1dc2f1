"""An architecture's core method as an ONNX graph with dynamic batch, height and width.

What is exported is the method :func:`restore.archs.contract.export_core` names (``forward`` unless
the architecture says otherwise), called with the ``(B, C, H, W)`` tensors it receives at run time.
Every input and the output get symbolic batch/height/width axes, so one graph serves every
image size (and tile batch); the Python around it (size rules, ``forward_any_size``, tiling,
self-ensemble) is not part of the graph.

Exporter. PyTorch's TorchScript-based exporter (``dynamo=False``) records the shape arithmetic
of the traced forward as graph operations. The torch.export-based exporter (PyTorch's default
since 2.9) builds the same graphs but took ~10x longer on this project's 2-core machine (55 s
against 6 s for a small UNet), which a first ``restore infer`` and the parity tests would pay
every time; the choice is this module's alone (:data:`EXPORTER`, part of the cache key).
"""

from __future__ import annotations

import io
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from restore.engine.backends.extras import import_backend
from restore.errors import ConfigError
from restore.utils.one_line import one_line

#: The ONNX opset of exported graphs (18: IPT's ``col2im`` needs it).
OPSET = 18
#: Which of torch's exporters builds the graphs (named in cache keys and sidecars).
EXPORTER = "torchscript"
OUTPUT = "output"


def input_names(count: int) -> list[str]:
    """The graph's input names: ``input0``, ``input1``, ... in the order the method takes them."""
    return [f"input{i}" for i in range(count)]


class CoreMethod(nn.Module):
    """``owner.<method>(*inputs)`` as a module of positional tensors (what the exporter traces).

    The class's own method is called, so an engine that has put an exported graph in the
    method's place on the instance still exports the original.
    """

    def __init__(self, owner: nn.Module, method: str) -> None:
        super().__init__()
        self.owner, self.method = owner, method

    def forward(self, *inputs: Tensor) -> Tensor:
        return getattr(type(self.owner), self.method)(self.owner, *inputs)


@contextmanager
def _c_stdout_silenced() -> Iterator[None]:
    """File descriptor 1 to /dev/null for the ``with`` body.

    Why: on a failure the TorchScript exporter's C++ logger prints the whole traced graph to
    stdout (its logging is switched on for every export, whatever the caller sets), which would
    bury the one-line error; Python's ``redirect_stdout`` cannot catch a C++ stream.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def export_onnx(owner: nn.Module, method: str, inputs: Sequence[Tensor], opset: int = OPSET,
                hint: str = "use infer.backend: torch") -> bytes:
    """The ONNX model (bytes) of ``owner.<method>`` traced on ``inputs`` (each ``(B, C, H, W)``).

    Batch, height and width of every input and of the output are dynamic. Tracer warnings
    (Python numbers taken from shapes) are silenced: the parity tests check that the graph
    holds at sizes other than the traced one. A failure is a one-line :class:`ConfigError`
    naming the architecture, ending with ``hint`` in brackets.
    """
    import_backend("onnx", "exporting a network to ONNX")  # the exporter writes through it
    names = input_names(len(inputs))
    axes = {name: {0: "batch", 2: "height", 3: "width"} for name in names}
    axes[OUTPUT] = {0: "batch", 2: "out_height", 3: "out_width"}
    module = CoreMethod(owner, method)
    modes = [(m, m.training) for m in owner.modules()]
    buffer = io.BytesIO()
    try:
        owner.eval()
        with torch.no_grad(), warnings.catch_warnings(), _c_stdout_silenced():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, tuple(inputs), buffer, input_names=names, output_names=[OUTPUT],
                              dynamic_axes=axes, opset_version=opset, dynamo=False, do_constant_folding=True)
    except Exception as exc:  # the exporter raises many types; the user needs one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(
            f"cannot export {type(owner).__name__}.{method} to ONNX: {one_line(first)[:300]} ({hint})"
        ) from exc
    finally:
        for m, mode in modes:
            m.training = mode
    return buffer.getvalue()
