"""Does exporting Uformer's linear layers as 2-D ``Gemm`` speed up ONNX Runtime? (run by hand)

nn.Linear on ``(B, N, C)`` tokens exports as ``MatMul`` + ``Add``; on ``(B*N, C)`` it exports as
``Gemm`` with the bias fused. This builds both graphs of the same random-weight network at
256x256, checks that they agree, and times them interleaved (median of 5 after one untimed run).
Measured 2026-12-06 on the project's idle 2-core machine, Uformer-T, 2 threads, three runs: 0.969 s
either way (ratio 1.00), then Gemm / MatMul + Add 1.08 and 1.05, so restore keeps the plain export.

    python benchmarks/uformer_gemm_export.py [t|b]
"""

from __future__ import annotations

import collections
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
from timing import interleaved
from torch import Tensor, nn

from restore.engine.backends.onnx_export import export_onnx
from restore.methods.uformer.arch import UformerB, UformerT


class TokensAsRows(nn.Module):
    """A linear layer applied to ``(..., C)`` as one ``(rows, C)`` matrix (exports as Gemm)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.linear = linear

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        return self.linear(x.reshape(-1, shape[-1])).reshape(*shape[:-1], self.linear.out_features)


def as_rows(module: nn.Module) -> None:
    """Wrap every nn.Linear below ``module`` in place."""
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            setattr(module, name, TokensAsRows(child))
        else:
            as_rows(child)


def main() -> None:
    torch.set_num_threads(2)
    arch = {"t": UformerT, "b": UformerB}[sys.argv[1] if len(sys.argv) > 1 else "t"]
    torch.manual_seed(0)
    plain = arch().eval()
    torch.manual_seed(0)
    rows = arch().eval()
    as_rows(rows)
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        print("torch outputs differ by", (plain(x) - rows(x)).abs().max().item())
    sessions = {}
    for name, net in (("MatMul + Add", plain), ("Gemm", rows)):
        graph = export_onnx(net, "forward", [x])
        ops = collections.Counter(n.op_type for n in onnx.load_from_string(graph).graph.node)
        print(f"{name}: {ops['Gemm']} Gemm, {ops['MatMul']} MatMul nodes")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        sessions[name] = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    feed = {"input0": x.numpy()}
    seconds, outputs = interleaved({k: lambda s=s: s.run(None, feed)[0] for k, s in sessions.items()}, 5)
    a, b = seconds["MatMul + Add"], seconds["Gemm"]
    print("graphs differ by", float(np.abs(outputs["MatMul + Add"] - outputs["Gemm"]).max()))
    print(f"median s: MatMul + Add {a:.3f}, Gemm {b:.3f}; Gemm / MatMul + Add {b / a:.2f}")


if __name__ == "__main__":
    main()
