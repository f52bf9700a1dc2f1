"""The fused oneDNN linear/conv helpers: equal to the plain ops, and taken only in plain float32
CPU inference (never with gradients, autocast, tracing or a dispatch mode such as FlopCounterMode)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from restore.archs import fused_cpu
from restore.archs.window_attention import LeFF

pytestmark = pytest.mark.skipif(fused_cpu._KERNELS is None, reason="this PyTorch build has no oneDNN fused kernels")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the fused kernels called while the test runs."""
    seen: list[str] = []
    real_linear, real_conv = fused_cpu._KERNELS

    def spy(name, fn):  # noqa: ANN001, ANN202
        def wrapped(*args):  # noqa: ANN002, ANN202
            seen.append(name)
            return fn(*args)
        return wrapped

    monkeypatch.setattr(fused_cpu, "_KERNELS", (spy("linear", real_linear), spy("conv", real_conv)))
    return seen


@pytest.mark.parametrize("activation", [None, nn.GELU(), nn.GELU("tanh"), nn.LeakyReLU(0.2), nn.ReLU()])
def test_linear_equals_the_plain_layer(calls: list[str], activation: nn.Module | None) -> None:
    torch.manual_seed(0)
    layer = nn.Linear(24, 40)
    x = torch.randn(2, 9, 11, 24)
    plain = layer(x) if activation is None else activation(layer(x))
    with torch.no_grad():
        fused = fused_cpu.linear(x, layer, activation)
        strided = fused_cpu.linear(x.transpose(1, 2), layer, activation)  # a non-contiguous input
    assert calls == ["linear", "linear"]
    torch.testing.assert_close(fused, plain, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(strided, plain.transpose(1, 2), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("groups", [1, 16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_conv_equals_the_plain_layer_and_keeps_the_memory_format(calls: list[str], groups: int,
                                                                  channels_last: bool) -> None:
    torch.manual_seed(1)
    layer = nn.Conv2d(16, 16, 3, padding=1, groups=groups)
    x = torch.randn(1, 16, 13, 10)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        plain = F.leaky_relu(layer(x), 0.1)
        fused = fused_cpu.conv2d(x, layer, nn.LeakyReLU(0.1))
    assert calls == ["conv"]
    torch.testing.assert_close(fused, plain, atol=1e-6, rtol=1e-6)
    assert fused.is_contiguous(memory_format=torch.channels_last) == channels_last


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:FutureWarning")
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # shapes read as numbers: the export silences them too
def test_plain_ops_wherever_the_fused_kernels_do_not_belong(calls: list[str]) -> None:
    torch.manual_seed(2)
    ff = LeFF(8, 32)
    x = torch.randn(1, 6, 6, 8)
    out = ff(x)  # gradients wanted: plain ops, autograd intact
    out.sum().backward()
    assert ff.linear1[0].weight.grad is not None
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert ff(x).dtype == torch.bfloat16  # autocast's own casting rules
        with FlopCounterMode(display=False) as counter:
            ff(x)
        assert counter.get_total_flops() == 2 * 36 * (8 * 32 * 2 + 32 * 9)  # two linears and the 3x3 depthwise
        assert fused_cpu.fusable(x.double()) is False
        traced = torch.jit.trace(ff, x, check_trace=False)  # what the ONNX exporter does
    assert calls == []
    graph = str(traced.inlined_graph)
    assert "mkldnn" not in graph and "aten::gelu" in graph
    with torch.no_grad():
        torch.testing.assert_close(traced(x), ff(x), atol=1e-6, rtol=1e-6)
    assert calls == ["linear", "conv", "linear"]  # the eager call after tracing is fused again


def test_other_layers_and_activations_take_the_plain_modules(calls: list[str]) -> None:
    class Doubled(nn.Linear):  # a subclass may compute something else: never fused
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * super().forward(x)

    torch.manual_seed(3)
    x, layer, doubled = torch.randn(5, 4), nn.Linear(4, 6), Doubled(4, 6)
    doubled.load_state_dict(layer.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fused_cpu.linear(x, doubled), 2 * layer(x))
        torch.testing.assert_close(fused_cpu.linear(x, layer, nn.Tanh()), torch.tanh(layer(x)))
        seen = []
        handle = layer.register_forward_hook(lambda _m, _i, out: seen.append(out.shape))
        fused_cpu.linear(x, layer)  # a hooked layer is called, so its hook fires
        handle.remove()
    assert calls == [] and seen == [(5, 6)]
