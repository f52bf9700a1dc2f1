"""The time a network's own products, convolutions and attention take alone, as a share of the
official procedure's time (run by hand; prints one Markdown table).

Why: a speed target "restore / reference <= r" is out of reach on this machine, for a backend,
when the kernels that backend cannot skip already take more than ``r`` times the reference, run
each alone at the network's own shapes with nothing in between (no copies, no normalisation, no
elementwise passes). ``compute_floor.py`` bounds a network by its operation count
at the best rate of one large product; this bounds it by the kernels it really calls.

* **reference**: the official procedure of ``vs_reference.py`` (same cases, sizes and random
  weights), called as ``vs_reference.py`` calls it.
* **torch kernels**: every convolution, matrix product and attention call of one forward of
  restore's ``Restorer`` (recorded through a dispatch mode, so the plain aten calls), each then
  replayed alone. A linear layer counts as the faster of ``aten.linear`` and oneDNN's fused
  linear, a 2-D convolution as the faster of ``aten.conv2d`` and oneDNN's fused one. ``bf16``:
  the same calls with their float arguments cast to bfloat16.
* **onnxruntime kernels** (fp32 only): the same graph in an ONNX Runtime session with profiling;
  the summed time of its Conv, FusedConv, NhwcConv, ConvTranspose, MatMul, FusedMatMul and Gemm
  nodes in one run (its attention stays MatMul, Softmax, MatMul: the softmax is not counted).
* **openvino kernels**: the graph restore exports, compiled by OpenVINO at that precision with
  per-node counters; the summed time of its FullyConnected, MatMul, Convolution, GroupConvolution
  and ConvolutionBackpropData nodes and of the attention subgraphs it fuses (their names hold
  ``MatMul``) in one inference.

The reference time is the median of ``--repeats`` rounds after an untimed one, as in
``vs_reference.py``; every kernel time is its best over the same rounds: each round runs the
reference once, replays every recorded call once per precision and runs each exported graph once,
so all are sampled over the same minutes (the load of this shared machine drifts over minutes).
A call in a whole forward is rarely faster than its best alone, so restore's median time on a
backend is at least about its kernel sum, and the ratio columns are (about) lower bounds of
``vs_reference.py``'s ratios. glibc's default allocator throughout, as in ``vs_reference.py`` (a
replayed call meets its own freed output of the round before, so only outputs above glibc's
32 MiB mmap ceiling fault their pages in again).

The kernel columns give those sums over the reference time, and the sums themselves in
milliseconds (so that another harness's reference time can be used); the targets are the issue's
(torch fp32 0.67, fastest fp32 0.5, fastest bf16 0.3).

    python benchmarks/kernel_floor.py [--models uformer_b wdnet] [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import vs_reference
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
#: The calls a backend cannot skip: products, convolutions, attention.
#: (In inference mode a dispatch mode sees the composite ops, ``aten.linear`` and ``aten.conv2d``,
#: before they decompose.)
KERNELS = {aten.linear.default, aten.addmm.default, aten.mm.default, aten.bmm.default, aten.matmul.default,
           aten.conv2d.default, aten.conv_transpose2d.input, aten.convolution.default,
           aten.scaled_dot_product_attention.default, aten._scaled_dot_product_flash_attention_for_cpu.default}
#: OpenVINO node types that are products or convolutions.
OV_KERNELS = {"FullyConnected", "MatMul", "Convolution", "GroupConvolution", "ConvolutionBackpropData"}
#: ONNX Runtime operators that are products or convolutions (its attention stays MatMul, Softmax, MatMul).
ORT_KERNELS = {"Conv", "FusedConv", "NhwcConv", "ConvTranspose", "MatMul", "FusedMatMul", "Gemm"}
#: aten.conv2d's arguments after (input, weight) when left out: bias, stride, padding, dilation, groups.
CONV2D_DEFAULTS = (None, None, None, 1, 0, 1, 1)
TARGETS = {"fp32": (0.67, 0.5), "bf16": (None, 0.3)}


class Recorder(TorchDispatchMode):
    """Keeps ``(op, args, kwargs)`` of every :data:`KERNELS` call made while active."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Any, tuple, dict]] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func in KERNELS:
            self.calls.append((func, args, kwargs))
        return func(*args, **kwargs)


def cast(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, Tensor) and value.is_floating_point():
        return value.to(dtype)
    if isinstance(value, (list, tuple)):
        return type(value)(cast(v, dtype) for v in value)
    return value


