"""Train, evaluate and batch-restore on scikit-image's bundled photographs: no download needed."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from restore.cli.common import add_option_arguments, load_from_args
from restore.cli.quickstart_tasks import TASKS
from restore.config import options_to_yaml
from restore.utils.files import atomic_write

#: Held out from training, scored and batch-restored (scikit-image's bundled photographs, as all here).
HELD_OUT_PHOTOS = ("coffee", "chelsea")
DEFAULT_OPTIONS = TASKS["denoise"].options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_option_arguments(parser, required=False)
    parser.add_argument("--task", choices=sorted(TASKS), default="denoise",
                        help="denoise (Gaussian sigma 25, the default) or demoire (synthetic moire); "
                             "picks the option file unless -opt is given")
    parser.add_argument("--workdir", default="quickstart", metavar="DIR",
                        help="where data, the run and restored images go (default: quickstart)")


def export_photos(folder: Path, names: tuple[str, ...]) -> None:
    """Write the named skimage.data photographs as 8-bit RGB PNGs (grey ones replicated)."""
    import numpy as np
    import skimage.data

    from restore.data.image_io import write_image

    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = folder / f"{name}.png"
        if path.exists():
            continue
        image = np.asarray(getattr(skimage.data, name)())
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        write_image(path, image[..., :3].astype(np.uint8))


def run(args: argparse.Namespace) -> int:
    import torch

    from restore.archs.contract import unwrap
    from restore.engine import distributed
    from restore.engine.batch_restore import restore_folder
    from restore.engine.evaluate import evaluate
    from restore.engine.inference import Restorer
    from restore.engine.trainer import Trainer

    task = TASKS[args.task]
    args.opt = args.opt or str(task.options)
    work = Path(args.workdir)
    overrides = [
        f"datasets.train.root={work / 'data' / task.train_folder}",
        f"datasets.val.heldout.root={work / 'data/val'}",
        f"path.experiments_root={work / 'experiments'}",
        *args.overrides,
    ]
    options = load_from_args(argparse.Namespace(opt=args.opt, overrides=overrides))
    started = time.perf_counter()
    # the resolved options (workdir and --set included) beside the run, so the hand-run commands
    # name a short path in the current folder, not the installed package's option file
    opt_copy = atomic_write(work / Path(args.opt).name, options_to_yaml(options))
    print(f"1/4 writing scikit-image's photographs to {work / 'data'} and the options to {opt_copy}")
    export_photos(work / "data" / task.train_folder, task.train_photos)
    export_photos(work / "data" / "val", HELD_OUT_PHOTOS)
    inputs = work / "data" / task.inputs
    task.write_inputs(options, work / "data" / "val", inputs)

    print(f"2/4 training {options.name} ({options.train.total_iter} iterations; Ctrl-C stops with a checkpoint, run again to continue)")
    ctx = distributed.setup(options.device)
    trainer = Trainer(options, resume="auto", ctx=ctx, tensorboard=False)
    trainer.fit()
    if trainer.iteration < options.train.total_iter:
        return 130

    print(f"3/4 evaluating the held-out photos ({task.degradation}, seeded per image)")
    spec = options.datasets.val["heldout"]
    dataset = trainer.val_sets["heldout"]
    degraded = evaluate(Restorer(torch.nn.Identity(), device=ctx.device), dataset, spec, ctx)
    net = trainer.ema.module if trainer.ema is not None else unwrap(trainer.model)
    restored = evaluate(Restorer.from_options(net, options.infer, ctx.device), dataset, spec, ctx)
    p0, p1 = degraded.summary["psnr"], restored.summary["psnr"]
    s0, s1 = degraded.summary["ssim"], restored.summary["ssim"]

    weights = trainer.exp.models / "final.pth"
    out = work / "restored"
    print(f"4/4 batch-restoring {inputs} -> {out}")
    summary = restore_folder(options, inputs, out, weights=weights, overwrite=True)
    minutes = (time.perf_counter() - started) / 60
    print(
        f"\nheld-out photos ({', '.join(HELD_OUT_PHOTOS)}), {task.degradation}, protocol {spec.protocol}:\n"
        f"  {task.input_label:11s}  PSNR {p0:.2f} dB  SSIM {s0:.4f}\n"
        f"  restored     PSNR {p1:.2f} dB  SSIM {s1:.4f}   ({p1 - p0:+.2f} dB)\n"
        f"done in {minutes:.1f} min; weights {weights}; restored images in {out} "
        f"({len(summary.restored)} written)\n"
        f"the same steps by hand:\n"
        f"  restore train -opt {opt_copy} --resume auto\n"
        f"  restore infer -opt {opt_copy} --weights {weights} --input {inputs} --output {out}"
    )
    return 0

