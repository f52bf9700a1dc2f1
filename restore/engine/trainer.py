"""The training loop: iteration based, exactly resumable, single process or DDP under torchrun.

What makes resume exact (on CPU, bit for bit): the sampler hands out ``(index, seed)`` keys
that depend only on the position in the stream (:mod:`restore.engine.sampler`), the DataLoader
has its own generator so creating it draws nothing from the global RNG, and a checkpoint holds
model, EMA, optimiser, scheduler, AMP scaler, iteration, every rank's python/numpy/torch/CUDA
RNG states and the sampler position. Resuming starts the sampler at that position, so no batch
is read twice.

Stopping: Ctrl-C or SIGTERM (a cluster pre-empting the job) ends the run after the current
iteration with a checkpoint, so ``--resume auto`` loses nothing; a second Ctrl-C stops at once.
:attr:`Trainer.stop_signal` then names the signal (``restore train`` exits 128 + its number).

The run folder: the process holds an exclusive lock on it (:class:`FolderLock`) from before
its first write to the end, checks everything it can (options, data, checkpoint) before writing
anything, and writes every file atomically and inside it. What a resume takes from the
checkpoint and what from the option file: :mod:`restore.engine.resume`.
"""

from __future__ import annotations

import math
import random
import signal
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from restore.archs.contract import unwrap
from restore.config import Options, options_to_yaml
from restore.engine import distributed
from restore.engine.callbacks import Callback
from restore.engine.checkpoint import FORMAT, atomic_save, load_weights, nonfinite_tensors
from restore.engine.dataloading import worker_errors
from restore.engine.experiment import ExperimentDir, RunLog
from restore.engine.inference import AMP_DTYPES
from restore.engine.network import build_network
from restore.engine.resume import continue_from, resume_source
from restore.engine.rng_state import rng_state
from restore.engine.run_folder import RunFolderLock, open_run_folder
from restore.engine.sampler import ResumableSampler
from restore.engine.torch_speed import optimizer_extras, training_switches
from restore.engine.train_progress import INTERVAL_S, PlainProgress
from restore.engine.transfer import freeze_by_rules, transfer_from_file
from restore.engine.weights_meta import META_KEY, weights_meta
from restore.errors import ConfigError, RestoreError
from restore.losses.weighted import WeightedSum
from restore.methods.step import TrainStep
from restore.metrics.table import best_keys
from restore.utils.files import plain_name_problem
from restore.utils.shorten import shorten_list


