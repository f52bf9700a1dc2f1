"""Peak memory and time of tiled versus whole-image inference (run by hand; prints figures).

Restores a 16-megapixel random image (3x4000x4000) with the N2N UNet (n_feature 48, random
init) tiled at 512 with overlap 32, and a 2-megapixel one (3x1600x1250) untiled, each in a fresh
subprocess so that the peak resident set size (``ru_maxrss``; tracemalloc does not see torch's
allocations) belongs to that case alone. The figure that matters is the growth from before the
call (model and input built) to the peak: tiled it is the output plus a few tiles, untiled it is
every full-resolution activation.

    python benchmarks/tile_memory.py [--tile 512] [--overlap 32] [--tile-batch 4] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from restore.archs.n2n_unet import N2NUNet
from restore.engine.inference import Restorer


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _case(args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    model = N2NUNet(n_feature=48).to(args.device)
    x = torch.rand(1, 3, args.height, args.width)
    restorer = Restorer(model, tile=args.tile or None, tile_overlap=args.overlap, tile_batch=args.tile_batch, device=args.device)
    before = _rss_mib()
    start = time.perf_counter()
    out = restorer(x)
    if out.is_cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = _rss_mib()
    figures = {"size": f"{args.height}x{args.width}", "megapixels": args.height * args.width / 1e6, "tile": args.tile or None,
               "seconds": round(seconds, 1), "rss_before_mib": round(before), "rss_peak_mib": round(peak),
               "growth_mib": round(peak - before), "output_mib": round(out.numel() * 4 / 2**20)}
    if out.is_cuda:
        figures["cuda_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--tile-batch", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--height", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--width", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.height is not None:  # one case, in this subprocess
        print(json.dumps(_case(args)))
        return

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    cases = [("16 MP tiled", 4000, 4000, args.tile), ("2 MP untiled", 1600, 1250, 0)]
    for label, h, w, tile in cases:
        cmd = [sys.executable, __file__, "--height", str(h), "--width", str(w), "--tile", str(tile),
               "--overlap", str(args.overlap), "--tile-batch", str(args.tile_batch), "--device", args.device]
        f = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        extra = f", CUDA peak {f['cuda_peak_mib']} MiB" if "cuda_peak_mib" in f else ""
        print(f"{label:>13}: {f['size']} ({f['megapixels']:.1f} MP) in {f['seconds']:.1f} s, RSS {f['rss_before_mib']} MiB before, "
              f"peak {f['rss_peak_mib']} MiB (+{f['growth_mib']} MiB; output itself {f['output_mib']} MiB){extra}")


if __name__ == "__main__":
    main()
