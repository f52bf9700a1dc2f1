"""The quickstart model against OpenCV non-local means on Kodak24, Gaussian sigma 25, on the same
noisy images (run by hand; prints a Markdown table).

Held out: the quickstart trains on twelve scikit-image photographs; Kodak24 is never used for
training or model selection. The noisy images are restore's synthetic_noise test set of
``options/unet/test/denoise_gauss25_unet.yml`` (Kodak24 from ../shared/data, sigma 25, noise
seeded per image name), with ``quantize: true``: rounded to 8 bits and clipped, as a saved noisy
photo is and as OpenCV's non-local means needs (uint8). Both are scored by restore's evaluator
under the ``basicsr`` protocol (output rounded to uint8, RGB PSNR, Gaussian SSIM per channel).

Non-local means: ``cv2.fastNlMeansDenoisingColored(bgr_uint8, None, h, hColor=h,
templateWindowSize=7, searchWindowSize=21)`` with h = 16 by default (the image is passed in
OpenCV's BGR order, which its colour conversion assumes).

    restore quickstart
    python benchmarks/quickstart_vs_nlm.py [--weights quickstart/experiments/quickstart_denoise/models/final.pth]
        [--data ../shared/data/kodak24] [--h 16]
"""

from __future__ import annotations

import argparse
import time

import kodak_denoise
import numpy as np
import torch
from torch import nn


class NonLocalMeans(nn.Module):
    """OpenCV's coloured non-local means as a network: (B, 3, H, W) RGB in [0, 1] -> the same."""

    def __init__(self, h: float) -> None:
        super().__init__()
        self.h = h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import cv2

        out = []
        for image in x.detach().cpu():
            rgb = np.clip(np.rint(image.permute(1, 2, 0).numpy() * 255), 0, 255).astype(np.uint8)
            bgr = np.ascontiguousarray(rgb[..., ::-1])
            clean = cv2.fastNlMeansDenoisingColored(bgr, None, self.h, self.h, 7, 21)[..., ::-1]
            out.append(torch.from_numpy(clean.astype(np.float32) / 255).permute(2, 0, 1))
        return torch.stack(out).to(x.device)


def main() -> None:
    from restore.engine.evaluate import evaluate
    from restore.engine.inference import Restorer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    kodak_denoise.add_arguments(parser)
    parser.add_argument("--h", type=float, default=16.0, help="NLM filter strength (h = hColor)")
    args = parser.parse_args()
    loaded = kodak_denoise.load(args)
    options, spec, dataset, ctx, model = loaded.options, loaded.spec, loaded.dataset, loaded.ctx, loaded.model
    restorer = Restorer.from_options(model.eval(), options.infer, ctx.device)

    t0 = time.perf_counter()
    ours = evaluate(restorer, dataset, spec, ctx, score_input=True)
    t1 = time.perf_counter()
    nlm = evaluate(Restorer(NonLocalMeans(args.h), device=ctx.device), dataset, spec, ctx)
    t2 = time.perf_counter()
    n = len(dataset)
    noisy = ours.input_summary
    print(f"\nKodak24 ({n} images), Gaussian sigma 25, noisy input rounded to 8 bits, protocol {spec.protocol}")
    print("| method | PSNR (dB) | SSIM | s/image |\n|---|---:|---:|---:|")
    print(f"| noisy input | {noisy['psnr']:.2f} | {noisy['ssim']:.4f} | |")
    print(f"| OpenCV fastNlMeansDenoisingColored (h = hColor = {args.h:g}, 7, 21) | {nlm.summary['psnr']:.2f} | "
          f"{nlm.summary['ssim']:.4f} | {(t2 - t1) / n:.2f} |")
    print(f"| quickstart model ({args.weights}) | {ours.summary['psnr']:.2f} | {ours.summary['ssim']:.4f} | "
          f"{(t1 - t0) / n:.2f} |")


if __name__ == "__main__":
    main()
