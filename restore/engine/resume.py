"""The resume rules: which checkpoint a run continues from, and what it takes from it.

**State comes from the checkpoint**: model and EMA weights, the optimiser's moments (Adam's
running averages, step counts), the AMP scaler, the iteration, every RNG, the sampler position
and its seed (so the data order continues), and the best validation values so far.

**Hyper-parameters come from the option file**: every optimiser setting (``lr``, betas, weight
decay, ...), ``total_iter``, the schedule and its settings, ``grad_clip``, ``ema_decay``,
``accumulate``, the losses, logging/validation/saving intervals, datasets. The learning rate
is the schedule of the option file evaluated at the checkpoint's iteration: an unchanged file
continues exactly (bit for bit on CPU); ``--set train.optimizer.lr=1e-4`` trains at 1e-4 from
the next iteration on; a new ``total_iter`` re-evaluates the schedule against the new end.

The network must stay the same (a run keeps its network); ``seed`` has no effect on a resumed
run. Every difference between the checkpoint's options and the option file is printed,
with the learning rate before and after.

Which checkpoint: ``--resume auto`` takes the run's latest; ``--resume PATH`` a given one.
Without ``--resume`` a run folder that holds anything of a run is refused, and ``--resume
auto`` with no checkpoint refuses to start over final/best weights.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import yaml
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from restore.archs.contract import unwrap
from restore.config import Options, options_to_yaml
from restore.engine.checkpoint import FORMAT, load_file, load_state_dict_checked
from restore.engine.experiment import ExperimentDir
from restore.engine.rng_state import set_rng_state
from restore.engine.weights_meta import META_KEY, network_differences, resolved_component
from restore.errors import ConfigError
from restore.utils.shorten import shorten_list


class ResumableRun(Protocol):
    """The parts of a set-up training run that a resume fills in (the trainer implements it)."""

    resume: str | None
    exp: ExperimentDir
    options: Options
    model: nn.Module
    ema: Any
    optimizer: Optimizer
    scheduler: LRScheduler | None
    scaler: Any
    log: Any
    ctx: Any
    iteration: int
    best: dict[str, dict[str, Any]]
    consumed: int
    sampler_seed: int

_SHOWN = 12  # changed keys listed


def _names(paths: list[Path], limit: int = 3) -> str:
    shown = ", ".join(p.name for p in paths[:limit])
    return shown + (f", ... ({len(paths)} files)" if len(paths) > limit else "")


def resume_source(exp: ExperimentDir, resume: str | None, name: str) -> Path | None:
    """The checkpoint to continue from (None: a fresh run), or a one-line ConfigError.

    Call it with the run folder locked, so that what it sees cannot change underneath.
    """
    if resume is None:
        found = exp.artefacts()
        if found:
            raise ConfigError(
                f"'{exp.root}' already holds a run named {name!r} ({', '.join(found)}); "
                "continue it with --resume auto, or choose another name (--set name=...)"
            )
        return None
    if resume == "auto":
        latest = exp.latest_checkpoint()
        if latest is not None:
            return latest
        weights = exp.weights_files()
        if weights:
            raise ConfigError(
                f"--resume auto: '{exp.checkpoints}' holds no checkpoint, but '{exp.models}' holds weights "
                f"({_names(weights)}) that a fresh start would replace; choose another name (--set name=...) "
                "or move the run folder away"
            )
        return None
    path = Path(resume)
    if path.is_dir():
        raise ConfigError(
            f"--resume: '{path}' is a folder; give a checkpoint file (<run>/checkpoints/iter_<N>.pth) or --resume auto"
        )
    if not path.is_file():
        raise ConfigError(f"--resume: checkpoint '{path}' does not exist")
    return path


def check_no_later_checkpoints(exp: ExperimentDir, path: Path, iteration: int) -> None:
    """Refuse to continue from ``path`` (iteration ``iteration``) while the run folder holds
    later checkpoints: the two histories would mix, and ``--resume auto`` would later pick the
    wrong one."""
    later = [p for it, p in exp.list_checkpoints() if it > iteration and p.resolve() != path.resolve()]
    if later:
        raise ConfigError(
            f"--resume: '{exp.checkpoints}' holds checkpoints later than iteration {iteration} of '{path}' "
            f"({_names(later)}); move them away first, or resume into another name (--set name=...)"
        )


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, Mapping) and tree:
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: tree}


def option_changes(checkpoint_options: str | None, options: Options) -> list[tuple[str, Any, Any]]:
    """``(dotted key, checkpoint's value, option file's value)`` for every option that differs
    (``"<absent>"`` where one side lacks the key)."""
    if not checkpoint_options:
        return []
    try:
        old = yaml.safe_load(checkpoint_options)
    except yaml.YAMLError:
        return []
    new = yaml.safe_load(options_to_yaml(options))
    if not isinstance(old, Mapping):
        return []
    a, b = _flatten(old), _flatten(new)
    changes = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, "<absent>"), b.get(key, "<absent>")
        if va != vb:
            changes.append((key, va, vb))
    return changes


def hyperparameters(optimizer: Optimizer) -> list[dict[str, Any]]:
    """Each parameter group's settings (lr, betas, ...), without the parameters: what the
    option file asked for, to put back after loading the checkpoint's optimiser state."""
    return [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]


