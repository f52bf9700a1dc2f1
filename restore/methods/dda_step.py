"""DDA training (``train.step: {type: dda}``): one supernet, a loss per score class at its width.

Dynamic demoiréing acceleration (shared/specs/dda.md §4) trains a slimmable network
(``wdnet_slim``, ``n2n_unet_slim``, any :class:`restore.archs.slimmable.Slimmable`) so that
each width is good at the patches it will be given at test time:

1. before training, a pool of training patches is scored with a tile score (``score``, the
   moiré prior for demoiréing) and split into ``len(widths)`` classes by the score quantiles
   (terciles for three widths) -- :mod:`restore.methods.dda_classes`; the scores and
   boundaries are cached in the run folder (``dda_classes.json``) and reused on resume;
2. every micro-batch holds ``datasets.train.batch_size`` patches of *every* class (so it loads
   ``len(widths)`` times that many);
3. class ``k`` runs at ``widths[k]`` (lowest scores at the narrowest width, highest at the
   widest) and the loss is the sum of the classes' losses, each the configured
   ``train.losses`` on its own patches. ``loss_w<width>`` is logged for every class.

The network is left at its previous width (normally 1.0) after every step, so validation and
the saved weights are at full width. Each iteration runs one forward per class, which
DistributedDataParallel does not allow: the step runs in one process.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from restore import registry
from restore.archs.contract import input_keys, unwrap
from restore.archs.slimmable import at_width, is_slimmable
from restore.config.schema import TileScoreName, to_plain
from restore.errors import ConfigError, ConfigKeyError
from restore.methods.dda_classes import ClassBatches, ClassCache, ScoredPool, pool_keys, quantile_boundaries
from restore.methods.step import Batch, StepContext, TrainStep

DEFAULT_WIDTHS = (0.25, 0.5, 1.0)


class DDAStep(TrainStep):
    """Args (``train.step``):
        score: the tile score that makes the classes (:mod:`restore.metrics.tile_scores`; ``moire``).
        widths: one width per class, strictly ascending in (0, 1]; the lowest-score class trains the
            first. Default ``[0.25, 0.5, 1.0]``; the reference uses ``[0.25, 0.5, 0.75]``.
        patches: size of the scored patch pool (default: 16 per training image, at least 32 times
            the number of classes, at most 20,000).

    The batch of every class is ``datasets.train.batch_size``.
    """

    def __init__(self, score: TileScoreName = "moire", widths: list[float] | None = None,
                 patches: int | None = None) -> None:
        args = {"score": score, "widths": widths, "patches": patches}
        try:
            self.check_options(args)
        except ConfigKeyError as exc:
            raise ConfigError(f"train.step.{exc.key} {exc.problem}") from None
        self.score = score
        self.widths = [float(w) for w in (widths if widths is not None else DEFAULT_WIDTHS)]
        self.patches = patches
        self.pool: ScoredPool | None = None
        self.fingerprint = ""
        self._from_cache = False
        self.seed = 0

    @staticmethod
    def check_options(args: dict[str, Any]) -> None:
        """Value checks the type hints cannot state (run when the option file is loaded)."""
        widths = args.get("widths")
        if widths is not None:
            if not widths:
                raise ConfigKeyError("must list at least one width", "widths")
            if any(not 0 < float(w) <= 1 for w in widths):
                raise ConfigKeyError(f"must hold widths in (0, 1], got {list(widths)}", "widths")
            if any(b <= a for a, b in zip(widths, widths[1:])):
                raise ConfigKeyError(f"must be strictly ascending (class k trains width k), got {list(widths)}", "widths")
        patches = args.get("patches")
        n = len(widths) if widths else len(DEFAULT_WIDTHS)
        if patches is not None and patches < n:
            raise ConfigKeyError(f"must be at least the number of classes ({n}), got {patches}", "patches")

    # ------------------------------------------------------------------ set-up
    def setup(self, ctx: StepContext) -> None:
        net = unwrap(ctx.model)
        if not is_slimmable(net):
            slim = ", ".join(n for n in registry.names("arch") if n.endswith("_slim"))
            raise ConfigError(f"train.step 'dda' trains a slimmable network ({slim}); network "
                              f"{type(net).__name__} has no set_width")
        if ctx.world_size > 1:
            raise ConfigError("train.step 'dda' runs one forward per width class, which DistributedDataParallel "
                              "does not allow: train it in one process")
        keys = input_keys(net)
        if keys[0] != "input":
            raise ConfigError(f"train.step 'dda' scores the 'input' image; network {type(net).__name__} takes {keys}")
        self.seed = int(getattr(ctx.options, "seed", 0))
        n_images = len(ctx.train_set)
        n = len(self.widths)
        patches = self.patches if self.patches is not None else min(20000, max(16 * n_images, 32 * n))
        spec = ctx.options.datasets.train
        self.fingerprint = ClassCache.fingerprint(to_plain(spec.dataset), getattr(ctx.train_set, "names", []),
                                                  self.score, patches, n)
        cache = ClassCache(ctx.run_folder)
        pool = cache.read(self.fingerprint)
        self._from_cache = pool is not None
        if pool is None:
            ctx.log.info(f"dda: scoring {patches} training patches with the '{self.score}' score")
            keys_ = pool_keys(n_images, patches)
            scores = score_pool(ctx.train_set, keys_, self.score, spec.num_workers)
            pool = ScoredPool(keys_, scores, quantile_boundaries(scores, n))
        else:
            ctx.log.info(f"dda: read the scored patches and class boundaries from {cache.path}")
        pool.check(self.widths)
        self.pool = pool
        sizes = ", ".join(f"width {w}: {len(c)}" for w, c in zip(self.widths, pool.classes))
        bounds = ", ".join(f"{b:.4g}" for b in pool.boundaries)
        ctx.log.info(f"dda: {self.score} boundaries [{bounds}]; patches per class: {sizes}")

    def batch_sampler(self, ctx: StepContext, start: int) -> ClassBatches:
        """``batch_size`` keys of every class per micro-batch; writes the class cache first (the run
        folder is open by now)."""
        assert self.pool is not None, "setup() first"
        if not self._from_cache and ctx.rank == 0:
            path = ClassCache(ctx.run_folder).write(self.fingerprint, self.pool, self.score, self.widths)
            ctx.log.info(f"dda: wrote the scored patches and class boundaries to {path}")
            self._from_cache = True
        return ClassBatches(self.pool.classes, ctx.batch_size, self.seed, ctx.rank, ctx.world_size, start)

    # ------------------------------------------------------------------- step
    def __call__(self, model: nn.Module, batch: Batch, ctx: StepContext) -> tuple[Tensor, dict[str, float]]:
        if "target" not in batch:
            raise ConfigError("train.step 'dda' needs a dataset with targets (a supervised loss per class)")
        net = unwrap(model)
        keys = input_keys(net)
        per_class = int(batch["input"].shape[0]) // len(self.widths)
        total: Tensor | None = None
        logs: dict[str, Any] = {}
        for k, width in enumerate(self.widths):
            part = slice(k * per_class, (k + 1) * per_class)
            with at_width(net, width):
                pred = model(*(batch[key][part] for key in keys))
            loss, _ = ctx.criterion(pred, batch["target"][part])
            logs[f"loss_w{width:g}"] = loss.detach()
            total = loss if total is None else total + loss
        assert total is not None
        return total, logs


def score_pool(dataset: Any, keys: list[tuple[int, int]], score: str, num_workers: int = 0) -> list[float]:
    """Score the input image of every pool patch (a DataLoader over the keys, ``num_workers`` workers)."""
    from restore.metrics.tile_scores import score_batch

    loader = torch.utils.data.DataLoader(dataset, sampler=keys, batch_size=None, num_workers=num_workers)
    out: list[float] = []
    for sample in loader:
        image = sample["input"][None]
        mask = sample["mask"][None] if isinstance(sample.get("mask"), Tensor) else None
        out.extend(score_batch(score, image, mask).tolist())
    return out
