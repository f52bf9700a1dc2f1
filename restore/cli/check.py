"""``--check`` for train, test and infer: check everything a run will touch, report every problem.

Why: a run that dies on image 6 of 20, or after loading a network for a weights file that
does not exist, wastes the user's time; a check that stops at the first problem makes them
fix one file per attempt. So ``--check``

* builds every dataset of the command and decodes every file fully (``--check=quick``: headers
  only, which misses a file truncated after its header);
* for test and infer, checks that the weights (``--weights`` or ``path.pretrained``) exist and
  fit the network (keys and shapes), building the network on the ``meta`` device so no memory
  is spent on parameters; with no weights given the data is checked alone (and the summary
  line says so), so a data set can be checked before any training;
* for infer, checks the input (and mask) folder, every target path, and every input and mask
  file;
* prints every problem as ``restore: error: ...`` (at most :data:`MAX_LINES`, then a count)
  and exits 2; with no problem it prints one summary line and exits 0.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from restore.config import Options
from restore.data.image_header import max_pixels
from restore.errors import RestoreError
from restore.utils.one_line import one_line

#: Problems printed before the rest are only counted.
MAX_LINES = 20
CHECK_MODES = ("full", "quick")


class Problems:
    """Collects problem lines; prints the first :data:`MAX_LINES` and counts the rest."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, problem: RestoreError | str) -> None:
        """One problem: an error (its message) or a line of text, kept on one line."""
        self.lines.append(one_line(str(problem).strip() or type(problem).__name__))

    def __len__(self) -> int:
        return len(self.lines)

    def report(self) -> int:
        """Print the problems to stderr; the exit status (2 when there are any, else 0)."""
        for line in self.lines[:MAX_LINES]:
            print(f"restore: error: {line}", file=sys.stderr)
        if len(self.lines) > MAX_LINES:
            print(f"restore: error: ... and {len(self.lines) - MAX_LINES} more problems "
                  f"({len(self.lines)} in all)", file=sys.stderr)
        return 2 if self.lines else 0


def decodes(args: argparse.Namespace) -> bool:
    """Whether ``--check`` decodes whole files (the default) or reads headers (``--check=quick``)."""
    return getattr(args, "check", None) != "quick"


def check_datasets(options: Options, sections: tuple[str, ...], decode: bool, problems: Problems) -> int:
    """Build the datasets of ``sections`` and verify every sample's files; the samples checked.

    A set that cannot be built (missing folder, unpaired file) is one problem; the other sets
    are still checked.
    """
    sets = options.datasets
    specs = [sets.train] if "train" in sections and sets.train is not None else []
    for section in ("val", "test"):
        if section in sections:
            specs.extend(getattr(sets, section).values())
    count = 0
    for spec in specs:
        try:
            dataset = spec.dataset.build()
        except RestoreError as exc:
            problems.add(exc)
            continue
        where = spec.dataset.where
        count += dataset.verify(decode, lambda exc: problems.add(f"{where}: {exc}" if where else exc))
    return count


def network_on_meta(options: Options) -> nn.Module:
    """The option file's network on the ``meta`` device where possible (see
    :func:`restore.engine.network.build_network_on_meta`)."""
    from restore.engine.network import build_network_on_meta

    return build_network_on_meta(options)


def check_weights(options: Options, weights: str | None, model: nn.Module | None, problems: Problems) -> str | None:
    """Check that the weights file exists, loads and fits ``model`` (keys and shapes); its path.

    None when no weights are given (neither ``--weights`` nor ``path.pretrained``): the data
    can be checked before any weights exist, and the summary says the weights were not.
    """
    from restore.engine.checkpoint import load_weights

    chosen = weights if weights is not None else options.path.pretrained
    if chosen is None:
        return None
    if model is None:  # the network itself is the problem, already reported
        if not Path(chosen).is_file():
            problems.add(f"weights file '{chosen}' does not exist")
        return str(chosen)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # copying into meta tensors is a no-op, and torch says so
            load_weights(model, chosen, strict=options.path.strict_load)
    except RestoreError as exc:
        problems.add(exc)
    return str(chosen)


