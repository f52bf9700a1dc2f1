"""Neighbor2Neighbor under a wall-clock budget, scored on Kodak24 with the paper's protocol
(run by hand; prints figures).

1. Training: ``options/neighbor2neighbor/train/n2n_gauss25.yml`` (UNet F=48, batch 4 of 256x256 crops, Adam 3e-4,
   the N2N step with its regulariser ramp) on clean photos that are not Kodak24 (default:
   ../shared/data/photos plus scikit-image's bundled photographs), with synthetic sigma-25
   noise. The recipe's 100 "epochs" are compressed into the budget: ten timed iterations
   estimate how many fit, then the lr milestones (19/39/59/79 %) and the ramp follow that
   length, and training stops at the budget whatever the estimate said.
2. Scoring on Kodak24 with protocol ``n2n`` (N2N's numpy noise stream, reflect padding to a
   32-multiple square, output rounded half up), next to the noisy input, OpenCV's
   fastNlMeansDenoisingColored at its best h for sigma 25 (searched on four images; OpenCV
   needs uint8, so its input is the noisy image rounded) and the paper's 32.08 / 0.879.
3. Throughput of the N2N step: iterations/s, megapixels/s and the share of time spent waiting
   for data, from the run's log.

    python benchmarks/n2n_budget.py --minutes 20 [--repeat 10] [--residual] [--device cpu] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PAPER = (32.08, 0.879)  # Table 1, Gaussian sigma 25, Kodak (neighbor2neighbor.md §8)
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right", "hubble_deep_field",
                  "immunohistochemistry", "colorwheel", "retina", "logo")


def training_folder(workdir: Path) -> Path:
    """../shared/data/photos plus scikit-image's colour photos (>= 256 px), as PNG files."""
    import cv2
    from skimage import data

    folder = workdir / "train"
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted((SHARED / "photos").iterdir()):
        image = cv2.imread(str(path))
        if image is not None and min(image.shape[:2]) >= 256:
            cv2.imwrite(str(folder / f"photos_{path.stem}.png"), image)
    for name in SKIMAGE_PHOTOS:
        try:
            image = getattr(data, name)()
        except Exception:  # some bundled images need optional downloads; skip those
            continue
        if image.ndim == 3 and image.shape[2] in (3, 4) and min(image.shape[:2]) >= 256:
            cv2.imwrite(str(folder / f"skimage_{name}.png"), cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2BGR))
    return folder


def train(args: argparse.Namespace, folder: Path, workdir: Path) -> tuple[Path, dict]:
    from restore.config import load_options
    from restore.engine.callbacks import Callback
    from restore.engine.trainer import Trainer

    def options(total: int, name: str) -> object:
        m = [int(total * f) for f in (0.19, 0.39, 0.59, 0.79)]
        opts = load_options(ROOT / "options/neighbor2neighbor/train/n2n_gauss25.yml", [
            f"name={name}", f"device={args.device}", f"path.experiments_root={workdir / 'experiments'}",
            f"datasets.train.root={folder}", f"datasets.train.num_workers={args.workers}",
            f"train.total_iter={total}", f"train.step.epoch_length={max(1, total // 100)}",
            f"train.log_every={min(10, max(1, total // 2))}", f"train.scheduler.milestones=[{m[0]}, {m[1]}, {m[2]}, {m[3]}]",
            f"train.save_every={total}", f"network.residual={str(args.residual).lower()}",
        ])
        opts.datasets.val = {}  # scored below, once, with baselines beside it
        return opts

    class Budget(Callback):
        def __init__(self, seconds: float) -> None:
            self.seconds, self.start = seconds, time.perf_counter()

        def on_iteration_end(self, trainer: Trainer, logs: dict) -> None:
            if time.perf_counter() - self.start > self.seconds:
                trainer.stop_requested = True

    probe = Trainer(options(12, "n2n_probe"), tensorboard=False)
    probe.fit()
    probe_rows = [json.loads(line) for line in (probe.exp.root / "log.jsonl").read_text().splitlines()]
    per_iter = 1.0 / [r["train/it_per_s"] for r in probe_rows if "train/it_per_s" in r][-1]  # after start-up
    total = max(20, int(args.minutes * 60 / per_iter))
    print(f"probe: {per_iter:.2f} s/iteration -> planning {total} iterations")

    trainer = Trainer(options(total, "n2n_budget"), callbacks=[Budget(args.minutes * 60)], tensorboard=False)
    t0 = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - t0
    rows = [json.loads(line) for line in (trainer.exp.root / "log.jsonl").read_text().splitlines()]
    rates = [r["train/it_per_s"] for r in rows if "train/it_per_s" in r][1:]  # first window includes start-up
    waits = [r["train/data_wait"] for r in rows if "train/data_wait" in r][1:]
    stats = {"iterations": trainer.iteration, "seconds": seconds, "it_per_s": float(np.mean(rates)) if rates else math.nan,
             "data_wait": float(np.mean(waits)) if waits else math.nan}
    stats["mp_per_s"] = stats["it_per_s"] * 4 * 256 * 256 / 1e6
    weights = workdir / "n2n_budget_weights.pth"
    trainer.save_weights(weights)
    return weights, stats


