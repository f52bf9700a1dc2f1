"""IPT's multi-task pre-training step: task-routed batches, per-task loss, contrastive loss.

Chosen with ``train.step: {type: ipt_pretrain}`` for an ``ipt`` network with several heads and
tails (the six-task layout ``scale: [2, 3, 4, 1, 1, 1]``, ``num_queries: 6``). Per micro-batch
(``shared/specs/ipt.md`` §6):

* the samples are grouped by task; each group runs through the shared body with its own head,
  tail and query row: ``model(input, task=t)``;
* ``supervised = sum_t (n_t / B) * criterion(pred_t, target_t)`` with ``criterion`` the
  configured ``train.losses`` (the recipe: one L1), i.e. the per-sample mean over the batch (a
  single-task batch gives the plain loss);
* ``loss = supervised + contrastive_weight * L_contrastive`` with :mod:`restore.methods.ipt.loss`
  on the body tokens (decoder output after ``mlp_head``, ``(B, 256, 576)``) of the whole batch:
  patches of one image are positives, the other images' patches negatives.

What the step expects of a batch: ``input``/``target`` tensors and the task of each sample in
``batch["task"]`` (a list of names, as collated from the ``mixture`` dataset, or one name) or
else ``batch["task_id"]`` (ints, the mixture's source index). Names are looked up in the
network's ``task_names`` (the mixture's source ``task`` keys must therefore be ``sr_x2``, ...,
``derain``); ids are used as head indices only when the network has no names. A batch without
either runs the network's current task. Groups are selected by index, so a mixed batch works
whenever its tensors could be stacked (equal sizes); super-resolution tasks have other input
and target sizes, so an SR + restoration pre-training uses ``mixture`` with ``batch_by_task:
true`` (each batch from one source, the official-style recipe) — which also keeps one forward
per iteration, as DistributedDataParallel requires.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from restore.archs.contract import unwrap
from restore.errors import ConfigError
from restore.methods.ipt.loss import DEFAULT_TEMPERATURE, DEFAULT_WEIGHT, PatchContrastiveLoss
from restore.methods.step import Batch, StepContext, TrainStep


class IPTPretrainStep(TrainStep):
    """Args (``train.step``):
        contrastive_weight: lambda of the contrastive term (paper: 0.1); 0 turns it off.
        temperature: tau of the contrastive loss (not in the spec; 0.1 is our choice).
        include_positive: InfoNCE denominator (positive included) instead of the paper's
            negatives-only denominator.
    """

    def __init__(
        self,
        contrastive_weight: float = DEFAULT_WEIGHT,
        temperature: float = DEFAULT_TEMPERATURE,
        include_positive: bool = False,
    ) -> None:
        if contrastive_weight < 0:
            raise ConfigError(f"train.step.contrastive_weight must be >= 0, got {contrastive_weight}")
        self.contrastive_weight = float(contrastive_weight)
        self.contrastive = PatchContrastiveLoss(temperature, include_positive)

    def setup(self, ctx: StepContext) -> None:
        net = unwrap(ctx.model)
        if not (hasattr(net, "task_index") and hasattr(net, "body") and hasattr(net, "scales")):
            raise ConfigError(f"train.step 'ipt_pretrain' trains an 'ipt' network, got {type(net).__name__}")
        if self.contrastive_weight > 0 and ctx.batch_size < 2:
            raise ConfigError(
                "train.step 'ipt_pretrain': the contrastive loss needs datasets.train.batch_size >= 2 "
                "(negatives are the other images of the batch); or set contrastive_weight: 0"
            )
        # A mixture's sources: each task must exist in the network and have its scale.
        tasks = getattr(ctx.train_set, "tasks", None)
        sources = getattr(ctx.train_set, "sources", None)
        if tasks is None or not getattr(ctx.train_set, "tag_tasks", True):
            return
        for i, name in enumerate(tasks):
            t = self._resolve(net, name, i)
            scale = getattr(sources[i], "scale", None) if sources is not None else None
            if scale is not None and int(scale) != net.scales[t]:
                raise ConfigError(
                    f"datasets.train.sources.{i} (task {name!r}) has scale {scale}, but IPT task {t} "
                    f"({name!r}) has scale {net.scales[t]}"
                )

    @staticmethod
    def _resolve(net: Any, name: Any, task_id: int | None = None) -> int:
        """Head index of a sample's task name (or source id when the network has no names)."""
        if isinstance(name, str) and net.task_names:
            if name not in net.task_names:
                raise ConfigError(
                    f"training task {name!r} is not a task of the network (task_names: {', '.join(net.task_names)}); "
                    "give the mixture source a matching 'task'"
                )
            return net.task_index(name)
        if task_id is None:
            raise ConfigError(f"training task {name!r}: the network has no task_names; tag samples with task_id")
        return net.task_index(int(task_id))

    def task_indices(self, net: Any, batch: Batch) -> list[int]:
        """The head index of every sample of ``batch`` (see the module docstring)."""
        b = int(batch["input"].shape[0])
        names = batch.get("task")
        ids = batch.get("task_id")
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        if isinstance(ids, int):
            ids = [ids] * b
        if isinstance(names, str):
            names = [names] * b
        if names is None and ids is None:
            return [net.task] * b
        if names is not None and net.task_names:
            return [self._resolve(net, n) for n in names]
        if ids is None:
            raise ConfigError("the network has no task_names and the batch has no 'task_id'")
        return [net.task_index(int(i)) for i in ids]

    def __call__(self, model: nn.Module, batch: Batch, ctx: StepContext) -> tuple[Tensor, dict[str, float]]:
        net = unwrap(model)
        x, y = batch["input"], batch["target"]
        tasks = self.task_indices(net, batch)
        b = len(tasks)
        order = sorted(set(tasks), key=tasks.index)
        captured: list[Tensor] = []
        # The body returns (features, tokens); a hook takes the tokens while the forward goes
        # through ``model`` itself (DistributedDataParallel only syncs gradients of its forward).
        hook = net.body.register_forward_hook(lambda _m, _i, out: captured.append(out[1]))
        supervised: Tensor | None = None
        logs: dict[str, Any] = {}
        try:
            for t in order:
                if len(order) == 1:
                    xs, ys, n = x, y, b
                else:
                    index = torch.tensor([i for i, s in enumerate(tasks) if s == t], device=x.device)
                    xs, ys, n = x.index_select(0, index), y.index_select(0, index), int(index.numel())
                pred = model(xs, task=t)
                loss_t, _ = ctx.criterion(pred, ys)
                name = net.task_names[t] if net.task_names else str(t)
                logs[f"loss_{name}"] = loss_t.detach()
                term = loss_t * (n / b)
                supervised = term if supervised is None else supervised + term
        finally:
            hook.remove()
        assert supervised is not None
        logs["loss_supervised"] = supervised.detach()
        total = supervised
        if self.contrastive_weight > 0 and b >= 2:
            contrastive = self.contrastive(torch.cat(captured))
            logs["loss_contrastive"] = contrastive.detach()
            total = total + self.contrastive_weight * contrastive
        return total, logs
