"""What an approximate precision costs in PSNR: the quickstart denoiser on Kodak24 at each backend
and precision (run by hand; prints a Markdown table).

The fast-inference issue asks for bf16 speed with "the PSNR change on Kodak24 printed"; random
weights (``vs_reference.py``) give a speed but no meaningful PSNR, so this scores a trained model:
the quickstart's residual N2N UNet (``restore quickstart``, a few minutes on a CPU). The noisy
images are those of ``quickstart_vs_nlm.py``: restore's synthetic_noise test set of
``options/unet/test/denoise_gauss25_unet.yml`` (Kodak24, Gaussian sigma 25, noise seeded per
image, rounded to 8 bits), scored by restore's evaluator under the ``basicsr`` protocol, exactly
as ``restore test --backend B --precision P --allow-approximate`` would score them.

Each setting runs the same weights through ``Restorer.from_options`` with ``infer.backend`` and
``infer.precision`` replaced, on a copy prepared as ``restore test`` prepares it. Rows: PSNR,
SSIM, the PSNR change against torch fp32, the share of 8-bit output values (as ``restore infer``
writes them) that differ from torch fp32's on the first ``--moved-images`` images and the largest
difference in levels, and seconds per image (the whole evaluation, including the first image's export and compile for the
exported backends). A backend or precision this machine cannot run is a row that says why.

    restore quickstart
    python benchmarks/precision_psnr.py [--weights quickstart/experiments/quickstart_denoise/models/final.pth]
        [--settings torch:fp32 torch:bf16 openvino:fp32 openvino:bf16] [--max-images N]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import time

import kodak_denoise
import torch

DEFAULT_SETTINGS = ["torch:fp32", "torch:bf16", "onnxruntime:fp32", "openvino:fp32", "openvino:bf16"]


def main() -> None:
    from restore.engine.batch_image import to_array
    from restore.engine.evaluate import evaluate
    from restore.engine.inference import Restorer
    from restore.engine.torch_speed import prepare_for_inference
    from restore.errors import RestoreError

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    kodak_denoise.add_arguments(parser)
    parser.add_argument("--settings", nargs="+", default=DEFAULT_SETTINGS,
                        help="backend:precision pairs; the first is the baseline of the change column")
    parser.add_argument("--moved-images", type=int, default=6, help="images whose 8-bit outputs are compared")
    args = parser.parse_args()
    loaded = kodak_denoise.load(args)
    options, spec, dataset, ctx, model = loaded.options, loaded.spec, loaded.dataset, loaded.ctx, loaded.model

    n = len(dataset)
    print(f"Kodak24 ({n} images; 8-bit values compared on the first {min(args.moved_images, n)}), "
          f"Gaussian sigma 25, noisy input rounded to 8 bits, protocol {spec.protocol}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| backend | precision | PSNR (dB) | SSIM | PSNR change | 8-bit values moved | max levels | s/image |\n"
          "|---|---|---:|---:|---:|---:|---:|---:|")
    baseline, codes0 = None, None
    samples = [dataset[i]["input"][None] for i in range(min(args.moved_images, n))]
    for setting in args.settings:
        backend, _, precision = setting.partition(":")
        infer = dataclasses.replace(options.infer, backend=backend, precision=precision or "fp32")
        try:
            own = prepare_for_inference(copy.deepcopy(model), infer, ctx.device)
            restorer = Restorer.from_options(own, infer, ctx.device)
            start = time.perf_counter()
            summary = evaluate(restorer, dataset, spec, ctx).summary
            seconds = (time.perf_counter() - start) / n
            with torch.no_grad():
                codes = [torch.from_numpy(to_array(restorer(x)[0], 8)).to(torch.int16) for x in samples]
        except RestoreError as exc:  # a missing extra, a precision this CPU lacks: the row says so
            print(f"| {backend} | {infer.precision} | | | | skipped: {exc} |", flush=True)
            continue
        if baseline is None:
            baseline, codes0 = summary["psnr"], codes
        moved = torch.cat([(a - b).abs().flatten() for a, b in zip(codes, codes0)])
        print(f"| {backend} | {infer.precision} | {summary['psnr']:.3f} | {summary['ssim']:.4f} | "
              f"{summary['psnr'] - baseline:+.3f} | {(moved > 0).float().mean().item() * 100:.1f}% | "
              f"{int(moved.max()) if moved.numel() else 0} | {seconds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
