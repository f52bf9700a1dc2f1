"""What restore.archs.fused_cpu gains: each network's torch path with the fused oneDNN kernels
against the same path with them switched off, interleaved in one process (run by hand).

Same ``Restorer``, weights and inputs as ``vs_reference.py``; only ``fused_cpu._KERNELS`` is
toggled between calls, so the ratio isolates the fusion (bias + activation written by the
product). Medians of ``--repeats`` after one untimed call each.

    python benchmarks/fused_cpu_gain.py [--models n2n uformer_t uformer_b wdnet] [--repeats 7]
"""

from __future__ import annotations

import argparse

import torch
from timing import interleaved
from vs_reference import cases, restorer_for

from restore.archs import fused_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["n2n", "uformer_t", "uformer_b", "wdnet"], choices=list(cases()))
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    kernels = fused_cpu._KERNELS
    if kernels is None:
        raise SystemExit("this PyTorch build has no oneDNN fused kernels")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats} interleaved")
    print("| model | fused ms | plain ms | fused / plain | max abs diff |\n|---|---:|---:|---:|---:|")
    table = cases()
    for name in args.models:
        model, inputs = table[name].setup(False)
        restorer = restorer_for(model, "torch", "fp32")
        assert not isinstance(restorer, str), restorer

        def run(on: bool, r=restorer, i=inputs) -> torch.Tensor:  # noqa: ANN001
            fused_cpu._KERNELS = kernels if on else None
            try:
                return r(*i)
            finally:
                fused_cpu._KERNELS = kernels

        seconds, out = interleaved({"fused": lambda: run(True), "plain": lambda: run(False)}, args.repeats)
        diff = (out["fused"] - out["plain"]).abs().max().item()
        print(f"| {table[name].label} | {seconds['fused'] * 1e3:.0f} | {seconds['plain'] * 1e3:.0f} | "
              f"{seconds['fused'] / seconds['plain']:.2f} | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