def kodak_set(repeat: int):
    from restore.data.synthetic_noise import SyntheticNoiseDataset

    return SyntheticNoiseDataset(str(SHARED / "kodak24"), noise="gauss25", repeat=repeat, noise_stream="official", phase="test")


def score(pairs) -> tuple[float, float]:
    from restore.metrics import Evaluator

    ev = Evaluator("n2n")
    for pred, target, name in pairs:
        ev.update(pred[None], target[None], names=[name])
    s = ev.summary()
    return s["psnr"], s["ssim"]


def nlm(noisy: torch.Tensor, h: float) -> torch.Tensor:
    import cv2

    u8 = np.clip(np.rint(noisy.permute(1, 2, 0).numpy() * 255), 0, 255).astype(np.uint8)
    out = cv2.fastNlMeansDenoisingColored(u8, None, h, h, 7, 21)
    return torch.from_numpy(out.astype(np.float32) / 255).permute(2, 0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget (wall clock)")
    parser.add_argument("--repeat", type=int, default=10, help="Kodak repeats (the paper: 10)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--residual", action="store_true",
                        help="not the paper: the UNet predicts the noise (network.residual), which short runs need")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="n2n_budget_"))

    folder = training_folder(workdir)
    n_train = len(list(folder.glob("*.png")))
    print(f"training images: {n_train} in {folder} (not Kodak24)")
    weights, stats = train(args, folder, workdir)
    print(f"trained {stats['iterations']} iterations in {stats['seconds'] / 60:.1f} min: {stats['it_per_s']:.3f} it/s, "
          f"{stats['mp_per_s']:.3f} MP/s of 256x256 crops, data wait {100 * stats['data_wait']:.1f} %")

    from restore.archs.n2n_unet import N2NUNet
    from restore.engine.checkpoint import load_weights
    from restore.engine.inference import Restorer

    net = N2NUNet(pad_square=True, residual=args.residual)
    load_weights(net, weights)
    restorer = Restorer(net.eval(), device=args.device)
    data = kodak_set(args.repeat)
    t0 = time.perf_counter()
    samples = [data[i] for i in range(len(data))]
    restored = [(restorer(s["input"][None])[0].cpu(), s["target"], s["name"]) for s in samples]
    model = score(restored)
    print(f"scored {len(samples)} Kodak images (x{args.repeat}) in {time.perf_counter() - t0:.0f} s")
    noisy = score((s["input"], s["target"], s["name"]) for s in samples)

    first = samples[:4]
    best_h = max((8, 10, 12, 14, 16, 18), key=lambda h: score((nlm(s["input"], h), s["target"], s["name"]) for s in first)[0])
    t0 = time.perf_counter()
    nl = score((nlm(s["input"], best_h), s["target"], s["name"]) for s in samples)
    nl_seconds = time.perf_counter() - t0

    print(f"\nKodak24, Gaussian sigma 25, protocol n2n (x{args.repeat}, official noise stream)")
    print("| method | PSNR (dB) | SSIM |\n|---|---:|---:|")
    print(f"| noisy input | {noisy[0]:.2f} | {noisy[1]:.4f} |")
    print(f"| OpenCV fastNlMeansDenoisingColored (h = hColor = {best_h}, 7/21; {nl_seconds / len(samples):.2f} s/image) "
          f"| {nl[0]:.2f} | {nl[1]:.4f} |")
    variant = ", residual" if args.residual else ""
    print(f"| N2N, this run{variant} ({stats['iterations']} it, {stats['seconds'] / 60:.1f} min, {n_train} photos) "
          f"| {model[0]:.2f} | {model[1]:.4f} |")
    print(f"| N2N, paper (100 epochs of 44,328 ImageNet images) | {PAPER[0]:.2f} | {PAPER[1]:.3f} |")


if __name__ == "__main__":
    main()
