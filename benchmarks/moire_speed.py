"""Time the synthetic moiré degradation per patch (run by hand; prints figures).

One thread for torch and OpenCV, as in a DataLoader worker; CPU time (process_time) and wall
time per patch, best of three rounds, for the ``moire`` and ``moire_strong`` presets.

    python benchmarks/moire_speed.py [--size 256] [--patches 20]
"""

from __future__ import annotations

import argparse
import time

import torch

from restore.data.degradations import parse_degradation


def main() -> None:
    import cv2

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--patches", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    clean = torch.rand(3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    for name in ("moire", "moire_strong"):
        degradation = parse_degradation(name)
        degradation(clean, torch.Generator().manual_seed(0))  # warm-up
        rounds = []
        for _ in range(3):
            cpu, wall = time.process_time(), time.perf_counter()
            for seed in range(args.patches):
                degradation(clean, torch.Generator().manual_seed(seed))
            rounds.append(((time.process_time() - cpu) / args.patches, (time.perf_counter() - wall) / args.patches))
        cpu, wall = min(rounds)
        print(f"{name:13s} {args.size}x{args.size}: {cpu * 1e3:6.1f} ms CPU, {wall * 1e3:6.1f} ms wall per patch (1 thread)")


if __name__ == "__main__":
    main()