def pair(value: int | list[int]) -> list[int]:
    return [value, value] if isinstance(value, int) else list(value)


def alternatives(func: Any, args: tuple, kwargs: dict) -> list[Callable[[], object]]:
    """The recorded call, and oneDNN's fused equivalent where there is one (no activation)."""
    calls: list[Callable[[], object]] = [lambda: func(*args, **kwargs)]
    mkldnn = getattr(torch.ops, "mkldnn", None)
    if func is aten.linear.default and not kwargs and hasattr(mkldnn, "_linear_pointwise"):
        x, weight, bias = (*args, None)[:3]
        if x.dtype == torch.float32:
            calls.append(lambda: mkldnn._linear_pointwise(x, weight, bias, "none", [], ""))
    if func is aten.conv2d.default and not kwargs and hasattr(mkldnn, "_convolution_pointwise"):
        x, weight, bias, stride, padding, dilation, groups = (*args, *CONV2D_DEFAULTS[len(args):])
        if x.dtype == torch.float32 and not isinstance(padding, str):
            calls.append(lambda: mkldnn._convolution_pointwise(x, weight, bias, pair(padding), pair(stride), pair(dilation),
                                                               groups, "none", [], ""))
    return calls


class Replay:
    """The recorded calls at one dtype; :meth:`round` times each once (its fastest alternative),
    :attr:`best` keeps each call's best time over the rounds."""

    def __init__(self, calls: list[tuple[Any, tuple, dict]], dtype: torch.dtype) -> None:
        self.calls = [alternatives(func, cast(args, dtype), cast(kwargs, dtype)) for func, args, kwargs in calls]
        self.reset()

    def reset(self) -> None:
        self.best = [float("inf")] * len(self.calls)

    def round(self) -> None:
        with torch.inference_mode():
            for i, fns in enumerate(self.calls):
                for fn in fns:
                    start = time.perf_counter()
                    fn()
                    self.best[i] = min(self.best[i], time.perf_counter() - start)

    def total(self) -> float:
        return sum(self.best)


def exported_core(model: torch.nn.Module, inputs: tuple[Tensor, ...]) -> tuple[bytes, tuple[tuple[int, ...], ...]]:
    """The ONNX graph restore exports for ``model``'s core and the input shapes the core meets on
    ``inputs`` (after the architecture's own padding or patching), read off an openvino
    ``Restorer``: its session compiles one graph per shape it meets."""
    restorer = vs_reference.restorer_for(model, "openvino", "fp32")
    if isinstance(restorer, str):
        raise RuntimeError(restorer)
    with torch.inference_mode():
        restorer(*inputs)
    (session,) = restorer.core.sessions.values()
    return Path(restorer.core.graph_paths[-1]).read_bytes(), next(iter(session.static))


class OpenVinoKernels:
    """The graph compiled by OpenVINO for ``shapes`` at ``precision`` (pinned, as restore pins it),
    with per-node counters; :meth:`round` runs it once, :attr:`best` is the smallest summed time
    of its kernel nodes over the rounds since the last :meth:`reset`."""

    def __init__(self, graph: bytes, shapes: tuple[tuple[int, ...], ...], precision: str) -> None:
        import openvino as ov
        from openvino import properties

        from restore.engine.backends.openvino_backend import HINTS, check_precision

        check_precision(precision)
        core = ov.Core()
        model = core.read_model(graph)
        model.reshape({port.get_any_name(): list(shape) for port, shape in zip(model.inputs, shapes)})
        config = {properties.hint.inference_precision: getattr(ov.Type, HINTS[precision]),
                  properties.inference_num_threads: torch.get_num_threads(), properties.enable_profiling: True}
        self.request = core.compile_model(model, "CPU", config).create_infer_request()
        self.arrays = [torch.rand(shape).numpy() for shape in shapes]
        self.reset()

    def reset(self) -> None:
        self.best = float("inf")

    def round(self) -> None:
        self.request.infer(self.arrays)
        total = 0.0
        for node in self.request.profiling_info:
            attention = node.node_type == "Subgraph" and "MatMul" in node.node_name
            if node.status == node.Status.EXECUTED and (node.node_type in OV_KERNELS or attention):
                total += node.real_time.total_seconds()
        self.best = min(self.best, total)


