"""Several datasets drawn with configurable weights, each sample tagged with its source task.

Pre-training mixes tasks: IPT trains one body with a head and a tail per task (it needs each
sample's task), TAPE trains one task-agnostic network (it must not see the task). Sources are
ordinary dataset sections, built through the registry::

    type: mixture
    tag_tasks: true            # false: no "task"/"task_id" keys at all (TAPE)
    batch_by_task: false       # true: every training batch comes from one source (IPT, SR)
    sources:
      - {type: degraded_folder, root: datasets/DIV2K/HR, degradation: bicubic_x2, crop_size: 96, weight: 1}
      - {type: paired_folder, input_dir: ..., target_dir: ..., crop_size: 48, weight: 2, task: derain}

Sample: ``{"input", "target", "name", "input_path", "task", "task_id"}`` — other keys of the
sources are dropped so that samples of different sources collate; ``task`` is the source's
``task`` key (else the dataset's own ``task`` attribute, e.g. the degradation name, else
``source<i>``), ``task_id`` its index in ``sources`` (names in :attr:`MixtureDataset.tasks`),
``name`` is ``<task>/<source name>``. ``weight`` and ``task`` are the mixture's keys; every
other key is the source dataset's. A source is a :class:`MixtureSource` section, so the option
validator checks it at load time like any other section (unknown keys, types, the dataset's
arguments against its constructor), naming the file and ``datasets.train.sources.<i>.<key>``.
A source without ``phase`` or ``seed`` gets the mixture's.

Training (``phase: train``) — key ``(index, seed)``, ``len`` = ``length`` (default: the
sources' total): the source is drawn from the sample seed with probability ``weight / sum``
(stream ``"mixture"``), the image is ``index mod len(source)`` and the source loads
``(that image, stable_seed(seed, "source"))``. So a sample is a pure function of its key and
the sampler's ``(index, seed)`` stream keeps training exact and resumable. Each epoch's index
permutation spreads over every source's images, each hit ``length / len(source)`` times
(+-1).

Batching: a batch stacks ``input``s and ``target``s, so sources drawn into one batch must give
equal sizes. Per-sample draws (``batch_by_task: false``, TAPE's uniform pool) need every source
to produce the same input and target sizes (checked at construction from ``crop_size`` and
``scale``; for super-resolution mixed with restoration use ``sr_input: upsampled`` on the SR
sources). ``batch_by_task: true`` makes the whole batch come from one source, drawn from the
seed of the batch's FIRST key (the DataLoader hands the batch's keys to
:meth:`MixtureDataset.__getitems__`), so sizes may differ between sources (IPT: LR inputs of
48 px with targets of 96/144/192 px); a batch of ``B`` keys is still a pure function of its
keys, and sources are chosen per batch in proportion to the weights.

Validation/test: the mixture is the concatenation of the sources (weights unused), each
sample exactly what the source alone gives for that image (seeded by its own name).
"""

from __future__ import annotations

import bisect
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import torch

from restore import registry
from restore.component import Component, Kind
from restore.data.base import ProblemSink, SeededDataset, check_phase, make_generator, parse_key, stable_seed
from restore.errors import ConfigError, ConfigKeyError, DataError

#: Sample keys kept from a source.
KEPT = ("input", "target", "name", "input_path")


@dataclass
class MixtureSource:
    """One entry of ``sources``: a dataset section plus the mixture's own keys, in one mapping
    (``{type: degraded_folder, root: ..., weight: 2, task: derain}``).

    The option validator checks it at load time like any section (the dataset's arguments
    against its constructor), naming the file and ``datasets.<...>.sources.<i>.<key>``.
    ``weight``: relative draw probability (> 0); ``task``: the tag (default: the dataset's own
    ``task`` attribute, else ``source<i>``).
    """

    __component__: ClassVar[tuple[str, str]] = ("dataset", "dataset")
    dataset: Annotated[Component, Kind("dataset")]
    weight: float = 1.0
    task: str | None = None

    def __post_init__(self) -> None:
        if self.dataset.type == "mixture":
            raise ConfigKeyError("must not be 'mixture': a mixture cannot contain a mixture (list its sources instead)", "type")
        weight = self.weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
            raise ConfigKeyError(f"must be a positive number, got {weight!r}", "weight")