def restore_hyperparameters(optimizer: Optimizer, groups: list[dict[str, Any]]) -> None:
    """Overwrite the loaded groups' settings with ``groups`` (from :func:`hyperparameters`)."""
    for group, wanted in zip(optimizer.param_groups, groups):
        group.update(wanted)


def place_schedule(scheduler: LRScheduler | None, iteration: int) -> bool:
    """Set ``scheduler`` (built from the option file) to ``iteration`` and the optimiser's lr to
    its value there. True when done; False for a scheduler that is not closed-form (not a
    ``LambdaLR``), whose lr depends on its own history: the caller loads its state instead."""
    if scheduler is None:
        return True
    if not isinstance(scheduler, LambdaLR):
        return False
    scheduler.last_epoch = iteration - 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()": intended here
        scheduler.step()
    return True


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe_resume(
    changes: list[tuple[str, Any, Any]], iteration: int, lr_before: float, lr_now: float, options: Options
) -> list[str]:
    """The lines printed on resume: what changed, and what that does to the schedule."""
    if not changes:
        return []
    lines = [
        f"resume: {len(changes)} option(s) differ from the checkpoint's; state (weights, optimiser moments, RNG, "
        "data position, iteration) comes from the checkpoint, these settings from the option file:"
    ]
    for key, old, new in changes[:_SHOWN]:
        note = ""
        if key == "seed":
            note = "  (no effect on a resumed run: the data order and random state continue the checkpoint's)"
        elif key == "name":
            note = "  (the checkpoint comes from another run; this run's folder is used)"
        lines.append(f"  {key}: {_short(old)} -> {_short(new)}{note}")
    if len(changes) > _SHOWN:
        lines.append(f"  ... and {len(changes) - _SHOWN} more")
    keys = {key for key, _, _ in changes}
    touches_schedule = any(k == "train.total_iter" or k.startswith(("train.optimizer.", "train.scheduler")) for k in keys)
    if touches_schedule:
        cfg = options.train
        assert cfg is not None
        kind = f"the {cfg.scheduler.type} schedule" if cfg.scheduler is not None else "the constant learning rate"
        end = next(((o, n) for k, o, n in changes if k == "train.total_iter"), None)
        ends = f"; the run now ends at iteration {end[1]} (was {end[0]})" if end else ""
        lines.append(
            f"resume: learning rate at iteration {iteration}: {lr_before:.4g} under the checkpoint's options -> "
            f"{lr_now:.4g} now ({kind} of the option file, evaluated at iteration {iteration}){ends}"
        )
    return lines


