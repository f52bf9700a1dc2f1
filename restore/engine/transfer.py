"""Stage-to-stage weight transfer: load a pre-trained body into a fine-tuning model by rules.

Rules are ordered ``(pattern, action)`` pairs; the first rule whose pattern matches a key
decides its action, and a key no rule matches is ``keep``. Patterns are ``fnmatch`` patterns on
state_dict key names (``*`` crosses dots), and a pattern also matches every key below it as a
module prefix: ``encoders`` is ``encoders`` or ``encoders.*``.

* ``keep``: load the tensor from the weights (the default).
* ``freeze``: load it and set ``requires_grad = False`` (buffers are simply loaded); the
  trainer's optimiser only takes parameters that require grad.
* ``reinit``: do not take it from the weights: a model key keeps its fresh initialisation
  (e.g. a head whose input channels changed), a key only the weights have is discarded on
  purpose (e.g. a stage-1 loss head the fine-tuning model does not build).

The rule itself (:class:`restore.config.schema.TransferRule`: an empty pattern, an unknown
action, a repeated pattern) is checked when the options load, naming ``path.transfer.<i>`` and
the file; rules given in code are checked by :func:`parse_rules`. The errors raised here (one
line, :class:`ConfigError`) need the model and the weights: a rule matching no key of either
side (a typo would otherwise silently do nothing), a shape mismatch on a loaded key (unless a
``reinit`` rule covers it), a ``freeze`` key the weights lack, and with ``strict`` (the
default) any model key the weights lack ("missing") or weights key the model lacks ("unused")
that no ``reinit`` rule covers. Without ``strict`` those are tolerated and listed in the report.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from restore.config.schema import TransferRule
from restore.engine.checkpoint import nonfinite_tensors
from restore.errors import ConfigError, ConfigKeyError
from restore.utils.shorten import shorten_list

__all__ = ["TransferReport", "TransferRule", "freeze_by_rules", "parse_rules", "transfer_from_file", "transfer_weights"]
_LIST_MAX = 6


def parse_rules(rules: Iterable[Any] | None) -> list[TransferRule]:
    """Rules from :class:`TransferRule` s (``path.transfer``, checked when the options loaded),
    ``(pattern, action)`` pairs, ``{pattern: P, action: A}`` or ``{P: A}`` mappings (from code)."""
    out = []
    for i, rule in enumerate(rules or ()):
        if isinstance(rule, TransferRule):
            out.append(rule)
            continue
        if isinstance(rule, Mapping) and set(rule) == {"pattern", "action"}:
            pattern, action = rule["pattern"], rule["action"]
        elif isinstance(rule, Mapping) and len(rule) == 1:
            (pattern, action), = rule.items()
        elif isinstance(rule, (tuple, list)) and len(rule) == 2:
            pattern, action = rule
        else:
            raise ConfigError(f"transfer rule {i} must be {{pattern: ..., action: ...}}, got {rule!r}")
        try:
            out.append(TransferRule(pattern, action))
        except ConfigKeyError as exc:
            raise ConfigError(f"transfer rule {i} ({pattern!r}): {exc}") from None
    return out


@dataclass
class TransferReport:
    """What :func:`transfer_weights` did, key by key (state_dict names).

    ``loaded`` were loaded and stay trainable (buffers included), ``frozen`` were loaded and
    frozen, ``reinit`` kept their fresh initialisation by rule, ``missing`` kept it because the
    weights lack them (non-strict only), ``unused`` are weights keys the model did not take.
    ``values`` counts the elements of each group.
    """

    source: str
    loaded: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)
    reinit: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    values: dict[str, int] = field(default_factory=dict)

    GROUPS: ClassVar[tuple[tuple[str, str], ...]] = (("loaded", "loaded"), ("frozen", "frozen"),
                                           ("reinit", "re-initialised"), ("missing", "missing"),
                                           ("unused", "unused"))

    def counts(self) -> dict[str, int]:
        """Number of tensors per group."""
        return {name: len(getattr(self, name)) for name, _ in self.GROUPS}

    def summary(self) -> str:
        """A compact table: tensors and values per group, and the first names of the small groups."""
        lines = [f"weight transfer from {self.source}:"]
        for name, label in self.GROUPS:
            keys = getattr(self, name)
            line = f"  {label:<15}{len(keys):>6} tensors {self.values.get(name, 0):>12,} values"
            if keys and name != "loaded":
                line += f"  ({shorten_list(keys, 3)})"
            lines.append(line)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def transfer_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor], rules: Iterable[Any] | None = (),
                     *, strict: bool = True, source: str = "weights") -> TransferReport:
    """Load ``state_dict`` into ``model`` under ``rules`` (see the module docstring).

    Nothing is changed when an error is raised. Returns the report (print ``report.summary()``).
    """
    parsed = parse_rules(rules)
    own = model.state_dict()
    hits = [0] * len(parsed)

    def action_of(key: str) -> str | None:
        for i, rule in enumerate(parsed):
            if rule.matches(key):
                hits[i] += 1
                return rule.action
        return None

    report = TransferReport(source=source)
    params = dict(model.named_parameters())
    to_load: dict[str, torch.Tensor] = {}
    shapes, lacking_frozen = [], []
    for key, tensor in own.items():
        action = action_of(key) or "keep"
        if action == "reinit":
            report.reinit.append(key)
        elif key not in state_dict:
            (lacking_frozen if action == "freeze" else report.missing).append(key)
        elif tuple(state_dict[key].shape) != tuple(tensor.shape):
            shapes.append(f"{key} {tuple(state_dict[key].shape)} vs model {tuple(tensor.shape)}")
        else:
            to_load[key] = state_dict[key]
            (report.frozen if action == "freeze" and key in params else report.loaded).append(key)
    unused_covered = []
    for key in state_dict:
        if key not in own:
            report.unused.append(key)
            if action_of(key) == "reinit":
                unused_covered.append(key)

    problems = []
    idle = [rule.pattern for rule, n in zip(parsed, hits) if n == 0]
    if idle:
        problems.append(f"rule(s) matching no key of the model or the weights: {shorten_list(idle, _LIST_MAX)}")
    if shapes:
        problems.append(f"shape mismatch (add a reinit rule to keep the fresh init): {shorten_list(shapes, _LIST_MAX)}")
    if lacking_frozen:
        problems.append(f"freeze rule on keys the weights lack: {shorten_list(lacking_frozen, _LIST_MAX)}")
    if strict and report.missing:
        problems.append(f"missing keys: {shorten_list(report.missing, _LIST_MAX)}")
    uncovered = [k for k in report.unused if k not in unused_covered]
    if strict and uncovered:
        problems.append(f"unused keys (add a reinit rule to discard them): {shorten_list(uncovered, _LIST_MAX)}")
    nonfinite = nonfinite_tensors(to_load)
    if nonfinite:
        problems.append(f"NaN/inf values in tensor {shorten_list(nonfinite, _LIST_MAX)}")
    if problems:
        raise ConfigError(f"weights {source} do not transfer into {type(model).__name__}: " + "; ".join(problems))

    model.load_state_dict(to_load, strict=False)
    for key in report.frozen:
        params[key].requires_grad_(False)
    sizes = {**{k: v.numel() for k, v in own.items()}, **{k: v.numel() for k, v in state_dict.items() if k not in own}}
    report.values = {name: sum(sizes[k] for k in getattr(report, name)) for name, _ in report.GROUPS}
    return report


def freeze_by_rules(model: nn.Module, rules: Iterable[Any] | None) -> list[str]:
    """Set ``requires_grad = False`` on the parameters whose first matching rule is ``freeze``.

    ``requires_grad`` is not saved in checkpoints: a resumed fine-tuning run calls this (instead of
    loading the pre-trained weights again) before building its optimiser, so its parameter list
    matches the checkpoint's. Returns the frozen names.
    """
    parsed = parse_rules(rules)
    frozen = []
    for name, param in model.named_parameters():
        action = next((rule.action for rule in parsed if rule.matches(name)), "keep")
        if action == "freeze":
            param.requires_grad_(False)
            frozen.append(name)
    return frozen


def transfer_from_file(model: nn.Module, path: str | os.PathLike, rules: Iterable[Any] | None = (), *,
                       strict: bool = True, key: str | None = None) -> TransferReport:
    """:func:`transfer_weights` from a weights file in any layout the checkpoint reader accepts."""
    from restore.engine.checkpoint import extract_state_dict, load_file

    state = extract_state_dict(load_file(path), str(path), key)
    return transfer_weights(model, state, rules, strict=strict, source=f"'{path}'")