def as_source(index: int, spec: MixtureSource | Mapping[str, Any]) -> MixtureSource:
    """``sources[index]`` as a :class:`MixtureSource`: from the option validator already one;
    from code a ``{type, **dataset args, weight?, task?}`` mapping, whose arguments the dataset's
    constructor judges when it is built."""
    if isinstance(spec, MixtureSource):
        return spec
    where = f"sources.{index}"
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where} must be a mapping with a 'type' (a dataset name), got {type(spec).__name__}")
    name = spec.get("type")
    if not isinstance(name, str) or name not in registry.names("dataset"):
        raise ConfigError(f"{where}.type: {registry.unknown_name_message('dataset', str(name))}")
    own = {k: spec[k] for k in ("weight", "task") if k in spec}
    args = {k: v for k, v in spec.items() if k not in ("type", "weight", "task")}
    try:
        return MixtureSource(Component("dataset", name, args, where=where), **own)
    except ConfigKeyError as exc:
        raise ConfigError(f"{where}.{exc.key} {exc.problem}") from None


def build_source(source: MixtureSource, phase: str, seed: int) -> SeededDataset:
    """The source's dataset; one without its own ``phase`` or ``seed`` gets the mixture's."""
    params = inspect.signature(registry.get("dataset", source.dataset.type)).parameters
    inherited = {k: v for k, v in (("phase", phase), ("seed", seed)) if k in params and k not in source.dataset.args}
    return source.dataset.build(**inherited)


def sample_sizes(dataset: Any) -> tuple[int, int] | None:
    """``(input side, target side)`` of a cropped source's samples, None when not cropped."""
    if hasattr(dataset, "sample_sizes"):
        return dataset.sample_sizes()
    crop = getattr(dataset, "crop_size", None)
    if crop is None:
        return None
    return crop, crop * int(getattr(dataset, "scale", 1))


