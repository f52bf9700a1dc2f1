"""Score a folder of existing results against ground truth under a named protocol.

What people otherwise do with the papers' MATLAB scripts: pair the result and ground-truth files
(by name, by sorted position where the protocol says so, or by the datasets' replace/regex
rules, so ``restore test``'s saved images score against the layouts of ``datasets/README.md``
directly), compute the protocol's metrics per image, write a per-image CSV, print a summary
table with the protocol named in its header, and optionally write the figures as JSON. Score
files are written atomically (see :mod:`restore.engine.score_folders`).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from pathlib import Path

from restore.errors import DataError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pred", required=True, metavar="DIR", help="folder of restored images")
    parser.add_argument("--gt", required=True, metavar="DIR", help="folder of ground-truth images")
    parser.add_argument("--mask", metavar="DIR",
                        help="shadow masks (shadow protocols), named like the results (sorted pairing: by position)")
    parser.add_argument("--protocol", metavar="NAME",
                        help="evaluation protocol (default: restore.metrics.DEFAULT_PROTOCOL, basicsr)")
    parser.add_argument("--crop", type=int, metavar="N", help="crop N pixels from every border (default: the protocol's)")
    parser.add_argument("--pairing", choices=["same_name", "sorted", "replace", "regex"],
                        help="how results pair with ground truth, as in the datasets (default: the protocol's)")
    parser.add_argument("--pair-replace", nargs=2, metavar=("FROM", "TO"),
                        help="replace/regex pairing: FROM -> TO in the result's file name, e.g. rain- norain-")
    parser.add_argument("--no-recursive", dest="recursive", action="store_false",
                        help="list only the top level of each folder (Rain100L keeps rainy/ inside its GT folder)")
    parser.add_argument("--pred-glob", metavar="GLOB", help="score only results whose file name matches, e.g. '*.png'")
    parser.add_argument("--gt-glob", metavar="GLOB", help="consider only ground-truth files matching, e.g. 'norain-*'")
    parser.add_argument("--gt-preprocess", choices=["tip2018"],
                        help="apply the dataset's pre-processing to the ground truth (TIP2018 crop + 256x256 resize)")
    parser.add_argument("--metrics", nargs="+", metavar="M", help="metrics to compute (default: the protocol's)")
    parser.add_argument("--csv", metavar="FILE", help="per-image CSV (default: scores_<protocol>.csv here)")
    parser.add_argument("--json", metavar="FILE", help="write the summary and per-image figures as JSON")


def _load(path: Path, channels: int):
    import torch

    from restore.data.image_io import read_image, to_channels

    # uint8 or uint16 as stored: the evaluator quantises 16-bit data like a float output
    return torch.from_numpy(to_channels(read_image(path), channels)).permute(2, 0, 1)[None]


def run(args: argparse.Namespace) -> int:
    import torch

    from restore.engine.score_folders import check_outputs, find_triples, load_target, size_hint, write_outputs
    from restore.metrics.evaluator import Evaluator
    from restore.metrics.protocols import DEFAULT_PROTOCOL, get_protocol

    protocol = get_protocol(args.protocol or DEFAULT_PROTOCOL)
    evaluator = Evaluator(protocol.name, metrics=args.metrics, crop_border=args.crop)
    pairs = find_triples(args.pred, args.gt, args.mask, args.pairing or protocol.pairing, args.pair_replace,
                         recursive=args.recursive, pred_glob=args.pred_glob, gt_glob=args.gt_glob)
    csv_path = args.csv or f"scores_{protocol.name}.csv"
    check_outputs([("--csv", csv_path), ("--json", args.json)], (f for t in pairs for f in t if f is not None))
    start = time.perf_counter()
    for pred_path, gt_path, mask_path in pairs:
        pred = _load(pred_path, 3)
        if args.gt_preprocess:
            gt = torch.from_numpy(load_target(gt_path, 3, args.gt_preprocess)).permute(2, 0, 1)[None]
        else:
            gt = _load(gt_path, 3)
        mask = _load(mask_path, 1) if mask_path is not None else None
        name = gt_path.relative_to(args.gt).with_suffix("").as_posix()
        try:  # the evaluator knows each protocol's size rules (shadow scripts resize)
            evaluator.update(pred, gt, mask=mask, names=[name])
        except DataError as exc:
            files = f"result '{pred_path}', ground truth '{gt_path}'" + (f", mask '{mask_path}'" if mask_path else "")
            hint = size_hint(pred.shape[-2:], gt.shape[-2:], args.gt_preprocess)
            raise DataError(f"{exc} ({files}){hint}") from None
    elapsed = time.perf_counter() - start
    summary = evaluator.summary()

    columns = list(evaluator.rows[0]) if evaluator.rows else ["name"]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(evaluator.rows)
    outputs = [(csv_path, text.getvalue())]
    if args.json:
        payload = {
            "protocol": protocol.name,
            "description": protocol.description,
            "pred": str(args.pred),
            "gt": str(args.gt),
            "count": len(pairs),
            "summary": summary,
            "per_image": evaluator.rows,
        }
        outputs.append((args.json, json.dumps(payload, indent=2) + "\n"))
    write_outputs(outputs)  # both or neither new file: the messages come after

    print(evaluator.format_table(summary, title=f"{len(pairs)} images, {args.pred} vs {args.gt}"))
    print(f"per-image scores: {csv_path}  ({elapsed:.2f} s)", file=sys.stderr)
    return 0
