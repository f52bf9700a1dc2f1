"""The option schema, written as typed dataclasses.

Each dataclass is one section of an option file; field types are checked by
:mod:`restore.config.validate`, defaults fill what a file leaves out, and a field without a
default is required. Sections that pick a component by name (``network``, a dataset, a loss,
the optimizer, the scheduler) hold a :class:`Component`; its arguments are checked against the
registered constructor's own signature, so a component's schema lives next to its code.

A section that mixes its own keys with a component's arguments in one flat mapping (a
validation set: ``type``, dataset arguments and ``protocol`` side by side) names that component
field in ``__component__ = (field name, registry kind)``. The same holds for such a section
nested in a component's arguments (a mixture's ``sources``: :class:`restore.data.mixture.MixtureSource`).
A section that may be written as one ``key: value`` pair (a transfer rule ``{encoders: freeze}``)
names its two fields in ``__pair__``. A section's ``__post_init__`` refusing one key raises
:class:`restore.errors.ConfigKeyError`, so the error names the whole key and its file.

Paths in option files are relative to the working directory (run from the project root).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

from restore import registry
from restore.component import Component, Kind
from restore.errors import ConfigError, ConfigKeyError


@dataclass(frozen=True)
class OneOf:
    """Annotation marker: a string that must be one of a lazily computed set of names."""

    what: str
    choices: Any  # zero-argument callable returning an iterable of names


@dataclass(frozen=True)
class FolderName:
    """Annotation marker: the value (or, on a ``dict`` key type, every key) becomes a folder or
    file name, so it must be one plain name (checked at load time, naming key and file).

    ``pattern``: a stricter rule on top of :func:`restore.utils.files.plain_name_problem`,
    described by ``hint``.
    """

    what: str
    pattern: str | None = None
    hint: str = ""

    def problem(self, value: Any) -> str | None:
        """Why ``value`` cannot be this name, or None."""
        from restore.utils.files import plain_name_problem

        if self.pattern and isinstance(value, str) and not re.fullmatch(self.pattern, value):
            return f"must be a plain folder name ({self.hint})"
        return plain_name_problem(value)


RUN_NAME = FolderName("run name", r"[A-Za-z0-9][A-Za-z0-9._+-]*", "letters, digits, '.', '_', '+', '-'")
SetName = Annotated[str, FolderName("set name")]


# Protocol and metric names come from the metrics package's own tables, read through the
# registry (this layer sits below the components and never imports them).
def _protocol_names() -> list[str]:
    return registry.names("protocol")


def _metric_names() -> list[str]:
    return registry.names("metric")


def _default_protocol() -> str:
    return registry.default("protocol")


def _tile_score_names() -> list[str]:
    return registry.names("tile_score")


Protocol = Annotated[str, OneOf("evaluation protocol", _protocol_names)]
MetricName = Annotated[str, OneOf("metric", _metric_names)]
TileScoreName = Annotated[str, OneOf("tile score", _tile_score_names)]


# Constructor arguments that the engine passes itself and that option files must not set.
INJECTED: dict[str, frozenset[str]] = {
    "arch": frozenset(),
    "dataset": frozenset(),
    "loss": frozenset(),
    "metric": frozenset(),
    "optimizer": frozenset({"params"}),
    "scheduler": frozenset({"optimizer", "total_iter"}),
    "train_step": frozenset(),
}


@dataclass
class TrainSet:
    """The training dataset and how it is loaded."""

    __component__: ClassVar[tuple[str, str]] = ("dataset", "dataset")
    dataset: Annotated[Component, Kind("dataset")]
    batch_size: int = 8
    num_workers: int = 2


@dataclass
class EvalSet:
    """A validation or test set, evaluated under one named protocol."""

    __component__: ClassVar[tuple[str, str]] = ("dataset", "dataset")
    dataset: Annotated[Component, Kind("dataset")]
    protocol: Protocol = field(default_factory=_default_protocol)
    metrics: list[MetricName] | None = None  # None: the protocol's own metrics
    crop_border: int | None = None
    batch_size: int = 1
    num_workers: int = 1
    save_images: bool = False


@dataclass
class Datasets:
    train: TrainSet | None = None
    # Set names become folders (results/<name>/<set>/) and files (best_<set>_<metric>.pth).
    val: dict[SetName, EvalSet] = field(default_factory=dict)
    test: dict[SetName, EvalSet] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # An evaluation set must never draw fresh random crops/noise: unless the file says
        # otherwise, a dataset under val/test gets phase 'val'/'test' (seeded per image).
        for phase, sets in (("val", self.val), ("test", self.test)):
            for spec in sets.values():
                if "phase" not in spec.dataset.args and _accepts(spec.dataset, "phase"):
                    spec.dataset.args["phase"] = phase


def _accepts(component: Component, name: str) -> bool:
    import inspect

    return name in inspect.signature(registry.get(component.kind, component.type)).parameters


@dataclass
class LossTerm:
    """One weighted term of the training loss."""

    __component__: ClassVar[tuple[str, str]] = ("loss", "loss")
    loss: Annotated[Component, Kind("loss")]
    weight: float = 1.0


def _default_optimizer() -> Component:
    return Component("optimizer", "adam", {"lr": 2e-4})


def _default_step() -> Component:
    return Component("train_step", "supervised")


def _default_losses() -> list[LossTerm]:
    return [LossTerm(Component("loss", "l1"))]


@dataclass
class Train:
    """The optimisation recipe (iteration based).

    ``step`` names how a batch becomes a loss: ``supervised`` (network(input) against target
    with ``losses``) unless a method registers its own (self-supervised, multi-task).
    """

    total_iter: int
    step: Annotated[Component, Kind("train_step")] = field(default_factory=_default_step)
    optimizer: Annotated[Component, Kind("optimizer")] = field(default_factory=_default_optimizer)
    scheduler: Annotated[Component, Kind("scheduler")] | None = None
    losses: list[LossTerm] = field(default_factory=_default_losses)
    ema_decay: float | None = None
    amp: Literal["bf16", "fp16"] | None = None
    grad_clip: float | None = None
    accumulate: int = 1
    channels_last: bool = False
    tf32: bool | None = None  # CUDA: TF32 matmuls/convolutions on (true) or off (false); null: torch's default
    find_unused_parameters: bool = False  # DDP: steps that leave parts unused (IPT's per-task heads)
    val_every: int = 5000
    save_every: int = 5000
    log_every: int = 100
    keep_checkpoints: int = 3


@dataclass
class Adaptive:
    """``infer.adaptive``: a width per tile by how degraded it looks (DDA routing,
    :mod:`restore.engine.adaptive`); needs a slimmable network, ``infer.tile`` and backend torch.

    ``score``: a tile score (``moire``, ``noise``, ``texture``, ``mask``); ``widths``: strictly
    ascending in (0, 1], lowest scores to the first; then either ``fractions`` (the share of each
    image's tiles per width, by score rank; default equal shares) or ``thresholds`` (``len(widths)
    - 1`` ascending score boundaries, e.g. the ``boundaries`` a DDA run wrote to dda_classes.json).
    """

    score: TileScoreName = "moire"
    widths: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0])
    fractions: list[float] | None = None
    thresholds: list[float] | None = None

    def __post_init__(self) -> None:
        w = self.widths
        if not w or any(not 0 < x <= 1 for x in w) or any(b <= a for a, b in zip(w, w[1:])):
            raise ConfigKeyError(f"must be a non-empty, strictly ascending list of widths in (0, 1], got {w}", "widths")
        if self.fractions is not None and self.thresholds is not None:
            raise ConfigKeyError("and 'thresholds' are two ways to route: give one", "fractions")
        if self.fractions is not None:
            f = self.fractions
            if len(f) != len(w) or any(x < 0 for x in f) or abs(sum(f) - 1) > 1e-6:
                raise ConfigKeyError(f"must give one share >= 0 per width ({len(w)}) summing to 1, got {f}", "fractions")
        if self.thresholds is not None:
            t = self.thresholds
            if len(t) != len(w) - 1 or any(b < a for a, b in zip(t, t[1:])):
                raise ConfigKeyError(f"must give {len(w) - 1} ascending score boundaries (one fewer than widths), "
                                     f"got {t}", "thresholds")


@dataclass
class Infer:
    """How images are run through the network (shared by validation, test and batch-restore)."""

    tile: int | None = None
    tile_overlap: int = 32
    tile_batch: int = 4
    self_ensemble: bool = False
    # torch | onnxruntime | openvino | auto (the fastest installed); see restore.engine.backends
    backend: Literal["torch", "onnxruntime", "openvino", "auto"] = "torch"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # bf16/fp16 are approximate: opt-in only
    batch_size: int = 1  # restore infer: up to this many consecutive same-size images per forward
    channels_last: bool | Literal["auto"] = "auto"  # restore infer/test: auto = the architecture's default
    compile: bool = False  # restore infer/test: torch.compile the network (each new size compiles first)
    tf32: bool | None = None  # CUDA: TF32 matmuls/convolutions on (true) or off (false); null: torch's default
    adaptive: Adaptive | None = None  # DDA: width per tile by a degradation score (see Adaptive)

    def __post_init__(self) -> None:
        problem = adaptive_problem(self.adaptive, self.tile, self.backend)
        if problem is not None:
            raise ConfigKeyError(problem, "adaptive")


def adaptive_problem(adaptive: Adaptive | None, tile: int | None, backend: str) -> str | None:
    """Why ``infer.adaptive`` cannot run with these ``infer`` settings (None when it can); checked
    at load and again by the engine after command-line overrides (``--tile 0``, ``--backend``)."""
    if adaptive is None:
        return None
    if tile is None:
        return "routes tiles: set infer.tile too (the image is cut into tiles, each scored and run at its width)"
    if backend in ("onnxruntime", "openvino"):
        return (f"runs on backend torch only (an exported graph has one width), got backend {backend!r}; "
                "set infer.backend: torch")
    return None


TransferAction = Literal["keep", "reinit", "freeze"]
TRANSFER_ACTIONS: tuple[str, ...] = typing.get_args(TransferAction)


@dataclass(frozen=True)
class TransferRule:
    """One ``path.transfer`` rule: state_dict keys matching ``pattern`` get ``action``.

    ``pattern`` is an ``fnmatch`` pattern (``*`` crosses dots) that also covers every key below
    it as a module prefix (``encoders`` is ``encoders`` or ``encoders.*``). In an option file a
    rule is ``{pattern: P, action: A}``, or ``{P: A}`` for short. What the actions do:
    :mod:`restore.engine.transfer`.
    """

    __pair__: ClassVar[tuple[str, str]] = ("pattern", "action")
    pattern: str
    action: TransferAction

    def __post_init__(self) -> None:
        # The option validator has checked the types; rules built in code get the same checks.
        if not isinstance(self.pattern, str) or not self.pattern.strip():
            raise ConfigKeyError(f"must be a non-empty string, got {self.pattern!r}", "pattern")
        if self.action not in TRANSFER_ACTIONS:
            raise ConfigKeyError(f"names an unknown action {self.action!r} (known: {', '.join(TRANSFER_ACTIONS)})", "action")

    def matches(self, key: str) -> bool:
        """Whether the state_dict key ``key`` falls under this rule."""
        return fnmatch.fnmatchcase(key, self.pattern) or fnmatch.fnmatchcase(key, self.pattern + ".*")


@dataclass
class Paths:
    """Where runs go, and the weights a run starts from.

    ``transfer``: ordered :class:`TransferRule` s (keep / freeze / reinit) applied when loading
    ``pretrained`` into a fine-tuning model (:mod:`restore.engine.transfer`); the first rule
    matching a key decides, so a rule repeating an earlier rule's pattern would never apply.
    """

    experiments_root: str = "experiments"
    results_root: str = "results"
    pretrained: str | None = None
    strict_load: bool = True
    transfer: list[TransferRule] | None = None

    def __post_init__(self) -> None:
        first: dict[str, int] = {}
        for i, rule in enumerate(self.transfer or ()):
            j = first.setdefault(rule.pattern, i)
            if j != i:
                raise ConfigKeyError(
                    f"repeats the pattern {rule.pattern!r} of rule {j}, which decides first: this rule would never apply",
                    f"transfer.{i}.pattern",
                )


@dataclass
class Options:
    """A whole option file, resolved."""

    name: Annotated[str, RUN_NAME]
    task: Literal["denoise", "derain", "demoire", "shadow", "deblur", "sr", "pretrain"] | None = None
    seed: int = 0
    device: str = "auto"
    network: Annotated[Component, Kind("arch")] | None = None
    datasets: Datasets = field(default_factory=Datasets)
    train: Train | None = None
    infer: Infer = field(default_factory=Infer)
    path: Paths = field(default_factory=Paths)
    source: ClassVar[str] = ""

    def __post_init__(self) -> None:
        # ``name`` becomes a folder (experiments/<name>, results/<name>): keep it one plain name.
        # (Validation checks it first, naming the file; this guards options built in code.)
        problem = RUN_NAME.problem(self.name)
        if problem is not None:
            raise ConfigError(f"key 'name' {problem}, got {self.name!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict in option-file form (components flattened back to ``type: ...``)."""
        return to_plain(self)


def to_plain(value: Any) -> Any:
    """Dataclasses/components -> the nested dicts an option file would contain."""
    if isinstance(value, Component):
        return {"type": value.type, **{k: to_plain(v) for k, v in value.args.items()}}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        flat = getattr(type(value), "__component__", None)
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if flat and f.name == flat[0]:
                out.update(to_plain(item))
            else:
                out[f.name] = to_plain(item)
        return out
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value
