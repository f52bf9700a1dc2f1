"""OpenVINO running an exported graph on the CPU, at the precision asked for and no other.

Why the precision is pinned: OpenVINO's CPU plugin switches to bfloat16 by itself on CPUs that
have it (``avx512_bf16``, AMX), which moved 9% of the 8-bit values of a trained denoiser by one
level (``benchmarks/precision_psnr.py``). restore
sets ``INFERENCE_PRECISION_HINT`` to f32 unless bf16 (or f16) is asked for, and refuses a
reduced precision the CPU cannot run (OpenVINO would quietly run f32 and the results would be
labelled with a precision they did not have).

Why a graph per input shape: compiled for one fixed input shape, OpenVINO plans its memory and
picks its kernels once, and runs faster than the same graph compiled for any shape
(``benchmarks/openvino_shapes.py``). Compiling costs about as much either way (Uformer-B:
6-8 s), and each compiled copy holds its own weights, so the first ``STATIC_SHAPES`` shapes a
session meets get a graph of their own (a folder of same-size images, the tiles of a tiled run,
the transposed tiles of self-ensemble) and any later shape runs on one graph compiled for every
shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from restore.engine.backends.extras import import_backend
from restore.errors import ConfigError

#: infer.precision -> OpenVINO element type name of the inference precision hint.
HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
#: infer.precision -> the CPU plugin's OPTIMIZATION_CAPABILITIES entry that runs it.
CAPABILITIES = {"fp32": "FP32", "bf16": "BF16", "fp16": "FP16"}
#: How many input shapes a session compiles a graph of their own for (later shapes share one).
STATIC_SHAPES = 4


def check_precision(precision: str) -> None:
    """A one-line :class:`ConfigError` unless this CPU runs ``precision`` in OpenVINO."""
    ov = import_backend("openvino")
    if CAPABILITIES[precision] not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        raise ConfigError(
            f"infer.precision {precision}: this CPU has no {precision} support in OpenVINO (it would run "
            "float32); use precision fp32, or backend torch"
        )


class OpenVinoSession:
    """An ONNX graph (bytes) compiled by OpenVINO for the CPU; ``session(arrays) -> output array``.

    Runs on the CPU whatever ``device`` is (OpenVINO's "GPU" is an Intel GPU), with
    ``torch.get_num_threads()`` threads. Compiles on first use of each input shape (see the
    module docstring): ``static`` maps shapes to their own compiled graphs, ``dynamic`` is the
    one for any shape (None until a shape beyond the first ``STATIC_SHAPES`` arrives).
    """

    name = "openvino"

    def __init__(self, graph: bytes, precision: str, device: torch.device) -> None:
        ov = import_backend("openvino")
        from openvino import properties

        self._core, self.precision = ov.Core(), precision
        self._model = self._core.read_model(graph)  # parsed now: a damaged graph fails here, not mid-run
        self._hint = getattr(ov.Type, HINTS[precision])
        self._config = {properties.hint.inference_precision: self._hint,
                        properties.inference_num_threads: torch.get_num_threads()}
        self.static: dict[tuple[tuple[int, ...], ...], Any] = {}
        self.dynamic: Any = None

    def compile_for(self, shapes: tuple[tuple[int, ...], ...] | None) -> Any:
        """The graph compiled for these input shapes (None: any shape), at the pinned precision."""
        from openvino import properties

        model = self._model.clone()
        if shapes is not None:
            model.reshape({port.get_any_name(): list(shape) for port, shape in zip(model.inputs, shapes)})
        compiled = self._core.compile_model(model, "CPU", self._config)
        effective = compiled.get_property(properties.hint.inference_precision)
        if effective != self._hint:  # the capability check said yes, the plugin chose otherwise
            raise ConfigError(
                f"infer.precision {self.precision}: OpenVINO compiled the graph for {effective.get_type_name()} instead; "
                "use precision fp32, or backend torch"
            )
        return compiled

    def __call__(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        """Run the graph on ``(B, C, H, W)`` float32 arrays; the first output."""
        shapes = tuple(tuple(int(n) for n in a.shape) for a in inputs)
        compiled = self.static.get(shapes)
        if compiled is None and len(self.static) < STATIC_SHAPES:
            compiled = self.static[shapes] = self.compile_for(shapes)
        elif compiled is None:
            if self.dynamic is None:
                self.dynamic = self.compile_for(None)
            compiled = self.dynamic
        return compiled(list(inputs))[0]