class OnnxRuntimeKernels:
    """The graph in an ONNX Runtime session with profiling (its files under ``folder``);
    :meth:`round` runs it once; :meth:`best` reads the profile and returns the smallest summed
    time of its kernel nodes in one run over the rounds since the last :meth:`reset`."""

    def __init__(self, graph: bytes, shapes: tuple[tuple[int, ...], ...], folder: str) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.enable_profiling, options.profile_file_prefix = True, f"{folder}/ort"
        for pool in ("intra", "inter"):  # as restore's sessions: no busy-waiting that would slow the reference
            options.add_session_config_entry(f"session.{pool}_op.allow_spinning", "0")
        self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self.feed = {i.name: torch.rand(shape).numpy() for i, shape in zip(self.session.get_inputs(), shapes)}
        self.runs = self.skip = 0

    def reset(self) -> None:
        self.skip = self.runs

    def round(self) -> None:
        self.session.run(None, self.feed)
        self.runs += 1

    def best(self) -> float:
        events = json.loads(Path(self.session.end_profiling()).read_text())
        runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")[self.skip:]
        totals = [0.0] * len(runs)
        for e in events:
            if e.get("cat") == "Node" and e.get("args", {}).get("op_name") in ORT_KERNELS:
                for i, (begin, end) in enumerate(runs):
                    if begin <= e["ts"] <= end:
                        totals[i] += e["dur"] / 1e6
        return min(totals)


def sample_together(reference: Callable[[], object], timed: list[Replay | OpenVinoKernels], repeats: int) -> float:
    """Median reference time over ``repeats`` rounds after an untimed one; each round also runs
    every ``timed`` kernel set once (they keep their own best times)."""
    seconds = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        reference()
        seconds.append(time.perf_counter() - start)
        for kernels in timed:
            if i == 1:
                kernels.reset()  # forget the untimed round
            kernels.round()
    return statistics.median(seconds[1:])


def built(make: Callable[[], Any]) -> Any:
    """``make()``, or ``"skipped: <why>"`` where it fails (an extra not installed, no bf16 on this CPU)."""
    try:
        return make()
    except Exception as exc:  # noqa: BLE001 - the table's column says why instead
        return f"skipped: {str(exc).splitlines()[0][:80]}"


def share(kernels: float, reference: float) -> str:
    """``kernels / reference (kernels ms)``: the milliseconds let another harness's reference time be used."""
    return f"{kernels / reference:.2f} ({kernels * 1e3:.0f} ms)"


def main() -> None:
    table = vs_reference.cases()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["uformer_b", "wdnet"], choices=list(table))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny networks and sizes: checks the script only")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.repeats} rounds: reference median, kernels best")
    print("| model | input | reference ms | precision | torch kernels / reference | onnxruntime kernels / reference "
          "| openvino kernels / reference | targets (torch, fastest) |\n|---|---|---:|---|---:|---:|---:|---|")
    for name in args.models:
        case = table[name]
        model, inputs = case.setup(args.quick)
        reference = case.reference(model, args.quick)
        restorer = vs_reference.restorer_for(model, "torch", "fp32")
        assert not isinstance(restorer, str), restorer
        recorder = Recorder()
        with torch.inference_mode(), recorder:
            restorer(*inputs)
        replays = {p: Replay(recorder.calls, dtype) for p, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
        with tempfile.TemporaryDirectory() as folder:
            exported = built(lambda: exported_core(model, inputs))
            if isinstance(exported, str):
                graphs: dict[str, Any] = dict.fromkeys(("onnxruntime", *replays), exported)
            else:
                graph, shapes = exported
                graphs = {"onnxruntime": built(lambda: OnnxRuntimeKernels(graph, shapes, folder)),
                          **{p: built(lambda p=p: OpenVinoKernels(graph, shapes, p)) for p in replays}}
            timed = [*replays.values()] + [g for g in graphs.values() if not isinstance(g, str)]
            ref = sample_together(lambda r=reference, i=inputs: r(*i), timed, args.repeats)
            ort = graphs["onnxruntime"]
            ort_text = ort if isinstance(ort, str) else share(ort.best(), ref)
        size = "x".join(map(str, inputs[0].shape[-2:][::-1]))
        for precision, replay in replays.items():
            ov = graphs[precision]
            ov_text = ov if isinstance(ov, str) else share(ov.best, ref)
            torch_target, fastest = TARGETS[precision]
            print(f"| {case.label} | {size} | {ref * 1e3:.0f} | {precision} | {share(replay.total(), ref)} | "
                  f"{ort_text if precision == 'fp32' else '-'} | {ov_text} | {torch_target or '-'}, {fastest} |", flush=True)


if __name__ == "__main__":
    main()
