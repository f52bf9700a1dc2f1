"""Adaptive compute (DDA) against full width, uniform width and the plain network (run by hand; prints a table).

1. Training, on synthetic moiré (``degraded_folder`` with the ``moire`` degradation) of the photo
   pool ../shared/data/photos (not the test images):
   * a WDNet supernet (``wdnet_slim``) with ``train.step: dda``: ``--per-class`` patches of every
     moiré-prior class per iteration, class k at ``--widths[k]``;
   * the plain network (``wdnet``, same size) with the supervised step on the same number of
     patches per iteration (``len(widths) x --per-class``) for the same number of iterations
     (``--iters``: the budget, equal for both).
2. Evaluation on held-out synthetic moiré of Kodak24 and Set14 (seeded per image, phase test),
   in tiles of ``--tile`` pixels, overlap ``--overlap``, PSNR/SSIM under the ``basicsr`` protocol:
   (a) the supernet at full width; (b) DDA routing (``infer.adaptive``: tiles ranked by the moiré
   prior, equal shares per width); (c) the supernet at one uniform width whose FLOPs are closest
   to (b)'s average; (d) the plain network. FLOPs are counted (FlopCounterMode: convolutions and
   matmuls, 2 per multiply-add) per tile and summed; CPU wall time per image is the mean over
   the images, the four settings interleaved image by image so that load changes hit
   all alike; (b)'s time includes scoring its tiles.

Targets of the issue: (b) at <= 55 % of (a)'s FLOPs, >= 1.4x its speed, within 0.3 dB of (a),
and better than (c). The printout says where they are met and where not.

    python benchmarks/adaptive_compute.py [--iters 300] [--threads 2] [--degradation moire] [--workdir DIR]
    python benchmarks/adaptive_compute.py --workdir DIR --reuse [--threads 1]   # evaluate again, no training

The defaults (a light WDNet: 32 channels, 4 blocks; 300 iterations of 3 x 2 crops of 96 px) are
sized by a FLOP estimate for about 10-15 minutes on 2 idle CPU cores; the synthetic moiré's own
cost is not in that estimate. Raise ``--iters`` (and the network toward the released 64/32/7) for
figures that mean more. A smoke run with a stand-in degradation (minutes; numbers meaningless):

    python benchmarks/adaptive_compute.py --iters 3 --max-images 1 --degradation rain --channels 8 --growth 4 \\
        --dilations 1 --crop 32 --tile 64 --patches 24
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RESTORE_SHARED_DATA") or ROOT.parent / "shared" / "data")

RUN = """\
name: {name}
task: demoire
seed: 0
device: cpu
network: {{type: {arch}, channels: {channels}, growth: {growth}, dilations: {dilations}}}
datasets:
  train: {{type: degraded_folder, root: {photos}, degradation: {degradation}, crop_size: {crop}, flip_rotate: true,
           batch_size: {batch}, num_workers: {workers}}}
train:
  total_iter: {iters}
  step: {step}
  optimizer: {{type: adam, lr: {lr}}}
  scheduler: {{type: cosine}}
  losses: [{{type: l1}}]
  log_every: {log_every}
  save_every: {iters}
  val_every: 1000000000