class MixtureDataset(SeededDataset):
    """Weighted mixture of dataset sections (see the module docstring).

    Args (YAML options):
        sources: dataset sections, each with ``type``, its own arguments, and optionally
            ``weight`` (default 1) and ``task`` (the tag): :class:`MixtureSource` s, or from code
            plain mappings of the same keys.
        tag_tasks: add ``task`` (str) and ``task_id`` (int) to each sample (false for TAPE).
        batch_by_task: draw one source per training batch instead of per sample.
        length: training epoch length (default: the sum of the sources' lengths).
        phase, seed: as for every dataset (passed to sources that do not set their own).
    """

    def __init__(
        self,
        sources: list[MixtureSource],
        tag_tasks: bool = True,
        batch_by_task: bool = False,
        length: int | None = None,
        phase: Literal["train", "val", "test"] = "train",
        seed: int = 0,
    ) -> None:
        super().__init__(check_phase(phase), seed)
        if not isinstance(sources, list) or not sources:
            raise ConfigError("sources must be a non-empty list of dataset sections")
        if length is not None and length < 1:
            raise ConfigError(f"length must be a positive int or null, got {length}")
        specs = [as_source(i, spec) for i, spec in enumerate(sources)]
        self.sources = [build_source(spec, phase, seed) for spec in specs]
        self.weights = [float(spec.weight) for spec in specs]
        self.tasks: list[str] = []
        for i, (dataset, spec) in enumerate(zip(self.sources, specs)):
            own = getattr(dataset, "task", None)
            name = spec.task if spec.task is not None else own if isinstance(own, str) else f"source{i}"
            if name in self.tasks:
                raise ConfigError(
                    f"sources.{i}: task {name!r} is also source {self.tasks.index(name)}'s; give each source a distinct 'task'"
                )
            if len(dataset) == 0:
                raise DataError(f"sources.{i} ({name}) has no samples")
            self.tasks.append(name)
        self.tag_tasks, self.batch_by_task = tag_tasks, batch_by_task
        total = sum(self.weights)
        self._cumulative = [sum(self.weights[: i + 1]) / total for i in range(len(self.weights))]
        self._offsets = [0]
        for dataset in self.sources:
            self._offsets.append(self._offsets[-1] + len(dataset))
        self.length = length if length is not None else self._offsets[-1]
        if self.phase == "train":
            self.names = []
            if not batch_by_task:
                self._check_collatable()
        else:
            self.names = [f"{t}/{n}" for t, d in zip(self.tasks, self.sources) for n in d.names]

    def _check_collatable(self) -> None:
        sizes = [sample_sizes(d) for d in self.sources]
        known = {s for s in sizes if s is not None}
        if len(known) > 1:
            listing = "; ".join(
                f"{i} {t}: input {s[0]}, target {s[1]}" for i, (t, s) in enumerate(zip(self.tasks, sizes)) if s
            )
            raise ConfigError(
                f"sources give samples of different sizes ({listing}), which cannot share a batch: "
                "set batch_by_task: true, or equal crop sizes (sr_input: upsampled for bicubic sources)"
            )

    # ------------------------------------------------------------------ sampling
    def __len__(self) -> int:
        return self.length if self.phase == "train" else self._offsets[-1]

    def source_of(self, sample_seed: int) -> int:
        """The source index drawn for this sample (or batch) seed: P(i) = weight_i / sum."""
        return min(bisect.bisect_right(self._cumulative, _uniform(sample_seed)), len(self.sources) - 1)

    def locate(self, index: int) -> tuple[int, int]:
        """Val/test: ``(source, image index)`` of concatenated position ``index``."""
        s = bisect.bisect_right(self._offsets, index) - 1
        return s, index - self._offsets[s]

    def sample_files(self, index: int) -> dict[str, Path]:
        s, j = self.locate(index) if self.phase != "train" else (0, 0)
        return self.sources[s].sample_files(j)

    def verify(self, decode: bool = False, on_problem: ProblemSink | None = None) -> int:
        """Every source's files (see :meth:`SeededDataset.verify`)."""
        return sum(dataset.verify(decode, on_problem) for dataset in self.sources)

    def __getitem__(self, key: Any) -> dict[str, Any]:
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: list[Any]) -> list[dict[str, Any]]:
        """Load a batch; with ``batch_by_task`` (train) all from the source of the first key's seed."""
        parsed = [parse_key(k, len(self)) for k in keys]
        if self.phase != "train":
            out = []
            for index, seed in parsed:
                s, j = self.locate(index)
                key = j if seed is None else (j, stable_seed(seed, "source"))
                out.append(self._tagged(s, self.sources[s][key]))
            return out
        seeds = [self.sample_seed(index) if seed is None else seed for index, seed in parsed]
        batch_source = self.source_of(seeds[0]) if self.batch_by_task else None
        out = []
        for (index, _), seed in zip(parsed, seeds):
            s = batch_source if batch_source is not None else self.source_of(seed)
            j = index % len(self.sources[s])
            out.append(self._tagged(s, self.sources[s][(j, stable_seed(seed, "source"))]))
        return out

    def _tagged(self, s: int, sample: dict[str, Any]) -> dict[str, Any]:
        if "target" not in sample:
            raise DataError(f"mixture source {s} ({self.tasks[s]}) yields no 'target'; a mixture needs degraded/clean pairs")
        out = {k: sample[k] for k in KEPT if k in sample}
        out["name"] = f"{self.tasks[s]}/{sample['name']}"
        if self.tag_tasks:
            out["task"] = self.tasks[s]
            out["task_id"] = s
        return out


def _uniform(sample_seed: int) -> float:
    """U[0, 1) from the sample's ``"mixture"`` stream (float64)."""
    return float(torch.rand((), generator=make_generator(sample_seed, "mixture"), dtype=torch.float64))
