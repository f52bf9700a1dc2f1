"""ONNX Runtime running an exported graph (float32 only).

Why fp32 only: ONNX Runtime's CPU kernels have no bfloat16 path and few float16 ones; a graph
converted to half precision would run slower than float32 on a CPU. ``bf16``/``fp16`` are for
OpenVINO (CPU) or the torch backend (autocast) instead.

Why its threads do not spin: by default ONNX Runtime's thread pools keep busy-waiting for work
for a while after each run, so the cores stay taken when the run is over, and whatever runs next
on them is slowed: the decode and encode threads of ``restore infer``, or, in
``benchmarks/vs_reference.py``, the official procedure timed right after (WDNet's reference took
233-255 ms beside a spinning session and 191-232 ms beside the torch backend, which flattered the
ONNX Runtime rows). Without spinning, ONNX Runtime's own time did not change measurably (one
process per setting, median of 9 runs, two processes each: WDNet 159 and 185 ms spinning, 162
and 158 ms not; Uformer-T 369 and 424 ms, 416 and 412 ms), nor did a whole ``restore infer
--set infer.backend=onnxruntime`` over Kodak24 with the N2N UNet (48.6 s spinning, 48.3 s not,
median of 3 alternating processes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from restore.engine.backends.extras import import_backend
from restore.errors import ConfigError


def check_precision(precision: str) -> None:
    """A one-line :class:`ConfigError` unless ``precision`` is fp32."""
    if precision != "fp32":
        raise ConfigError(
            f"infer.precision {precision} is not available with infer.backend onnxruntime (float32 only): "
            "use backend openvino or torch for bf16/fp16"
        )


class OnnxRuntimeSession:
    """An ONNX graph (bytes) in an ``InferenceSession``; ``session(arrays) -> output array``.

    ``device``: CUDA runs on ONNX Runtime's CUDA provider when the installed build has one,
    otherwise (and for every other device) the CPU provider runs, with ``torch.get_num_threads()``
    threads so both backends honour the same thread setting.
    """

    name = "onnxruntime"

    def __init__(self, graph: bytes, precision: str, device: torch.device) -> None:
        ort = import_backend("onnxruntime")
        check_precision(precision)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        for pool in ("intra", "inter"):  # no busy-waiting between runs (module docstring)
            options.add_session_config_entry(f"session.{pool}_op.allow_spinning", "0")
        providers: list = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index or 0}))
        self.session = ort.InferenceSession(graph, options, providers=providers)
        self.names = [i.name for i in self.session.get_inputs()]

    def __call__(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        """Run the graph on ``(B, C, H, W)`` float32 arrays; the first output."""
        return self.session.run(None, dict(zip(self.names, inputs)))[0]