path: {{experiments_root: {root}}}
"""


def train(args: argparse.Namespace, workdir: Path, arch: str) -> tuple[Path, float]:
    """Train one network; returns its final weights and the training wall time."""
    from restore.config import load_options
    from restore.engine.trainer import Trainer

    n = len(args.widths)
    if arch == "wdnet_slim":
        widths = "[" + ", ".join(str(w) for w in args.widths) + "]"
        step, batch = f"{{type: dda, score: {args.score}, widths: {widths}, patches: {args.patches}}}", args.per_class
    else:
        step, batch = "{type: supervised}", n * args.per_class
    text = RUN.format(name=f"adaptive_{arch}", arch=arch, channels=args.channels, growth=args.growth,
                      dilations=list(args.dilations), photos=SHARED / "photos", degradation=args.degradation,
                      crop=args.crop, batch=batch, workers=args.workers, iters=args.iters, step=step, lr=args.lr,
                      log_every=max(1, args.iters // 10), root=workdir / "experiments")
    from restore.utils.files import atomic_write

    path = atomic_write(workdir / f"{arch}.yml", text)
    trainer = Trainer(load_options(path), tensorboard=False)
    start = time.perf_counter()
    trainer.fit()
    return trainer.exp.models / "final.pth", time.perf_counter() - start


def tiles_of(h: int, w: int, tile: int, overlap: int) -> tuple[int, int, int]:
    """How many tiles the Restorer cuts an ``h`` x ``w`` image into, and their size."""
    from restore.engine.inference import tile_starts

    n = len(tile_starts(h, tile, overlap)) * len(tile_starts(w, tile, overlap))
    return n, min(tile, h), min(tile, w)


def uniform_width(net: torch.nn.Module, ratio: float, tile: int, channels: int) -> tuple[float, float]:
    """The width k / channels whose FLOPs per tile are closest to ``ratio`` x full width, and its ratio."""
    from restore.engine.adaptive import count_flops
    from restore.engine.inference import forward_padded

    shape = [(1, 3, tile, tile)]
    full = count_flops(net, forward_padded, shape, torch.device("cpu"), 1.0)
    best = (1.0, 1.0)
    for k in range(1, channels + 1):
        w = k / channels
        r = count_flops(net, forward_padded, shape, torch.device("cpu"), w) / full
        if abs(r - ratio) < abs(best[1] - ratio):
            best = (w, r)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=300, help="training iterations of each network (the budget)")
    parser.add_argument("--per-class", type=int, default=2, help="patches per class per iteration")
    parser.add_argument("--crop", type=int, default=96)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--channels", type=int, default=32, help="WDNet width (released: 64)")
    parser.add_argument("--growth", type=int, default=16, help="dense growth (released: 32)")
    parser.add_argument("--dilations", type=int, nargs="+", default=[1, 2, 5, 7], help="one block each (released: 7)")
    parser.add_argument("--widths", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--score", default="moire")
    parser.add_argument("--patches", type=int, default=512, help="scored patch pool of the DDA step")
    parser.add_argument("--degradation", default="moire", help="training and test degradation (a stand-in for smoke runs)")
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--overlap", type=int, default=16)
    parser.add_argument("--max-images", type=int, default=None, help="per test set (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--reuse", action="store_true",
                        help="skip training: evaluate the weights an earlier run left in --workdir (same options)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="adaptive_compute_"))
    print(f"workdir {workdir}; {args.iters} iterations each, {len(args.widths)} x {args.per_class} patches of "
          f"{args.crop} px per iteration, WDNet channels {args.channels}/growth {args.growth}/{len(args.dilations)} "
          f"blocks, degradation {args.degradation!r}, {args.threads} threads")

    if args.reuse:  # evaluate the networks an earlier run of this script left in --workdir
        slim_weights, plain_weights = (workdir / "experiments" / f"adaptive_{a}" / "models" / "final.pth"
                                       for a in ("wdnet_slim", "wdnet"))
        missing = [str(p) for p in (slim_weights, plain_weights) if not p.is_file()]
        if missing:
            raise SystemExit(f"--reuse: no trained weights at {', '.join(missing)}")
        slim_seconds = plain_seconds = float("nan")
        print(f"reusing the trained weights in {workdir} (training time not measured)")
    else:
        slim_weights, slim_seconds = train(args, workdir, "wdnet_slim")
        plain_weights, plain_seconds = train(args, workdir, "wdnet")
        print(f"trained: supernet (DDA) {slim_seconds / 60:.1f} min, plain WDNet {plain_seconds / 60:.1f} min")

    from restore.config.schema import Adaptive
    from restore.data.degraded_folder import DegradedFolderDataset
    from restore.engine.adaptive import count_flops
    from restore.engine.checkpoint import load_weights
    from restore.engine.inference import Restorer, forward_padded
    from restore.methods.wdnet.arch import WDNet
    from restore.methods.wdnet.slim import SlimWDNet
    from restore.metrics import Evaluator

    kwargs = dict(channels=args.channels, growth=args.growth, dilations=list(args.dilations))
    slim, plain = SlimWDNet(**kwargs), WDNet(**kwargs)
    load_weights(slim, slim_weights)
    load_weights(plain, plain_weights)
    slim.eval(), plain.eval()
    tiling = dict(tile=args.tile, tile_overlap=args.overlap, tile_batch=4, device="cpu")
    routed = Restorer(slim, adaptive=Adaptive(args.score, list(args.widths)), **tiling)
    settings = {"a": Restorer(slim, **tiling), "b": routed, "c": None, "d": Restorer(plain, **tiling)}

    sets = {name: DegradedFolderDataset(str(SHARED / name), args.degradation, phase="test", max_images=args.max_images)
            for name in ("kodak24", "set14")}
    samples = [(name, ds[i]) for name, ds in sets.items() for i in range(len(ds))]

    # (b) first on every image to learn its FLOP ratio, then (c) at the closest uniform width
    for _, s in samples:
        routed(s["input"][None])
    ratio = routed.adaptive.tally.ratio
    w_uniform, r_uniform = uniform_width(slim, ratio, args.tile, args.channels)
    routed.adaptive.reset()

    class AtWidth:
        def __init__(self, width: float) -> None:
            self.width, self.restorer = width, Restorer(slim, **tiling)

        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            slim.set_width(self.width)
            try:
                return self.restorer(x)
            finally:
                slim.set_width(1.0)

    settings["c"] = AtWidth(w_uniform)
    # the supernet was trained at its --widths only: (c)'s width may lie between them, so the
    # narrower trained widths run uniformly too
    narrower = args.widths[:-1]
    for trained in narrower:
        settings[f"u{trained:g}"] = AtWidth(trained)
    per_tile: dict[tuple[float, int, int], float] = {}

    def image_flops(h: int, w: int, width: float) -> float:
        n_tiles, th, tw = tiles_of(h, w, args.tile, args.overlap)
        if (width, th, tw) not in per_tile:
            per_tile[width, th, tw] = count_flops(slim, forward_padded, [(1, 3, th, tw)], torch.device("cpu"), width)
        return n_tiles * per_tile[width, th, tw]

    evaluators = {k: Evaluator("basicsr") for k in settings}
    untouched = Evaluator("basicsr")  # the moire input itself: what any network must beat
    seconds = dict.fromkeys(settings, 0.0)
    flops = dict.fromkeys(settings, 0.0)
    with torch.inference_mode():
        for name, s in samples:
            x, target = s["input"][None], s["target"][None]
            h, w = x.shape[-2:]
            untouched.update(x, target, names=[f"{name}/{s['name']}"])
            for key, restorer in settings.items():
                start = time.perf_counter()
                out = restorer(x)
                seconds[key] += time.perf_counter() - start
                evaluators[key].update(out.clamp(0, 1), target, names=[f"{name}/{s['name']}"])
            flops["a"] += image_flops(h, w, 1.0)
            flops["c"] += image_flops(h, w, w_uniform)
            for trained in narrower:
                flops[f"u{trained:g}"] += image_flops(h, w, trained)
            flops["d"] += image_flops(h, w, 1.0)  # the same network at its only width
    flops["b"] = routed.adaptive.tally.spent
    n = len(samples)
    labels = {"a": "(a) supernet, full width", "b": f"(b) DDA routing ({args.score}, widths "
              f"{'/'.join(f'{w:g}' for w in args.widths)}, equal shares)",
              "c": f"(c) uniform width {w_uniform:g} (FLOPs {100 * r_uniform:.1f} % of (a))",
              "d": "(d) plain WDNet, same budget"}
    labels.update({f"u{t:g}": f"uniform width {t:g} (a trained width)" for t in narrower})
    summaries = {k: ev.summary() for k, ev in evaluators.items()}
    print(f"\nKodak24 + Set14 ({n} images), synthetic {args.degradation!r}, tiles {args.tile}/{args.overlap}, "
          f"basicsr protocol, CPU {args.threads} threads")
    print("| setting | PSNR (dB) | SSIM | GFLOPs/image | FLOPs vs (a) | s/image | speed vs (a) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    before = untouched.summary()
    print(f"| input ({args.degradation}, no network) | {before['psnr']:.2f} | {before['ssim']:.4f} | 0 | | | |")
    for k in settings:
        print(f"| {labels[k]} | {summaries[k]['psnr']:.2f} | {summaries[k]['ssim']:.4f} | {flops[k] / n / 1e9:.2f} | "
              f"{100 * flops[k] / flops['a']:.1f} % | {seconds[k] / n:.3f} | {seconds['a'] / seconds[k]:.2f}x |")
    print(f"(b): {routed.adaptive.tally.text()}")
    b, a, c = summaries["b"]["psnr"], summaries["a"]["psnr"], summaries["c"]["psnr"]
    checks = {
        "(b) FLOPs <= 55 % of (a)": flops["b"] <= 0.55 * flops["a"],
        "(b) >= 1.4x the speed of (a)": seconds["a"] >= 1.4 * seconds["b"],
        "(b) within 0.3 dB of (a)": a - b <= 0.3,
        "(b) better than (c)": b > c,
    }
    for what, ok in checks.items():
        print(f"target {what}: {'met' if ok else 'NOT met'}")
    from restore.utils.files import atomic_write

    record = {"args": vars(args), "input_psnr_ssim": before,
              "flops": flops, "seconds": seconds, "psnr_ssim": summaries, "uniform_width": w_uniform,
              "train_seconds": {"supernet": slim_seconds, "plain": plain_seconds}}
    print(f"wrote {atomic_write(workdir / 'adaptive_compute.json', json.dumps(record, indent=2, default=str) + chr(10))}")


if __name__ == "__main__":
    main()
