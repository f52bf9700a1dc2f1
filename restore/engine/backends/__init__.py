"""Fast inference backends: an architecture's core as an ONNX graph on OpenVINO or ONNX Runtime.

``infer.backend`` picks what runs the network inside :class:`restore.engine.inference.Restorer`:

* ``torch`` (default): the module itself; ``infer.precision`` bf16/fp16 is autocast.
* ``onnxruntime`` / ``openvino``: the method :func:`restore.archs.contract.export_core` names is
  exported once (:mod:`.onnx_export`, cached on disk by :mod:`.cache`) and an
  :class:`~.runner.ExportedCore` stands in for it on the instance while the Restorer runs, so the
  architecture's ``forward_any_size``, the engine's padding, tiling and self-ensemble stay
  Python around the graph. Both need the ``[fast]`` extra (:mod:`.extras`).
* ``auto``: the fastest one installed for the device and precision: on the CPU OpenVINO, then
  ONNX Runtime (float32 only), then torch; on other devices torch.

``infer.precision``: ``fp32`` (default; exact up to float rounding order) or the approximate
``bf16`` / ``fp16``, which must be asked for (``restore test`` also wants ``--allow-approximate``).
"""

from __future__ import annotations

import torch

from restore.engine.backends.extras import import_backend, installed
from restore.errors import ConfigError

BACKENDS = ("torch", "onnxruntime", "openvino", "auto")
PRECISIONS = ("fp32", "bf16", "fp16")
#: ``auto`` tries these, fastest first (measured on CPU: OpenVINO > ONNX Runtime > torch).
AUTO_ORDER = ("openvino", "onnxruntime")


def check_choice(backend: str, precision: str) -> None:
    """One-line errors for a backend or precision that does not exist (options built in code)."""
    if backend not in BACKENDS:
        raise ConfigError(f"key 'infer.backend' must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if precision not in PRECISIONS:
        raise ConfigError(f"key 'infer.precision' must be one of {', '.join(PRECISIONS)}, got {precision!r}")


def _check_precision(backend: str, precision: str) -> None:
    """A one-line :class:`ConfigError` unless the (installed) ``backend`` runs ``precision``."""
    if backend == "onnxruntime":
        from restore.engine.backends.onnxruntime_backend import check_precision
    else:
        from restore.engine.backends.openvino_backend import check_precision
    check_precision(precision)


def _runs(backend: str, precision: str, device: torch.device) -> bool:
    """Whether ``backend`` is installed and can run ``precision`` on ``device`` (for ``auto``)."""
    if device.type != "cpu" or not installed(backend):
        return False
    try:
        _check_precision(backend, precision)
    except ConfigError:
        return False
    return True


def resolve_backend(backend: str, precision: str, device: torch.device) -> str:
    """The backend that will run: ``auto`` made concrete, an explicit one checked to be installed
    and able to run ``precision`` (one-line :class:`ConfigError` otherwise)."""
    check_choice(backend, precision)
    if backend == "auto":
        return next((b for b in AUTO_ORDER if _runs(b, precision, device)), "torch")
    if backend == "torch":
        return backend
    import_backend(backend)
    _check_precision(backend, precision)
    return backend
