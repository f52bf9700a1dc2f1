"""OpenVINO: a graph compiled for the input's own shape against the same graph compiled for any
shape (run by hand; prints a Markdown table).

Why: :class:`~restore.engine.backends.openvino_backend.OpenVinoSession` compiles a graph per input
shape for the first shapes a run meets; this measures what that buys. Each architecture of
``vs_reference.py`` (same sizes, same random weights) has its core exported as ``restore`` exports
it (traced on a 128x128 crop, dynamic batch, height and width), then run three ways, interleaved
in one process (one untimed call each, median of ``--repeats``): ONNX Runtime, OpenVINO compiled
for any shape, OpenVINO compiled for this input's shape. Columns: milliseconds of each and the
fixed-shape graph's time over the any-shape one's.

    python benchmarks/openvino_shapes.py [--models uformer_t uformer_b wdnet n2n] [--precision fp32|bf16] [--repeats 5]
"""

from __future__ import annotations

import argparse

import torch
import vs_reference
from timing import interleaved

from restore.archs.contract import export_core
from restore.engine.backends.onnx_export import export_onnx
from restore.engine.backends.onnxruntime_backend import OnnxRuntimeSession
from restore.engine.backends.openvino_backend import OpenVinoSession

CPU = torch.device("cpu")


def main() -> None:
    table = vs_reference.cases()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["uformer_t", "uformer_b", "wdnet", "n2n"], choices=list(table))
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.precision} (ONNX Runtime: fp32), "
          f"median of {args.repeats} interleaved")
    print("| model | input | onnxruntime ms | openvino any shape ms | openvino fixed shape ms | fixed / any |")
    print("|---|---|---:|---:|---:|---:|")
    for name in args.models:
        case = table[name]
        model, inputs = case.setup(False)
        owner, method = export_core(model)
        graph = export_onnx(owner, method, [t[:, :, :128, :128].contiguous() for t in inputs])
        arrays = [t.numpy() for t in inputs]
        ort = OnnxRuntimeSession(graph, "fp32", CPU)
        session = OpenVinoSession(graph, args.precision, CPU)
        shapes = tuple(a.shape for a in arrays)
        any_shape, fixed = session.compile_for(None), session.compile_for(shapes)
        seconds, _ = interleaved({"ort": lambda: ort(arrays), "any": lambda: any_shape(arrays)[0],
                                  "fixed": lambda: fixed(arrays)[0]}, args.repeats)
        size = "x".join(map(str, arrays[0].shape[-2:][::-1]))
        print(f"| {case.label} | {size} | {seconds['ort'] * 1e3:.0f} | {seconds['any'] * 1e3:.0f} | "
              f"{seconds['fixed'] * 1e3:.0f} | {seconds['fixed'] / seconds['any']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
