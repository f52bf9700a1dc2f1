"""Linear and convolution layers with their bias and activation in one oneDNN pass, for CPU inference.

Why: on the CPU a plain ``nn.Linear`` first copies its bias into every row of the output and then
accumulates the product onto it, and a following activation reads and writes the whole output
once more. For the transformer blocks' wide feed-forward layers those two extra passes over a
large activation cost as much as the product itself (Uformer-T at 256x256: 23 % of a forward in
``addmm``'s bias copies and in ``gelu``); a full-resolution CNN pays the activation's pass after
every convolution (the N2N UNet's LeakyReLU). oneDNN, which PyTorch already uses for these products,
can add the bias and apply the activation while it writes each output tile. PyTorch exposes those
fused kernels as ``torch.ops.mkldnn._linear_pointwise`` and ``_convolution_pointwise`` (they are
what ``torch.compile`` emits on the CPU); these helpers call them directly, so eager inference
gets the fusion without a compile.

The results equal the unfused ops to float32 rounding (oneDNN's exact-erf GELU; measured max
difference 2e-7 on a Uformer feed-forward, 1e-12 on the N2N UNet). Activations: GELU, LeakyReLU,
ReLU or none; any other module runs after the plain layer. The fused kernels have no autograd formula and do
not export, so :func:`fusable` sends everything else down the plain ops: training and any call
that needs gradients, autocast (reduced precision keeps PyTorch's own casting rules), tracing for
ONNX export, ``torch.compile``, dispatch modes such as ``FlopCounterMode``, tensors not on the
CPU or not float32, and builds without these kernels.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.modules import module as torch_module


def _kernels() -> tuple[object, object] | None:
    """oneDNN's fused linear and convolution ops, or None where this PyTorch build lacks them."""
    try:
        ops = torch.ops.mkldnn
        return ops._linear_pointwise, ops._convolution_pointwise
    except (AttributeError, RuntimeError):
        return None


_KERNELS = _kernels() if torch.backends.mkldnn.is_available() else None
#: Depth of the active dispatch modes (``FlopCounterMode`` and the like); a build without this
#: private counter never fuses, since a mode could then go unnoticed.
_DISPATCH_DEPTH = getattr(torch._C, "_len_torch_dispatch_stack", None)


def tracing_or_compiling() -> bool:
    """Whether the running code is being traced (ONNX export), scripted or compiled: then only
    plain, shape-independent ops may run (works on every torch the package supports)."""
    compiling = getattr(torch.compiler, "is_compiling", None)  # torch >= 2.3
    return torch.jit.is_tracing() or torch.jit.is_scripting() or bool(compiling is not None and compiling())


def _autocast_on() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4 has no device argument
        return torch.is_autocast_cpu_enabled()


def fusable(x: Tensor) -> bool:
    """Whether ``x`` may take the fused kernels: float32 CPU inference outside autograd, autocast,
    tracing, compiling and dispatch modes, on a build that has them."""
    if _KERNELS is None or _DISPATCH_DEPTH is None or x.device.type != "cpu" or x.dtype != torch.float32:
        return False
    if torch.is_grad_enabled():
        return False
    return not (_autocast_on() or tracing_or_compiling() or _DISPATCH_DEPTH() > 0)


def _post_op(activation: nn.Module | None) -> tuple[str, list[float], str] | None:
    """oneDNN's post-op (name, scalars, algorithm) for ``activation``, or None where it has none."""
    kind = type(activation)
    if activation is None or kind is nn.Identity:
        return "none", [], ""
    if kind is nn.GELU:
        return "gelu", [], activation.approximate  # "none" is the exact erf GELU
    if kind is nn.LeakyReLU:
        return "leaky_relu", [activation.negative_slope], ""
    if kind is nn.ReLU:
        return "relu", [], ""
    return None


def _hooked(*modules: nn.Module | None) -> bool:
    """Whether a module call would run hooks (its own or global ones): then it must be called."""
    if torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks:
        return True
    return any(m is not None and (m._forward_hooks or m._forward_pre_hooks) for m in modules)


def _plain(y: Tensor, activation: nn.Module | None) -> Tensor:
    return y if activation is None else activation(y)


def linear(x: Tensor, layer: nn.Linear, activation: nn.Module | None = None) -> Tensor:
    """``activation(layer(x))`` on (..., in_features) -> (..., out_features); one oneDNN pass
    (bias and activation fused) when :func:`fusable` and the activation is GELU, (leaky) ReLU
    or None, else the plain modules. Only a plain ``nn.Linear`` is fused (a subclass may change
    what its forward computes), and only without forward hooks on it or its activation (they
    must fire)."""
    post = _post_op(activation)
    if (post is not None and type(layer) is nn.Linear and layer.bias is not None and fusable(x)
            and not _hooked(layer, activation)):
        return _KERNELS[0](x, layer.weight, layer.bias, *post)  # type: ignore[index,operator]
    return _plain(layer(x), activation)


def conv2d(x: Tensor, layer: nn.Conv2d, activation: nn.Module | None = None) -> Tensor:
    """``activation(layer(x))`` on (B, C, H, W); one oneDNN pass when :func:`fusable`, the conv
    is a plain zero-padded ``nn.Conv2d`` with a bias and the activation fuses (see :func:`linear`),
    else the plain modules. The output keeps the input's memory format."""
    post = _post_op(activation)
    if (post is not None and type(layer) is nn.Conv2d and layer.bias is not None and layer.padding_mode == "zeros"
            and not isinstance(layer.padding, str) and fusable(x) and not _hooked(layer, activation)):
        return _KERNELS[1](x, layer.weight, layer.bias, list(layer.padding), list(layer.stride),  # type: ignore[index,operator]
                           list(layer.dilation), layer.groups, *post)
    return _plain(layer(x), activation)
