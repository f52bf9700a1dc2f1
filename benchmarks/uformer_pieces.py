"""Uformer's in-piece CPU inference against one piece: peak memory and time on a large image
(run by hand; prints a table).

Uformer-T (random init) on one ``--side`` x ``--side`` image without tiling, eval mode,
``torch.inference_mode``, with restore's default ``PIECE_BYTES`` (8 MiB) and with the pieces
switched off (a budget larger than any tensor). Memory: each case runs one forward in a fresh
subprocess, so that its peak resident set size (``ru_maxrss``) is its own; the figure that matters
is the growth from before the forward (model and input built) to the peak. Time: the two cases
alternate in this process (``PIECE_BYTES`` toggled between forwards), median of ``--repeats``
after one untimed call each, and their ratio; also the outputs' max difference.

    python benchmarks/uformer_pieces.py [--side 1024] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

from restore.archs.window_attention import PIECE_BYTES as DEFAULT_PIECE_BYTES  # before any toggling


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def uformer_t(side: int):  # noqa: ANN201
    import torch

    from restore.methods.uformer.arch import UformerT

    torch.manual_seed(0)
    return UformerT().eval(), torch.rand(1, 3, side, side)


def set_pieces(on: bool) -> None:
    from restore.archs import window_attention

    window_attention.PIECE_BYTES = DEFAULT_PIECE_BYTES if on else 2**62


def child(side: int, pieces: bool) -> None:
    """One forward in this fresh process; prints its peak RSS growth in MiB."""
    import torch

    set_pieces(pieces)
    model, x = uformer_t(side)
    before = _rss_mib()
    with torch.inference_mode():
        model(x)
    print(json.dumps({"growth": _rss_mib() - before}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=1024, help="image side, a multiple of 128")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=["pieces", "whole"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.side, args.child == "pieces")
        return
    import torch
    from timing import interleaved

    growth = {}
    for case in ("pieces", "whole"):
        run = subprocess.run([sys.executable, __file__, "--child", case, "--side", str(args.side)],
                             capture_output=True, text=True, check=True)
        growth[case] = json.loads(run.stdout.strip().splitlines()[-1])["growth"]
    model, x = uformer_t(args.side)

    def forward(pieces: bool) -> torch.Tensor:
        set_pieces(pieces)
        try:
            return model(x)
        finally:
            set_pieces(True)

    with torch.inference_mode():
        seconds, out = interleaved({"pieces": lambda: forward(True), "whole": lambda: forward(False)}, args.repeats)
    print(f"Uformer-T, 1x3x{args.side}x{args.side}, no tiling; time: median of {args.repeats} interleaved in one "
          f"process; memory: one forward per fresh process, {torch.get_num_threads()} threads")
    print("| case | peak RSS growth MiB | s / forward |\n|---|---:|---:|")
    print(f"| in pieces of 8 MiB (default) | {growth['pieces']:.0f} | {seconds['pieces']:.2f} |")
    print(f"| one piece | {growth['whole']:.0f} | {seconds['whole']:.2f} |")
    print(f"pieces / one piece: time {seconds['pieces'] / seconds['whole']:.2f}, "
          f"max abs difference {(out['pieces'] - out['whole']).abs().max().item():.1e}")


if __name__ == "__main__":
    main()
