"""Time to score a test set under each protocol (run by hand; prints figures).

Scores Kodak24 (from ../shared/data, or --gt DIR) against a noisy copy (Gaussian sigma 25,
rounded to uint8, seed 0), timing the evaluator alone (images already in memory) and the whole
`restore score` command for the default protocol.

    python benchmarks/score_speed.py [--gt DIR] [--protocols basicsr sidd_matlab ...] [--device cuda]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from restore.data.image_io import list_images, read_image, write_image
from restore.metrics import PROTOCOLS, Evaluator

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gt", default=str(ROOT.parent / "shared" / "data" / "kodak24"))
    parser.add_argument("--protocols", nargs="+", default=[n for n, p in PROTOCOLS.items() if p.shadow is None and "lpips" not in p.metrics])  # noqa: E501
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    paths = list_images(args.gt)
    gts = [read_image(p) for p in paths]
    preds = [np.clip(np.rint(g + rng.normal(0, 25, g.shape)), 0, 255).astype(np.uint8) for g in gts]
    to_t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].to(args.device)  # noqa: E731
    megapixels = sum(g.shape[0] * g.shape[1] for g in gts) / 1e6
    print(f"{len(gts)} images ({megapixels:.1f} MP) from {args.gt}, device {args.device}, "
          f"{torch.get_num_threads()} threads")
    print("| protocol | metrics | seconds | images/s |\n|---|---|---:|---:|")
    for name in args.protocols:
        ev = Evaluator(name, device=args.device)
        start = time.perf_counter()
        for pred, gt in zip(preds, gts):
            ev.update(to_t(pred), to_t(gt))
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        print(f"| {name} | {'+'.join(ev.metrics)} | {seconds:.2f} | {len(gts) / seconds:.1f} |")

    with tempfile.TemporaryDirectory() as tmp:
        for path, pred in zip(paths, preds):
            write_image(Path(tmp) / "pred" / path.name, pred)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "restore.cli.main", "score", "--pred", f"{tmp}/pred",
                        "--gt", args.gt, "--csv", f"{tmp}/s.csv"], check=True, capture_output=True)
        print(f"\n`restore score --protocol basicsr` end to end (process start, reading PNGs, "
              f"PSNR+SSIM, CSV): {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
