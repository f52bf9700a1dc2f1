"""What the engine asks of an architecture, and the helpers both sides use to honour it.

An architecture is a plain ``nn.Module``. The engine reads these optional class or instance
attributes (defaults in brackets):

* ``size_multiple`` [1]: the input height and width must be multiples of it; the engine pads
  (mode ``pad_mode`` ["reflect"]) and crops the output back (:func:`pad_to_multiple`).
* ``scale`` [1]: output size / input size (super-resolution).
* ``input_keys`` [("input",)]: the sample entries passed to ``forward`` positionally, in order
  (a shadow-removal network declares ``("input", "mask")``); every one is a ``(B, C, H, W)``
  tensor of the input's size, padded and tiled together with it.
* ``in_nc`` [constructor default]: the image channels it reads (:func:`input_channels`).
* ``channels_last`` [False]: inference runs faster with NHWC (channels-last) weights and
  activations; ``infer.channels_last: auto`` follows it (:func:`prefers_channels_last`). Set
  only where an interleaved A/B on the CPU measured it faster.
* ``forward_any_size(x, *extra)``: the architecture's own rule for an arbitrary input size (e.g. an
  official centred padding, or patch-wise inference); when present the engine calls it instead
  of its generic pad/run/crop. It must accept any ``(B, C, H, W)`` and return
  ``(B, C', scale*H, scale*W)``.
* ``export_core`` ["forward"]: the method, as a dotted path from the architecture (e.g.
  ``"network.forward"``), that an exported graph (ONNX Runtime / OpenVINO backends) may stand in
  for. It must take the ``(B, C, H, W)`` tensors it is called with positionally, already meeting the
  size rule, and hold no Python decision that depends on the input's size or values (the graph
  is traced once and serves every size). Everything above it — ``forward_any_size``, the
  engine's padding, tiling, self-ensemble — stays in Python and calls the graph in its place.

Architectures import this module for the padding they share with the engine; the engine for the
lookups. It sits in the component layer and imports nothing from ``restore`` above it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn


def unwrap(model: nn.Module) -> nn.Module:
    """The bare module inside DistributedDataParallel / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def size_multiple(model: nn.Module) -> int:
    """The multiple H and W must have (1 when the architecture does not say)."""
    return int(getattr(unwrap(model), "size_multiple", 1) or 1)


def scale_of(model: nn.Module) -> int:
    """Output size / input size (1 when the architecture does not say)."""
    return int(getattr(unwrap(model), "scale", 1) or 1)


def pad_mode(model: nn.Module) -> str:
    """How the engine pads to ``size_multiple`` (an ``F.pad`` mode, or ``"zeros"``)."""
    return str(getattr(unwrap(model), "pad_mode", "reflect"))


def prefers_channels_last(model: nn.Module) -> bool:
    """Whether the architecture declares NHWC (channels-last) inference faster (False when it does not say)."""
    return bool(getattr(unwrap(model), "channels_last", False))


def input_keys(model: nn.Module) -> tuple[str, ...]:
    """The sample entries ``forward`` takes, in order (``("input",)`` by default)."""
    return tuple(getattr(unwrap(model), "input_keys", ("input",)))


def export_core(model: nn.Module) -> tuple[nn.Module, str]:
    """The module and method name an exported graph replaces (``export_core``, default ``forward``).

    ``"network.forward"`` on a wrapper names its ``network`` submodule's ``forward``.
    """
    path = str(getattr(unwrap(model), "export_core", "forward") or "forward").split(".")
    owner: Any = unwrap(model)
    for part in path[:-1]:
        owner = getattr(owner, part)
    if not isinstance(owner, nn.Module) or not callable(getattr(owner, path[-1], None)):
        raise AttributeError(f"{type(unwrap(model)).__name__}.export_core names no method: {'.'.join(path)!r}")
    return owner, path[-1]


def input_channels(
    model: nn.Module | None,
    args: Mapping[str, Any] | None = None,
    constructor: Callable[..., Any] | None = None,
) -> int | None:
    """The image channels a network reads, when it says so; ``None`` when it has no such notion.

    In order: the built model's ``in_nc`` attribute, the ``in_nc`` given in its option section
    (``args``), the default of the ``in_nc`` parameter of its ``constructor``.
    """
    value = getattr(unwrap(model), "in_nc", None) if model is not None else None
    if value is None and args is not None:
        value = args.get("in_nc")
    if value is None and constructor is not None:
        try:
            param = inspect.signature(constructor).parameters.get("in_nc")
        except (TypeError, ValueError):
            param = None
        if param is not None and isinstance(param.default, int):
            value = param.default
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def pad_to_multiple(x: Tensor, multiple: int, mode: str = "reflect") -> tuple[Tensor, tuple[int, int]]:
    """Pad ``(..., H, W)`` at the bottom and right up to multiples of ``multiple``.

    Returns the padded tensor and the original ``(H, W)`` for cropping back. ``mode`` is a
    ``F.pad`` mode (``"zeros"`` means constant 0); reflect needs the pad to be smaller than the
    dimension, so an axis where it is not is padded with replicate instead.
    """
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if mode == "zeros":
        mode = "constant"
    if ph or pw:
        if mode == "reflect" and (ph >= h or pw >= w):
            x = F.pad(x, (0, 0, 0, ph), mode="reflect" if ph < h else "replicate")
            x = F.pad(x, (0, pw, 0, 0), mode="reflect" if pw < w else "replicate")
        else:
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)