def matched_options(args: argparse.Namespace, options: Options, problems: Problems) -> Options:
    """``options`` with the network the weights record, as the real run would take it.

    A network that differs from the one the weights were trained with is a problem here too
    (or, with ``--network-from-weights``, the stored network is the one checked).
    """
    from restore.engine.weights_meta import match_network

    chosen = getattr(args, "weights", None) or options.path.pretrained
    if chosen is None or not Path(chosen).is_file():
        return options
    try:
        return match_network(options, chosen, network_from_weights=getattr(args, "network_from_weights", False),
                             say=lambda text: print(text, file=sys.stderr))
    except RestoreError as exc:
        problems.add(exc)
        return options


def _network(options: Options, problems: Problems) -> nn.Module | None:
    try:
        return network_on_meta(options)
    except RestoreError as exc:
        problems.add(exc)
        return None


def check_backend(options: Options, problems: Problems) -> None:
    """``infer.backend`` installed and able to run ``infer.precision`` (test and infer)."""
    from restore.engine.backends import resolve_backend

    kind = "cuda" if str(options.device).startswith("cuda") else "cpu"  # only 'auto' asks, and never fails
    try:
        resolve_backend(options.infer.backend, options.infer.precision, torch.device(kind))
    except RestoreError as exc:
        problems.add(exc)


def check_run(args: argparse.Namespace, options: Options, sections: tuple[str, ...]) -> int:
    """``restore train|test --check``: datasets (and for test the weights); exit status."""
    max_pixels()  # a bad RESTORE_MAX_PIXELS is one line, not one per file
    problems = Problems()
    decode = decodes(args)
    weights = None
    if "test" in sections:
        options = matched_options(args, options, problems)
        weights = check_weights(options, getattr(args, "weights", None), _network(options, problems), problems)
        check_backend(options, problems)
    count = check_datasets(options, sections, decode, problems)
    if problems:
        return problems.report()
    how = "files decoded" if decode else "headers"
    print(f"{args.opt}: options are valid; {count} samples checked ({how}, sizes)"
          + (_weights_note(weights) if "test" in sections else ""))
    return 0


def _weights_note(weights: str | None) -> str:
    if weights is None:
        return "; no weights given (--weights or path.pretrained), so none checked"
    return f"; weights '{weights}' fit the network"


def check_infer(args: argparse.Namespace, options: Options) -> int:
    """``restore infer --check``: weights, folders, every target and every input/mask file."""
    from restore.data.image_io import read_image_size
    from restore.engine.batch_plan import TargetGuard, plan_jobs
    from restore.engine.batch_restore import check_input_keys

    max_pixels()
    problems = Problems()
    decode = decodes(args)
    options = matched_options(args, options, problems)
    model = _network(options, problems)
    weights = check_weights(options, args.weights, model, problems)
    check_backend(options, problems)
    needs_mask = False
    if model is not None:
        try:
            needs_mask = check_input_keys(model, options, args.mask_dir)
        except RestoreError as exc:
            problems.add(exc)
    mask_dir = args.mask_dir if needs_mask else None
    try:
        jobs = plan_jobs(args.input, args.output, mask_dir=mask_dir, fmt=args.format)
    except RestoreError as exc:
        problems.add(exc)
        return problems.report()
    guard = TargetGuard(jobs, args.input, args.output, mask_dir)
    for job in jobs:
        refused = guard.problem(job.target)
        if refused is not None:
            problems.add(refused)
        try:
            size = read_image_size(job.source, decode=decode)
            if job.mask is not None:
                mask = read_image_size(job.mask, decode=decode)
                if mask != size:
                    problems.add(f"mask '{job.mask}' is {mask[1]}x{mask[0]} but input '{job.source}' is {size[1]}x{size[0]}")
        except RestoreError as exc:
            problems.add(exc)
    if problems:
        return problems.report()
    how = "decoded" if decode else "headers read"
    print(f"{args.opt}: options are valid{_weights_note(weights)}; {len(jobs)} images checked ({how}) "
          f"-> {Path(args.output)}")
    return 0