def continue_from(trainer: ResumableRun, path: Path) -> None:
    """Load the checkpoint ``path`` into a set-up ``trainer`` under the rules above; every
    refusal is one line, raised before anything is written."""
    state = load_file(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ConfigError(f"--resume: '{path}' is not a restore training checkpoint (weights only? use path.pretrained)")
    iteration = int(state["iteration"])
    if trainer.resume != "auto":
        check_no_later_checkpoints(trainer.exp, path, iteration)
    changes = option_changes(state.get("options"), trainer.options)
    _check_same_network(trainer.options, path, state.get(META_KEY), changes)
    model = unwrap(trainer.model)
    load_state_dict_checked(model, state["model"], str(path))
    if trainer.ema is not None:
        load_state_dict_checked(trainer.ema.module, state["ema"] or state["model"], str(path))
    wanted = hyperparameters(trainer.optimizer)
    new_optimizer = next((c for c in changes if c[0] == "train.optimizer.type"), None)
    saved_groups = state["optimizer"].get("param_groups") or [{}]
    lr_before = float(saved_groups[0].get("lr", math.nan))
    if new_optimizer is None:
        try:
            trainer.optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError, RuntimeError) as exc:
            raise ConfigError(
                f"--resume: the optimiser state in '{path}' does not fit this run's trainable parameters "
                f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); did path.transfer change?"
            ) from None
    restore_hyperparameters(trainer.optimizer, wanted)
    trainer.iteration = iteration
    if not place_schedule(trainer.scheduler, iteration):
        assert trainer.scheduler is not None
        if state["scheduler"] is not None:
            trainer.scheduler.load_state_dict(state["scheduler"])
        trainer.log.info(f"resume: scheduler {type(trainer.scheduler).__name__} is not closed-form: "
                         "its state follows the checkpoint")
    if state["scaler"] is not None and trainer.scaler.is_enabled():
        trainer.scaler.load_state_dict(state["scaler"])
    trainer.best = dict(state["best"])
    sampler = state["sampler"]
    trainer.consumed = int(sampler["position"])
    trainer.sampler_seed = int(sampler.get("seed", trainer.options.seed))
    rng = state["rng"]
    if sampler["world_size"] != trainer.ctx.world_size:
        trainer.log.info(
            f"resuming a {sampler['world_size']}-process run on {trainer.ctx.world_size}: "
            "continues correctly but not bit-identically"
        )
    set_rng_state(rng[trainer.ctx.rank % len(rng)])
    trainer.log.info(f"resumed from {path} at iteration {trainer.iteration}")
    lr_now = float(trainer.optimizer.param_groups[0]["lr"])
    for line in describe_resume(changes, iteration, lr_before, lr_now, trainer.options):
        trainer.log.info(line)
    if new_optimizer is not None:
        trainer.log.info(f"resume: train.optimizer.type changed ({new_optimizer[1]} -> {new_optimizer[2]}): "
                         "the optimiser starts with fresh moments")


def _check_same_network(options: Options, path: Path, meta: Any, changes: list[tuple[str, Any, Any]]) -> None:
    """A run keeps its network: refuse a resume whose option file builds another one."""
    if isinstance(meta, dict) and isinstance(meta.get("network"), dict) and options.network is not None:
        diffs = network_differences(meta["network"], resolved_component(options.network))
    else:  # a checkpoint from before weights carried their network: compare the option text
        diffs = [f"{k} (checkpoint: {o!r}, option file: {n!r})" for k, o, n in changes if k.split(".")[0] == "network"]
    if diffs:
        raise ConfigError(
            f"--resume: the network differs from the one '{path}' was trained with in {shorten_list(diffs, 6, '; ')}; "
            "a run keeps its network: restore it in the option file, or start another run (--set name=...) "
            "from these weights with path.pretrained"
        )
