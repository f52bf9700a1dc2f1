"""Score a folder of existing results against ground truth under a named protocol.

What people otherwise do with the papers' MATLAB scripts: pair the result and ground-truth files
(by name, or by sorted position where the protocol says so), compute the protocol's metrics per
image, write a per-image CSV, print a summary table with the protocol named in its header, and
optionally write the figures as JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

from restore.errors import DataError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pred", required=True, metavar="DIR", help="folder of restored images")
    parser.add_argument("--gt", required=True, metavar="DIR", help="folder of ground-truth images")
    parser.add_argument("--mask", metavar="DIR", help="shadow masks (shadow protocols), named like the ground truth")
    parser.add_argument("--protocol", default="basicsr", metavar="NAME", help="evaluation protocol (default basicsr)")
    parser.add_argument("--crop", type=int, metavar="N", help="crop N pixels from every border (default: the protocol's)")
    parser.add_argument("--pairing", choices=["same_name", "sorted"], help="how files are paired (default: the protocol's)")
    parser.add_argument("--metrics", nargs="+", metavar="M", help="metrics to compute (default: the protocol's)")
    parser.add_argument("--csv", metavar="FILE", help="per-image CSV (default: scores_<protocol>.csv here)")
    parser.add_argument("--json", metavar="FILE", help="write the summary and per-image figures as JSON")


def _folder(path: str, what: str) -> Path:
    folder = Path(path)
    if not folder.is_dir():
        raise DataError(f"{what} folder '{folder}' not found" if not folder.exists() else f"{what} path '{folder}' is not a folder")
    return folder


def _pairs(args: argparse.Namespace, rule: str) -> list[tuple[Path, Path, Path | None]]:
    from restore.data.image_io import list_images
    from restore.data.pairing import Pairing, pair_files

    pred_dir, gt_dir = _folder(args.pred, "--pred"), _folder(args.gt, "--gt")
    preds, gts = list_images(pred_dir), list_images(gt_dir)
    pairing = Pairing.from_options(rule, None)
    pairs = pair_files(preds, pred_dir, gts, gt_dir, pairing, roles=("result", "ground-truth"))
    if not args.mask:
        return [(p, g, None) for p, g in pairs]
    mask_dir = _folder(args.mask, "--mask")
    gt_used = [g for _, g in pairs]
    masks = dict(pair_files(gt_used, gt_dir, list_images(mask_dir), mask_dir, pairing, roles=("ground-truth", "mask")))
    return [(p, g, masks[g]) for p, g in pairs]


def _load(path: Path, channels: int):
    import torch

    from restore.data.image_io import read_image, to_channels

    # uint8 or uint16 as stored: the evaluator quantises 16-bit data like a float output
    return torch.from_numpy(to_channels(read_image(path), channels)).permute(2, 0, 1)[None]


def run(args: argparse.Namespace) -> int:
    from restore.metrics.evaluator import Evaluator
    from restore.metrics.protocols import get_protocol

    protocol = get_protocol(args.protocol)
    evaluator = Evaluator(args.protocol, metrics=args.metrics, crop_border=args.crop)
    pairs = _pairs(args, args.pairing or protocol.pairing)
    start = time.perf_counter()
    for pred_path, gt_path, mask_path in pairs:
        pred, gt = _load(pred_path, 3), _load(gt_path, 3)
        mask = _load(mask_path, 1) if mask_path is not None else None
        name = gt_path.relative_to(args.gt).with_suffix("").as_posix()
        try:  # the evaluator knows each protocol's size rules (shadow scripts resize)
            evaluator.update(pred, gt, mask=mask, names=[name])
        except DataError as exc:
            files = f"result '{pred_path}', ground truth '{gt_path}'" + (f", mask '{mask_path}'" if mask_path else "")
            raise DataError(f"{exc} ({files})") from None
    elapsed = time.perf_counter() - start
    summary = evaluator.summary()

    csv_path = Path(args.csv or f"scores_{protocol.name}.csv")
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(evaluator.rows[0]) if evaluator.rows else ["name"]
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(evaluator.rows)

    print(evaluator.format_table(summary, title=f"{len(pairs)} images, {args.pred} vs {args.gt}"))
    print(f"per-image scores: {csv_path}  ({elapsed:.2f} s)", file=sys.stderr)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "protocol": protocol.name,
            "description": protocol.description,
            "pred": str(args.pred),
            "gt": str(args.gt),
            "count": len(pairs),
            "summary": summary,
            "per_image": evaluator.rows,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2))
    return 0
