"""Does TAPE-R's task-agnostic pre-training help Gaussian denoising on a small CPU budget?
(run by hand; prints figures).

Two runs with the same network (TAPE-R, about 1.07 M parameters) and the same total number of
iterations, on clean photos that are not Kodak24 (../shared/data/photos):

* two stages: ``--stage1`` iterations of ``options/tape/train/tape_r_pretrain.yml`` on a mixture of
  five synthetic degradations of the photos (Gaussian sigma 5-50, rain, haze, low light, blur;
  no task identities, prior-consistency loss), then ``--stage2`` iterations of
  ``options/tape/train/tape_r_denoise.yml`` on sigma-25 noise, starting from stage 1 by its
  ``path.transfer`` rules;
* baseline: ``--stage1 + --stage2`` iterations of the denoising recipe from scratch.

Both are scored on Kodak24 with sigma-25 noise seeded per image (protocol ``basicsr``), next to
the noisy input. The recipes' schedules, losses and optimisers are kept; crops, batch and
iteration counts are scaled down to fit a CPU (``--crop``, ``--batch``).

    python benchmarks/tape_pretrain_gain.py [--stage1 300] [--stage2 300] [--crop 64] [--batch 8] [--images 24]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DEGRADATIONS = ("gauss5_50", "rain", "haze", "lowlight", "blur")


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def stage_files(work: Path, args: argparse.Namespace) -> dict[str, Path]:
    photos = SHARED / "photos"
    crop, batch = args.crop, args.batch
    sources = "\n".join(
        f"      - {{type: degraded_folder, root: {photos}, degradation: {d}, crop_size: {crop}, flip_rotate: true, weight: 1}}"
        for d in DEGRADATIONS
    )
    common = f"device: {args.device}\n"
    denoise_data = f"""datasets:
  train: {{type: synthetic_noise, root: {photos}, noise: gauss25, crop_size: {crop}, flip_rotate: true,
          batch_size: {batch}, num_workers: 1}}
"""
    return {
        "stage1": write(work / "stage1.yml", f"""base: {ROOT / 'options/tape/train/tape_r_pretrain.yml'}
name: gain_stage1
{common}path: {{experiments_root: {work / 'experiments'}}}
datasets:
  train:
    type: mixture
    tag_tasks: false
    batch_size: {batch}
    num_workers: 1
    sources:
{sources}
train: {{total_iter: {args.stage1}, amp: null, scheduler: {{warmup_iter: {args.stage1 // 10}}}, save_every: {args.stage1}, log_every: 50}}
"""),
        "stage2": write(work / "stage2.yml", f"""base: {ROOT / 'options/tape/train/tape_r_denoise.yml'}
name: gain_stage2
{common}{denoise_data}train: {{total_iter: {args.stage2}, amp: null, scheduler: {{warmup_iter: {args.stage2 // 10}}}, save_every: {args.stage2}, log_every: 50}}
path:
  pretrained: {work / 'experiments/gain_stage1/models/final.pth'}
  experiments_root: {work / 'experiments'}
"""),  # noqa: E501
        "baseline": write(work / "baseline.yml", f"""base: {ROOT / 'options/tape/train/tape_r_denoise.yml'}
name: gain_baseline
{common}{denoise_data}train: {{total_iter: {args.stage1 + args.stage2}, amp: null,
        scheduler: {{warmup_iter: {(args.stage1 + args.stage2) // 10}}}, save_every: {args.stage1 + args.stage2}, log_every: 50}}
path:
  pretrained: null
  transfer: null
  experiments_root: {work / 'experiments'}
"""),
    }


def train(path: Path) -> tuple[Path, float]:
    from restore.config import load_options
    from restore.engine.trainer import Trainer

    options = load_options(path)
    options.datasets.val = {}  # scored below, once
    trainer = Trainer(options, tensorboard=False)
    t0 = time.perf_counter()
    trainer.fit()
    return trainer.exp.models / "final.pth", time.perf_counter() - t0


def score(weights: Path | None, images: int, device: str) -> tuple[float, float, float]:
    from restore.config import load_options
    from restore.data.synthetic_noise import SyntheticNoiseDataset
    from restore.engine.checkpoint import load_weights
    from restore.engine.inference import Restorer
    from restore.engine.network import build_network
    from restore.metrics import Evaluator

    data = SyntheticNoiseDataset(str(SHARED / "kodak24"), noise="gauss25", phase="test", max_images=images)
    ev = Evaluator("basicsr")
    restorer = None
    if weights is not None:
        net = build_network(load_options(ROOT / "options/tape/train/tape_r_denoise.yml"))
        load_weights(net, weights)
        restorer = Restorer(net.eval(), device=device)
    t0 = time.perf_counter()
    for i in range(len(data)):
        s = data[i]
        out = s["input"][None] if restorer is None else restorer(s["input"][None]).cpu()
        ev.update(out, s["target"][None], names=[s["name"]])
    summary = ev.summary()
    return summary["psnr"], summary["ssim"], time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage1", type=int, default=300)
    parser.add_argument("--stage2", type=int, default=300)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--images", type=int, default=24, help="Kodak24 images to score")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="tape_gain_"))
    work.mkdir(parents=True, exist_ok=True)
    files = stage_files(work, args)

    _, t1 = train(files["stage1"])
    two_stage, t2 = train(files["stage2"])
    baseline, t3 = train(files["baseline"])
    rows = [("noisy input", score(None, args.images, args.device), None),
            (f"TAPE-R, pre-train {args.stage1} + denoise {args.stage2} it", score(two_stage, args.images, args.device), t1 + t2),
            (f"TAPE-R, denoise only {args.stage1 + args.stage2} it", score(baseline, args.images, args.device), t3)]
    print(f"\nKodak24 ({args.images} images), Gaussian sigma 25 seeded per image, protocol basicsr; "
          f"crops {args.crop}, batch {args.batch}, {torch.get_num_threads()} CPU threads")
    print("| run | PSNR (dB) | SSIM | training time | scoring time |\n|---|---:|---:|---:|---:|")
    for label, (psnr, ssim, seconds), train_s in rows:
        t = "-" if train_s is None else f"{train_s / 60:.1f} min"
        print(f"| {label} | {psnr:.2f} | {ssim:.4f} | {t} | {seconds:.0f} s |")


if __name__ == "__main__":
    main()