class Trainer:
    """Builds everything from ``options`` and runs :meth:`fit`.

    ``resume``: None (fresh run), ``"auto"`` (latest checkpoint of this run, fresh if there is
    none) or a checkpoint path. ``callbacks`` run around the loop (see :mod:`callbacks`).
    """

    def __init__(
        self,
        options: Options,
        *,
        resume: str | None = None,
        callbacks: Sequence[Callback] = (),
        ctx: distributed.DistContext | None = None,
        tensorboard: bool = True,
    ) -> None:
        if options.train is None or options.datasets.train is None:
            raise ConfigError(f"{options.source}: 'restore train' needs the sections 'train' and 'datasets.train'")
        check_train_options(options)
        self.options = options
        self.cfg = options.train
        self.resume = resume
        self.callbacks = list(callbacks)
        self.ctx = ctx or distributed.setup(options.device)
        self.device = self.ctx.device
        self.exp = ExperimentDir(options.path.experiments_root, options.name)
        self.iteration = 0
        self.best: dict[str, dict[str, Any]] = {}
        self.stop_requested = False
        self.stop_signal: int | None = None  # SIGINT/SIGTERM when one stopped the run
        self.sampler_seed = options.seed  # a resumed run continues its checkpoint's data order
        self._tensorboard = tensorboard
        self.log = RunLog(False)
        self.progress_line: PlainProgress | None = None
        self.run_lock = RunFolderLock(self.exp, self.ctx.is_main, self.ctx.distributed)

    # ------------------------------------------------------------------ set-up
    @property
    def progress(self) -> float:
        """Iterations done / total, in [0, 1] (drives ramps in train steps)."""
        return self.iteration / self.cfg.total_iter

    # The rest of :class:`restore.methods.step.StepContext`: what a train step may read.
    @property
    def total_iter(self) -> int:
        return self.cfg.total_iter

    @property
    def accumulate(self) -> int:
        return self.cfg.accumulate

    @property
    def batch_size(self) -> int:
        """Per-rank micro-batch of ``datasets.train``."""
        spec = self.options.datasets.train
        return spec.batch_size if spec is not None else 1

    @property
    def world_size(self) -> int:
        return self.ctx.world_size

    @property
    def rank(self) -> int:
        return self.ctx.rank

    @property
    def run_folder(self) -> Path:
        """The run's folder, where a step may keep what it computes once per run (from its
        :meth:`~restore.methods.step.TrainStep.batch_sampler` on, when every check has passed)."""
        return self.exp.root

    def _seed(self) -> None:
        seed = self.options.seed
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)  # identical on every rank: identical initial weights

    def setup(self) -> None:
        """Build model, EMA, optimiser, scheduler, losses, step and data; load a checkpoint."""
        opts, cfg, ctx = self.options, self.cfg, self.ctx
        self._seed()
        self.log = RunLog(ctx.is_main)  # prints; files open once every check has passed
        resume_path = resume_source(self.exp, self.resume, opts.name)

        model = build_network(opts).to(self.device)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        transfer = opts.path.transfer
        if opts.path.pretrained and resume_path is None:
            if transfer is not None:
                report = transfer_from_file(model, opts.path.pretrained, transfer, strict=opts.path.strict_load)
                self.log.info(f"loaded weights from {opts.path.pretrained} by path.transfer rules:\n{report.summary()}")
            else:
                load_weights(model, opts.path.pretrained, strict=opts.path.strict_load)
                self.log.info(f"loaded weights from {opts.path.pretrained}")
        elif resume_path is not None and transfer:
            freeze_by_rules(model, transfer)  # requires_grad is not in checkpoints; the optimiser must see the same params
        self.ema = None
        if cfg.ema_decay is not None:
            from timm.utils import ModelEmaV3

            self.ema = ModelEmaV3(model, decay=cfg.ema_decay)
        self.model: nn.Module = model
        if ctx.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(
                model, device_ids=ids, find_unused_parameters=cfg.find_unused_parameters)
        training_switches(self.device, cfg.tf32)  # CUDA: cudnn.benchmark, train.tf32
        self.optimizer = cfg.optimizer.build(params=[p for p in model.parameters() if p.requires_grad],
                                             **optimizer_extras(cfg.optimizer, self.device))  # fused Adam on CUDA
        self.scheduler = cfg.scheduler.build(optimizer=self.optimizer, total_iter=cfg.total_iter) if cfg.scheduler else None
        self.criterion = WeightedSum([(t.loss.type, t.loss.build(), t.weight) for t in cfg.losses]).to(self.device)
        self.step: TrainStep = cfg.step.build()

        self.amp_dtype = AMP_DTYPES.get(cfg.amp) if cfg.amp and self.device.type == "cuda" else None
        if cfg.amp and self.amp_dtype is None:
            self.log.info(f"train.amp: {cfg.amp} ignored on {self.device.type} (mixed precision runs on CUDA only)")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype is torch.float16)

        spec = opts.datasets.train
        assert spec is not None
        self.train_set = spec.dataset.build()
        self.train_set.verify()
        self.val_sets = {name: s.dataset.build() for name, s in opts.datasets.val.items()}
        for dataset in self.val_sets.values():
            dataset.verify()
        self.step.setup(self)
        self.consumed = 0
        if resume_path is not None:
            self.load_checkpoint(resume_path)
        elif self.resume == "auto":
            self.log.info(f"--resume auto: no checkpoint in {self.exp.checkpoints}: starting at iteration 0")
        if ctx.is_main:
            open_run_folder(self.exp, opts, self.log, self._tensorboard)

    def _loader(self) -> Iterator[dict[str, Any]]:
        spec = self.options.datasets.train
        assert spec is not None
        common: dict[str, Any] = dict(
            num_workers=spec.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=spec.num_workers > 0,
            prefetch_factor=4 if spec.num_workers > 0 else None,
            generator=torch.Generator(),  # not the global RNG: resume must not shift it
        )
        own = self.step.batch_sampler(self, self.consumed)  # a step choosing its own samples (DDA)
        if own is not None:
            return iter(torch.utils.data.DataLoader(self.train_set, batch_sampler=own, **common))
        sampler = ResumableSampler(len(self.train_set), self.sampler_seed, self.ctx.rank, self.ctx.world_size, self.consumed)
        loader = torch.utils.data.DataLoader(
            self.train_set, batch_size=spec.batch_size, sampler=sampler, drop_last=True, **common
        )
        return iter(loader)

    # ------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path:
        """Write the full training state (all ranks take part; rank 0 writes)."""
        self._check_weights_finite()
        rng = distributed.all_gather_objects(rng_state())
        path = self.exp.checkpoint_path(self.iteration)
        if self.ctx.is_main:
            self.run_lock.check()
            state = {
                "format": FORMAT,
                "iteration": self.iteration,
                "model": unwrap(self.model).state_dict(),
                "ema": self.ema.module.state_dict() if self.ema is not None else None,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
                "rng": rng,
                "sampler": {"position": self.consumed, "world_size": self.ctx.world_size, "seed": self.sampler_seed},
                "best": self.best,
                "options": options_to_yaml(self.options),
                META_KEY: weights_meta(self.options, self.iteration),
            }
            atomic_save(state, path, inside=self.exp.root)
            self.exp.prune(self.cfg.keep_checkpoints)
            for cb in self.callbacks:
                cb.on_checkpoint(self, path)
        distributed.barrier()
        return path

    def load_checkpoint(self, path: Path) -> None:
        """Continue from ``path``: state from the checkpoint, settings from the options
        (:func:`restore.engine.resume.continue_from`); refusals are one line, before any write."""
        continue_from(self, path)

    def _check_weights_finite(self) -> None:
        """Never save weights that already blew up (the loss can still look finite)."""
        for what, net in (("weights", unwrap(self.model)), ("EMA weights", self.ema.module if self.ema else None)):
            bad = nonfinite_tensors(net.state_dict()) if net is not None else []
            if bad:
                latest = self.exp.latest_checkpoint()
                since = f" ({latest.name} is the last good checkpoint)" if latest is not None else ""
                raise RestoreError(
                    f"the {what} hold NaN/inf (tensor {shorten_list([repr(b) for b in bad], 1)}) "
                    f"at iteration {self.iteration}; nothing was saved; lower the learning rate or enable "
                    f"train.grad_clip, then --resume auto from the last checkpoint{since}"
                )

    def save_weights(self, path: Path, inside: Path | None = None) -> None:
        """Weights for test/infer: the EMA weights when the run keeps them (rank 0), with the
        ``meta`` entry that names their network (:mod:`restore.engine.weights_meta`).
        ``inside``: the folder the resolved ``path`` must lie in."""
        self._check_weights_finite()
        if self.ctx.is_main:
            self.run_lock.check()
            net = self.ema.module if self.ema is not None else unwrap(self.model)
            state = {"params": net.state_dict(), "iteration": self.iteration,
                     META_KEY: weights_meta(self.options, self.iteration)}
            atomic_save(state, path, inside=inside)

    # ------------------------------------------------------------- validation
    def validate(self) -> dict[str, Any]:
        """Evaluate every validation set (sharded over ranks), log, keep the best weights."""
        if not self.val_sets:
            return {}
        from restore.engine.evaluate import evaluate
        from restore.engine.inference import Restorer

        net = self.ema.module if self.ema is not None else unwrap(self.model)
        restorer = Restorer.from_options(net, self.options.infer, self.device)
        results: dict[str, Any] = {}
        scalars: dict[str, float] = {}
        best = best_keys()  # summary keys worth a "best" weights file -> lower is better (metric table)
        for name, spec in self.options.datasets.val.items():
            result = evaluate(restorer, self.val_sets[name], spec, self.ctx, keep=2 if self.ctx.is_main else 0)
            results[name] = result
            parts = []
            for key, value in result.summary.items():
                scalars[f"val/{name}/{key}"] = value
                if key in best and not math.isnan(value):
                    parts.append(f"{key} {value:.4f}")
                    self._update_best(name, key, value, lower=best[key])
            self.log.info(f"[iter {self.iteration}] val {name} ({result.protocol}): " + ", ".join(parts))
            for k, (inp, out, tgt) in enumerate(result.samples):
                panels = [t.float().cpu().squeeze(0) for t in (inp, out, tgt) if t is not None]
                panels = [p if p.shape[0] == 3 else p[:1].expand(3, -1, -1) for p in panels]
                if len({p.shape for p in panels}) == 1:
                    self.log.images(self.iteration, f"val/{name}/{k}", torch.cat(panels, dim=-1))
        self.log.scalars(self.iteration, scalars)
        for cb in self.callbacks:
            cb.on_validation_end(self, results)
        return results

    def _update_best(self, set_name: str, key: str, value: float, *, lower: bool) -> None:
        tag = f"{set_name}_{key}"
        old = self.best.get(tag)
        if old is None or (value < old["value"] if lower else value > old["value"]):
            self.best[tag] = {"value": value, "iter": self.iteration}
            self.save_weights(self.exp.models / f"best_{tag}.pth", inside=self.exp.root)

    # ------------------------------------------------------------------ loop
    @contextmanager
    def _stop_signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM -> stop after this iteration (second SIGINT: stop now)."""
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def request(signum: int, frame: Any) -> None:
            if self.stop_requested and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.stop_requested = True
            self.stop_signal = signum
            self.log.info("stop requested: finishing this iteration and writing a checkpoint (Ctrl-C again to abort)")

        for s in previous:
            signal.signal(s, request)
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _should_stop(self) -> bool:
        flag = torch.tensor([1.0 if self.stop_requested else 0.0], device=self.device)
        return bool(distributed.all_reduce_sum(flag).item() > 0) if self.ctx.distributed else self.stop_requested

    def _train_iteration(self, batches: Iterator[dict[str, Any]], timing: dict[str, float]) -> dict[str, Tensor]:
        cfg = self.cfg
        logs: dict[str, Tensor] = {}
        self.model.train()
        for micro in range(cfg.accumulate):
            t0 = time.perf_counter()
            batch = next(batches)
            timing["data"] += time.perf_counter() - t0
            batch = self._to_device(batch)
            last = micro == cfg.accumulate - 1
            sync = nullcontext() if last or not self.ctx.distributed else self.model.no_sync()
            autocast = torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype else nullcontext()
            with sync:
                with autocast:
                    loss, step_logs = self.step(self.model, batch, self)
                self.scaler.scale(loss / cfg.accumulate).backward()
            for key, value in {"loss": loss.detach(), **step_logs}.items():
                value = torch.as_tensor(value, dtype=torch.float32).detach()
                logs[key] = logs.get(key, 0.0) + value / cfg.accumulate
            self.consumed += batch_size_of(batch)
        if cfg.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            logs["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip).detach()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.scheduler is not None:
            self.scheduler.step()
        self.iteration += 1
        if self.ema is not None:
            self.ema.update(unwrap(self.model), step=self.iteration)
        return logs

    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        fmt = torch.channels_last if self.cfg.channels_last else torch.contiguous_format
        out = {}
        for key, value in batch.items():
            if isinstance(value, Tensor):
                value = value.to(self.device, non_blocking=True)
                if value.dim() == 4:
                    value = value.contiguous(memory_format=fmt)
            out[key] = value
        return out

    def fit(self) -> None:
        """Set up, train to ``total_iter`` (validating and saving on schedule), clean up."""
        try:
            with worker_errors(), self.run_lock:
                self.setup()
                self._fit()
        finally:
            self.log.close()

    def _fit(self) -> None:
        from tqdm import tqdm

        cfg, ctx = self.cfg, self.ctx
        for cb in self.callbacks:
            cb.on_train_start(self)
        spec = self.options.datasets.train
        self.log.info(
            f"training {self.options.name}: {type(unwrap(self.model)).__name__}, "
            f"{sum(p.numel() for p in self.model.parameters()):,} parameters, {len(self.train_set)} training samples, "
            f"batch {spec.batch_size} x {cfg.accumulate} x {ctx.world_size} process(es) on {self.device}, "
            f"iterations {self.iteration} -> {cfg.total_iter}"
        )
        if self.iteration >= cfg.total_iter:
            self.log.info("nothing to do: the run is complete")
            return
        batches = self._loader()
        bar = tqdm(total=cfg.total_iter, initial=self.iteration, disable=not ctx.is_main or None, unit="it", dynamic_ncols=True)
        # no terminal (a file, a cluster log): no bar, so a plain line every INTERVAL_S seconds
        self.progress_line = PlainProgress(self.iteration, cfg.total_iter, enabled=ctx.is_main and bool(bar.disable),
                                           interval=INTERVAL_S)
        window: dict[str, Tensor] = {}
        counts: dict[str, int] = {}
        timing = {"data": 0.0, "start": time.perf_counter(), "iters": 0}
        with self._stop_signals():
            while self.iteration < cfg.total_iter:
                logs = self._train_iteration(batches, timing)
                timing["iters"] += 1
                for key, value in logs.items():
                    window[key] = window.get(key, 0.0) + value
                    counts[key] = counts.get(key, 0) + 1  # a per-task loss is absent from some iterations
                bar.update(1)
                it = self.iteration
                plain = self.progress_line.update(it)
                if plain is not None:
                    print(plain, flush=True)
                if it % cfg.log_every == 0 or it == cfg.total_iter:
                    loss = self._log_window(window, counts, timing)
                    bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
                    window, counts = {}, {}
                if it % cfg.val_every == 0 or it == cfg.total_iter:
                    self.validate()
                if self.callbacks:  # float() syncs with the device: only when someone listens
                    scalars = {k: float(v) for k, v in logs.items()}
                    for cb in self.callbacks:
                        cb.on_iteration_end(self, scalars)
                stop = self._should_stop()
                if it % cfg.save_every == 0 or it == cfg.total_iter or stop:
                    self._check_finite(window.get("loss", logs["loss"]))
                    self.save_checkpoint()
                if stop:
                    self.log.info(f"stopped at iteration {it}; continue with --resume auto")
                    break
        bar.close()
        if self.iteration >= cfg.total_iter:
            self.save_weights(self.exp.models / "final.pth", inside=self.exp.root)
            self.log.info(f"done: {cfg.total_iter} iterations; weights in {self.exp.models / 'final.pth'}")
        for cb in self.callbacks:
            cb.on_train_end(self)

    def _check_finite(self, loss: float | Tensor) -> None:
        """Stop before a non-finite loss is logged as progress or saved into a checkpoint."""
        if not math.isfinite(float(loss)):
            raise RestoreError(
                f"the training loss became {float(loss)} by iteration {self.iteration}; lower the learning rate or "
                "enable train.grad_clip, then --resume auto from the last checkpoint"
            )

    def _log_window(self, window: dict[str, Tensor], counts: dict[str, int], timing: dict[str, float]) -> float:
        """Log the window's mean scalars (each over the iterations that reported it); return the
        mean loss. Checking the loss here rather than every step keeps a device-to-host sync out
        of each iteration."""
        values = {f"train/{k}": float(v) / max(1, counts.get(k, 1)) for k, v in window.items()}
        elapsed = time.perf_counter() - timing["start"]
        values["train/lr"] = self.optimizer.param_groups[0]["lr"]
        values["train/it_per_s"] = timing["iters"] / elapsed if elapsed > 0 else 0.0
        values["train/data_wait"] = timing["data"] / elapsed if elapsed > 0 else 0.0
        self.log.scalars(self.iteration, values)
        loss = values.get("train/loss", math.nan)
        self._check_finite(loss)
        eta = self.progress_line.eta(self.iteration) if self.progress_line is not None else "?"
        self.log.info(
            f"[iter {self.iteration}/{self.cfg.total_iter}] loss {loss:.5g} lr {values['train/lr']:.3g} "
            f"{values['train/it_per_s']:.2f} it/s, data wait {100 * values['train/data_wait']:.0f}%, ETA {eta}"
        )
        timing.update(data=0.0, start=time.perf_counter(), iters=0)
        return loss


def check_train_options(options: Options) -> None:
    """One line, before anything runs, for a ``train`` number the loop cannot use (an interval
    of 0 would divide by zero mid-run; a negative ``total_iter`` would do nothing and say it
    finished) and for a validation set name that cannot be part of a file name
    (``models/best_<set>_<metric>.pth``)."""
    cfg = options.train
    assert cfg is not None
    where = options.source or options.name
    for name in options.datasets.val:
        problem = plain_name_problem(name)
        if problem is not None:
            raise ConfigError(f"{where}: validation set name {name!r} (key 'datasets.val') {problem}")
    for key in ("total_iter", "save_every", "log_every", "val_every", "accumulate"):
        value = getattr(cfg, key)
        if value < 1:
            raise ConfigError(f"{where}: key 'train.{key}' must be a positive number of iterations, got {value}")
    if cfg.keep_checkpoints < 0:
        raise ConfigError(f"{where}: key 'train.keep_checkpoints' must be 0 (keep all) or more, got {cfg.keep_checkpoints}")
    if cfg.grad_clip is not None and not cfg.grad_clip > 0:
        raise ConfigError(f"{where}: key 'train.grad_clip' must be > 0 (or null), got {cfg.grad_clip}")
    if cfg.ema_decay is not None and not 0 <= cfg.ema_decay < 1:
        raise ConfigError(f"{where}: key 'train.ema_decay' must be in [0, 1) (or null), got {cfg.ema_decay}")


def batch_size_of(batch: dict[str, Any]) -> int:
    for value in batch.values():
        if isinstance(value, Tensor):
            return int(value.shape[0])
    raise ValueError("a batch without tensors")
