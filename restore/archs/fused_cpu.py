"""Linear and convolution layers with their bias and activation in one oneDNN pass, for CPU inference.

Why: on the CPU a plain ``nn.Linear`` first copies its bias into every row of the output and then
accumulates the product onto it, and a following GELU reads and writes the whole output once more.
For the transformer blocks' wide feed-forward layers those two extra passes over a large
activation cost as much as the product itself (Uformer-T at 256x256: 23 % of a forward in
``addmm``'s bias copies and in ``gelu``). oneDNN, which PyTorch already uses for these products,
can add the bias and apply the activation while it writes each output tile. PyTorch exposes those
fused kernels as ``torch.ops.mkldnn._linear_pointwise`` and ``_convolution_pointwise`` (they are
what ``torch.compile`` emits on the CPU); these helpers call them directly, so eager inference
gets the fusion without a compile.

The results equal the unfused ops to float32 rounding (oneDNN's exact-erf GELU; measured max
difference 2e-7 on a Uformer feed-forward). The fused kernels have no autograd formula and do
not export, so :func:`fusable` sends everything else down the plain ops: training and any call
that needs gradients, autocast (reduced precision keeps PyTorch's own casting rules), tracing for
ONNX export, ``torch.compile``, dispatch modes such as ``FlopCounterMode``, tensors not on the
CPU or not float32, and builds without these kernels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Activations the fused kernels apply, by the name the plain path uses.
ACTIVATIONS = ("none", "gelu")


def _kernels() -> tuple[object, object] | None:
    """oneDNN's fused linear and convolution ops, or None where this PyTorch build lacks them."""
    try:
        ops = torch.ops.mkldnn
        return ops._linear_pointwise, ops._convolution_pointwise
    except (AttributeError, RuntimeError):
        return None


_KERNELS = _kernels() if torch.backends.mkldnn.is_available() else None


def fusable(x: Tensor) -> bool:
    """Whether ``x`` may take the fused kernels: float32 CPU inference outside autograd, autocast,
    tracing, compiling and dispatch modes, on a build that has them."""
    if _KERNELS is None or x.device.type != "cpu" or x.dtype != torch.float32 or torch.is_grad_enabled():
        return False
    if torch.is_autocast_enabled("cpu") or torch.jit.is_tracing() or torch.jit.is_scripting():
        return False
    if torch.compiler.is_compiling() or torch._C._len_torch_dispatch_stack() > 0:
        return False
    return True


def _checked(activation: str) -> str:
    """The oneDNN post-op algorithm of ``activation`` ("" for none, exact erf for GELU)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    return "none" if activation == "gelu" else ""


def _plain_activation(y: Tensor, activation: str) -> Tensor:
    return F.gelu(y) if activation == "gelu" else y


def linear(x: Tensor, layer: nn.Linear, activation: str = "none") -> Tensor:
    """``activation(layer(x))`` on (..., in_features) -> (..., out_features); one oneDNN pass
    (bias and activation fused) when :func:`fusable`, else the plain ops."""
    algorithm = _checked(activation)
    if layer.bias is not None and fusable(x):
        return _KERNELS[0](x, layer.weight, layer.bias, activation, [], algorithm)  # type: ignore[index,operator]
    return _plain_activation(layer(x), activation)


def conv2d(x: Tensor, layer: nn.Conv2d, activation: str = "none") -> Tensor:
    """``activation(layer(x))`` on (B, C, H, W); one oneDNN pass when :func:`fusable` and the conv
    pads with zeros, else the plain ops. The output keeps the input's memory format."""
    algorithm = _checked(activation)
    if layer.bias is not None and layer.padding_mode == "zeros" and not isinstance(layer.padding, str) and fusable(x):
        return _KERNELS[1](x, layer.weight, layer.bias, list(layer.padding), list(layer.stride),  # type: ignore[index,operator]
                           list(layer.dilation), layer.groups, activation, [], algorithm)
    return _plain_activation(layer(x), activation)
