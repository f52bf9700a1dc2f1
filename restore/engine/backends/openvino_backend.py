"""OpenVINO running an exported graph on the CPU, at the precision asked for and no other.

Why the precision is pinned: OpenVINO's CPU plugin switches to bfloat16 by itself on CPUs that
have it (``avx512_bf16``, AMX), which moves about 13% of 8-bit pixels by one level. restore
sets ``INFERENCE_PRECISION_HINT`` to f32 unless bf16 (or f16) is asked for, and refuses a
reduced precision the CPU cannot run (OpenVINO would quietly run f32 and the results would be
labelled with a precision they did not have).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from restore.engine.backends.extras import import_backend
from restore.errors import ConfigError

#: infer.precision -> OpenVINO element type name of the inference precision hint.
HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
#: infer.precision -> the CPU plugin's OPTIMIZATION_CAPABILITIES entry that runs it.
CAPABILITIES = {"fp32": "FP32", "bf16": "BF16", "fp16": "FP16"}


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
    ``torch.get_num_threads()`` threads.
    """

    name = "openvino"

    def __init__(self, graph: bytes, precision: str, device: torch.device) -> None:
        ov = import_backend("openvino")
        from openvino import properties

        core = ov.Core()
        hint = getattr(ov.Type, HINTS[precision])
        config = {properties.hint.inference_precision: hint,
                  properties.inference_num_threads: torch.get_num_threads()}
        self.compiled = core.compile_model(core.read_model(graph), "CPU", config)
        effective = self.compiled.get_property(properties.hint.inference_precision)
        if effective != hint:  # the capability check said yes, the plugin chose otherwise
            raise ConfigError(
                f"infer.precision {precision}: OpenVINO compiled the graph for {effective.get_type_name()} instead; "
                "use precision fp32, or backend torch"
            )
        self.precision = precision

    def __call__(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        """Run the graph on ``(B, C, H, W)`` float32 arrays; the first output."""
        return self.compiled(list(inputs))[0]
