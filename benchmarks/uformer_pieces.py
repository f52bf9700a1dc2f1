"""Uformer's in-piece CPU inference against one piece: peak memory and time on a large image
(run by hand; prints a table).

Each case runs in a fresh subprocess so that its peak resident set size (``ru_maxrss``) is its
own: Uformer-T (random init) on one ``--side`` x ``--side`` image without tiling, eval mode,
``torch.inference_mode``, once with restore's default ``PIECE_BYTES`` (8 MiB) and once with the
pieces switched off (a budget larger than any tensor). The figure that matters is the growth from
before the forward (model and input built) to the peak; both cases also print the median of
``--repeats`` forwards and the outputs' max difference.

    python benchmarks/uformer_pieces.py [--side 1024] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(side: int, repeats: int, pieces: bool, out_path: str) -> None:
    import torch

    from restore.archs import window_attention
    from restore.methods.uformer.arch import UformerT

    if not pieces:
        window_attention.PIECE_BYTES = 2**62
    torch.manual_seed(0)
    model = UformerT().eval()
    x = torch.rand(1, 3, side, side)
    before = _rss_mib()
    times = []
    with torch.inference_mode():
        for _ in range(repeats):
            start = time.perf_counter()
            y = model(x)
            times.append(time.perf_counter() - start)
    torch.save(y, out_path)
    print(json.dumps({"growth": _rss_mib() - before, "seconds": statistics.median(times)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=1024, help="image side, a multiple of 128")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=["pieces", "whole"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.side, args.repeats, args.child == "pieces", args.out)
        return
    import tempfile

    import torch

    print(f"Uformer-T, 1x3x{args.side}x{args.side}, no tiling, median of {args.repeats} forwards, fresh process each")
    print("| case | peak RSS growth MiB | s / forward |\n|---|---:|---:|")
    outputs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in ("pieces", "whole"):
            path = f"{tmp}/{case}.pt"
            run = subprocess.run([sys.executable, __file__, "--child", case, "--side", str(args.side),
                                  "--repeats", str(args.repeats), "--out", path],
                                 capture_output=True, text=True, check=True)
            figures = json.loads(run.stdout.strip().splitlines()[-1])
            outputs[case] = torch.load(path)
            label = "in pieces of 8 MiB (default)" if case == "pieces" else "one piece"
            print(f"| {label} | {figures['growth']:.0f} | {figures['seconds']:.2f} |", flush=True)
    print(f"max abs difference: {(outputs['pieces'] - outputs['whole']).abs().max().item():.1e}")


if __name__ == "__main__":
    main()
