"""The torch path's speed switches: memory format, torch.compile, TF32, cuDNN autotuning, fused Adam.

Why one module: each switch is a line or two of torch, but which one applies depends on the
device, the architecture and the options, and inference and training must decide the same way.

* ``channels_last`` (``infer.channels_last``: ``auto`` | true | false): NHWC activations. Auto
  takes the architecture's declared default (:func:`restore.archs.contract.prefers_channels_last`,
  set where it measured faster on the CPU). Outputs equal the contiguous ones to float
  rounding (about 1e-6), never more.
* ``compile`` (``infer.compile``): ``nn.Module.compile()`` in place, so an architecture's own
  ``forward_any_size`` calls the compiled forward too. Off by default: the first forward of each
  new input size pays the compile (seconds to tens of seconds), which the run reports.
* TF32 (``infer.tf32`` / ``train.tf32``; None leaves torch's defaults): float32 matmuls and
  convolutions on CUDA tensor cores with a 10-bit mantissa. Changes results slightly, so never on
  unless asked.
* ``cudnn.benchmark`` on CUDA for training (fixed crop sizes, so autotuning pays back at once),
  and ``fused=True`` for Adam/AdamW on CUDA unless the option file sets ``fused`` or ``foreach``.

Only the commands that own their model (``restore infer``, ``restore test``) change its memory
format or compile it; validation during training runs the training model as it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from restore.archs.contract import prefers_channels_last
from restore.component import Component
from restore.errors import ConfigError

#: Optimizers that take ``fused=True`` on CUDA (registry names).
FUSED_OPTIMIZERS = ("adam", "adamw")


def use_channels_last(model: nn.Module, setting: bool | str) -> bool:
    """``infer.channels_last`` resolved: ``auto`` -> the architecture's declared default."""
    if setting == "auto":
        return prefers_channels_last(model)
    if isinstance(setting, bool):
        return setting
    raise ConfigError(f"key 'infer.channels_last' must be auto, true or false, got {setting!r}")


def prepare_for_inference(model: nn.Module, infer: Any, device: torch.device) -> nn.Module:
    """Apply ``infer.channels_last``, ``infer.compile`` and ``infer.tf32`` to a model the caller owns.

    The model is changed in place (weights to NHWC strides, compiled call) and returned. The
    :class:`~restore.engine.inference.Restorer` sees NHWC weights and feeds its inputs NHWC too.
    """
    set_tf32(getattr(infer, "tf32", None), device)
    if use_channels_last(model, getattr(infer, "channels_last", "auto")):
        model.to(memory_format=torch.channels_last)
    if getattr(infer, "compile", False):
        model.compile()
    return model


def has_channels_last_weights(model: nn.Module) -> bool:
    """Whether the model's 4-D weights are in NHWC strides (``model.to(memory_format=channels_last)``)."""
    return any(p.dim() == 4 and not p.is_contiguous() and p.is_contiguous(memory_format=torch.channels_last)
               for p in model.parameters())


class FirstCallTimer:
    """Calls ``restorer`` and reports how long its first call took (with ``infer.compile`` that
    is where torch compiles the network); every attribute is the restorer's."""

    def __init__(self, restorer: Callable[..., Any], say: Callable[[str], None]) -> None:
        self._restorer, self._say, self._first = restorer, say, True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self._first:
            return self._restorer(*args, **kwargs)
        start = time.perf_counter()
        out = self._restorer(*args, **kwargs)
        self._first = False
        self._say(f"infer.compile: first forward (compile included) took {time.perf_counter() - start:.1f} s")
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._restorer, name)


def set_tf32(enabled: bool | None, device: torch.device) -> None:
    """TF32 for float32 matmuls and convolutions on CUDA: on, off, or (None) torch's defaults."""
    if enabled is None or device.type != "cuda":
        return
    precision = "tf32" if enabled else "ieee"
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    if hasattr(matmul, "fp32_precision") and hasattr(conv, "fp32_precision"):
        matmul.fp32_precision = precision
        conv.fp32_precision = precision
    else:  # torch before 2.9
        matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled


def training_switches(device: torch.device, tf32: bool | None) -> None:
    """What training on ``device`` turns on: cuDNN autotuning and the TF32 choice (CUDA only)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    set_tf32(tf32, device)


def optimizer_extras(optimizer: Component, device: torch.device) -> dict[str, Any]:
    """Extra constructor arguments for the optimizer: ``fused=True`` for Adam/AdamW on CUDA,
    unless the option file chose ``fused`` or ``foreach`` itself."""
    if device.type != "cuda" or optimizer.type not in FUSED_OPTIMIZERS:
        return {}
    if "fused" in optimizer.args or "foreach" in optimizer.args:
        return {}
    return {"fused": True}
