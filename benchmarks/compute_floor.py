"""How close a network can get to zero: this CPU's best measured rates, each network's operation
count, and the fastest time those allow (run by hand; prints two Markdown tables).

Why: when the official procedure already runs its convolutions near the CPU's peak, no fp32 path
can be much faster than it without doing fewer operations, and a ratio target below that floor
cannot be met on this machine. The rates are torch's on a 2048x2048 matrix product (fp32 and
bf16) and on one 64-channel 3x3 convolution at 64x64 (fp32); the operation counts are
``torch.utils.flop_counter`` over one forward of each ``vs_reference.py`` case (same sizes);
the floor is the count over the best rate, and the reference time is measured here too (median
of ``--repeats``), so the floor is also printed as a ratio to it.

    python benchmarks/compute_floor.py [--models uformer_t uformer_b wdnet n2n] [--repeats 3]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
import vs_reference
from timing import median_seconds
from torch.utils.flop_counter import FlopCounterMode


def rates(repeats: int) -> dict[str, float]:
    """GFLOP/s of a 2048^3 matrix product (fp32, bf16) and of a 64->64 3x3 conv at 64x64 (fp32, NHWC)."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    x = torch.randn(1, 64, 64, 64).contiguous(memory_format=torch.channels_last)
    w = torch.randn(64, 64, 3, 3).contiguous(memory_format=torch.channels_last)
    matmul = 2 * 2048**3 / 1e9
    conv = 2 * 64 * 64 * 9 * 64 * 64 / 1e9
    with torch.no_grad():
        return {
            "matmul fp32": matmul / median_seconds(lambda: a @ b, repeats, False),
            "matmul bf16": matmul / median_seconds(lambda: a.bfloat16() @ b.bfloat16(), repeats, False),
            "conv3x3 fp32": conv / median_seconds(lambda: F.conv2d(x, w, padding=1), 20 * repeats, False),
        }


def main() -> None:
    table = vs_reference.cases()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["uformer_t", "uformer_b", "wdnet", "n2n"], choices=list(table))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    best = rates(args.repeats)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats}")
    print("| kernel | GFLOP/s |\n|---|---:|")
    for name, rate in best.items():
        print(f"| {name} | {rate:.0f} |")
    fp32 = max(best["matmul fp32"], best["conv3x3 fp32"])
    print("\n| model | input | GFLOP | eager forward s | reference s | fp32 floor s | floor / reference | "
          "bf16 floor / reference |\n|---|---|---:|---:|---:|---:|---:|---:|")
    for name in args.models:
        case = table[name]
        model, inputs = case.setup(False)
        reference = case.reference(model, False)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*inputs)
        gflop = counter.get_total_flops() / 1e9
        with torch.no_grad():
            own = median_seconds(lambda: model(*inputs), args.repeats, False, warmup=1)
            ref = median_seconds(lambda: reference(*inputs), args.repeats, False, warmup=1)
        size = "x".join(map(str, inputs[0].shape[-2:][::-1]))
        print(f"| {case.label} | {size} | {gflop:.1f} | {own:.3f} | {ref:.3f} | {gflop / fp32:.3f} | "
              f"{gflop / fp32 / ref:.2f} | {gflop / best['matmul bf16'] / ref:.2f} |", flush=True)


if __name__ == "__main__":
    main()
