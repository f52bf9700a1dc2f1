"""Stage-to-stage weight transfer: each rule, the report, the errors, and a two-stage TAPE-R run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from restore.config import load_options
from restore.engine.checkpoint import load_file
from restore.engine.transfer import TransferRule, freeze_by_rules, parse_rules, transfer_from_file, transfer_weights
from restore.errors import ConfigError


class Body(nn.Module):
    """head (conv) -> encoders (two convs) -> norm (with a buffer) -> tail."""

    def __init__(self, in_nc: int = 3, extra: bool = False) -> None:
        super().__init__()
        self.head = nn.Conv2d(in_nc, 4, 3)
        self.encoders = nn.ModuleList([nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1)])
        self.norm = nn.BatchNorm2d(4)
        self.tail = nn.Conv2d(4, 3, 1)
        self.extra = nn.Linear(2, 2) if extra else None


def pretrained(**kwargs) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    source = Body(**kwargs)
    with torch.no_grad():
        for p in source.parameters():
            p.add_(1.0)  # clearly different from any fresh init
        source.norm.running_mean.fill_(0.5)
    return source.state_dict()


def fresh(**kwargs) -> tuple[Body, dict[str, torch.Tensor]]:
    torch.manual_seed(2)
    model = Body(**kwargs)
    return model, {k: v.clone() for k, v in model.state_dict().items()}


def test_default_keep_loads_everything_and_reports_it() -> None:
    state = pretrained()
    model, _ = fresh()
    report = transfer_weights(model, state, source="'stage1.pth'")
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert report.counts() == {"loaded": len(state), "frozen": 0, "reinit": 0, "missing": 0, "unused": 0}
    assert report.values["loaded"] == sum(v.numel() for v in state.values())
    assert all(p.requires_grad for p in model.parameters())
    text = report.summary()
    assert text.splitlines()[0] == "weight transfer from 'stage1.pth':"
    rows = {line.split()[0]: line for line in text.splitlines()[1:]}
    assert set(rows) == {"loaded", "frozen", "re-initialised", "missing", "unused"}
    assert f"{len(state)} tensors" in rows["loaded"] and f"{report.values['loaded']:,} values" in rows["loaded"]
    assert str(report) == text


def test_reinit_keeps_the_fresh_init_and_freeze_loads_and_freezes() -> None:
    state = pretrained()
    model, init = fresh()
    report = transfer_weights(model, state, [("head", "reinit"), ("encoders.*", "freeze"), ("norm", "freeze")])
    now = model.state_dict()
    assert report.reinit == ["head.weight", "head.bias"]
    for key in report.reinit:
        assert torch.equal(now[key], init[key]) and not torch.equal(now[key], state[key])
    assert set(report.frozen) == {f"encoders.{i}.{n}" for i in (0, 1) for n in ("weight", "bias")} | {
        "norm.weight", "norm.bias"}
    params = dict(model.named_parameters())
    for key in report.frozen:
        assert torch.equal(now[key], state[key]) and not params[key].requires_grad
    # buffers under a freeze rule are simply loaded
    assert "norm.running_mean" in report.loaded and torch.equal(now["norm.running_mean"], state["norm.running_mean"])
    assert params["tail.weight"].requires_grad and params["head.weight"].requires_grad
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"head.weight", "head.bias", "tail.weight", "tail.bias"}
    assert report.counts()["frozen"] == 6 and report.values["frozen"] == 2 * (16 + 4) + 4 + 4
    # a resumed run re-applies the same freezing without loading anything
    again, _ = fresh()
    assert set(freeze_by_rules(again, [("head", "reinit"), ("encoders.*", "freeze"), ("norm", "freeze")])) == set(
        report.frozen)
    assert {n for n, p in again.named_parameters() if p.requires_grad} == trainable
    summary = report.summary()
    assert "re-initialised      2 tensors" in summary and "(head.weight, head.bias)" in summary


def test_first_matching_rule_wins_and_unmatched_keys_are_kept() -> None:
    state = pretrained()
    model, init = fresh()
    report = transfer_weights(model, state, [("encoders.0.*", "keep"), ("encoders", "freeze"), ("*.bias", "reinit")])
    params = dict(model.named_parameters())
    assert params["encoders.0.weight"].requires_grad and params["encoders.0.bias"].requires_grad
    assert not params["encoders.1.weight"].requires_grad and not params["encoders.1.bias"].requires_grad
    assert set(report.reinit) == {"head.bias", "norm.bias", "tail.bias"}
    assert torch.equal(model.state_dict()["tail.bias"], init["tail.bias"])
    assert torch.equal(model.state_dict()["tail.weight"], state["tail.weight"])


def test_shape_mismatch_is_an_error_unless_reinit_covers_it() -> None:
    state = pretrained()
    model, init = fresh(in_nc=4)  # e.g. a mask channel added for fine-tuning
    expected = r"shape mismatch .*head\.weight \(4, 3, 3, 3\) vs model \(4, 4, 3, 3\)"
    with pytest.raises(ConfigError, match=expected) as err:
        transfer_weights(model, state)
    assert "\n" not in str(err.value)
    for key, value in model.state_dict().items():  # an error changes nothing
        assert torch.equal(value, init[key])
    report = transfer_weights(model, state, [{"pattern": "head.weight", "action": "reinit"}])
    assert report.reinit == ["head.weight"] and "head.bias" in report.loaded
    assert torch.equal(model.head.weight.detach(), init["head.weight"])


def test_missing_and_unused_keys_strict_and_not() -> None:
    state = pretrained(extra=True)  # the weights hold a head the model does not build
    model, _ = fresh()
    with pytest.raises(ConfigError, match=r"unused keys .*extra\.weight, extra\.bias"):
        transfer_weights(model, state)
    report = transfer_weights(model, state, [{"extra": "reinit"}])  # discarded on purpose
    assert report.unused == ["extra.weight", "extra.bias"] and report.values["unused"] == 6
    assert "(extra.weight, extra.bias)" in report.summary()

    partial = {k: v for k, v in pretrained().items() if not k.startswith("tail.")}
    model, init = fresh()
    with pytest.raises(ConfigError, match=r"missing keys: tail\.weight, tail\.bias"):
        transfer_weights(model, partial)
    report = transfer_weights(model, partial, strict=False)
    assert report.missing == ["tail.weight", "tail.bias"]
    assert torch.equal(model.tail.weight.detach(), init["tail.weight"])
    report = transfer_weights(fresh()[0], partial, [("tail", "reinit")])  # strict, but re-initialised by rule
    assert report.reinit == ["tail.weight", "tail.bias"] and not report.missing


def test_rule_errors_are_one_line() -> None:
    state = pretrained()
    with pytest.raises(ConfigError, match="unknown action 'drop'"):
        transfer_weights(fresh()[0], state, [("head", "drop")])
    with pytest.raises(ConfigError, match=r"matching no key .*encoder\.\*"):
        transfer_weights(fresh()[0], state, [("encoder.*", "freeze")])  # typo: 'encoders'
    partial = {k: v for k, v in state.items() if not k.startswith("tail.")}
    with pytest.raises(ConfigError, match="freeze rule on keys the weights lack: tail.weight"):
        transfer_weights(fresh()[0], partial, [("tail", "freeze")], strict=False)
    with pytest.raises(ConfigError, match="rule 0"):
        parse_rules([{"pattern": "a", "action": "keep", "x": 1}])
    with pytest.raises(ConfigError, match=r"transfer rule 1 \(''\): pattern must be a non-empty string"):
        parse_rules([("a", "keep"), ("", "keep")])
    with pytest.raises(ConfigError, match=r"transfer rule 0 \('a'\): action names an unknown action 'thaw'"):
        parse_rules([{"a": "thaw"}])
    assert parse_rules([("a", "keep"), {"b": "freeze"}, {"pattern": "c", "action": "reinit"}]) == [
        TransferRule("a", "keep"), TransferRule("b", "freeze"), TransferRule("c", "reinit")]


def test_from_file_accepts_wrapped_and_ddp_prefixed_weights(tmp_path: Path) -> None:
    state = pretrained()
    path = tmp_path / "final.pth"
    torch.save({"params": {"module." + k: v for k, v in state.items()}, "iteration": 3}, path)
    model, _ = fresh()
    report = transfer_from_file(model, path, [("head", "freeze")])
    assert report.source == f"'{path}'" and report.counts()["frozen"] == 2
    assert torch.equal(model.tail.weight.detach(), state["tail.weight"])


# ---------------------------------------------------------------- two-stage run on CPU
TINY = ("{type: tape_r, embed_dim: 8, depths_enc: [1, 1], depth_mid: 1, depths_dec: [1, 1], heads: [1, 2], "
        "heads_mid: 2, win_size: 4, prior_tokens: 8, pem_heads: 2, prior_loss: %s}")
STAGE = """
name: {name}
task: {task}
seed: 5
network: {network}
datasets:
  train: {{type: synthetic_noise, root: {root}, noise: {noise}, crop_size: 32, flip_rotate: true, batch_size: 2,
          num_workers: 0}}
train:
  total_iter: 2
  step: {step}
  optimizer: {{type: adamw, lr: 1e-3, weight_decay: 0.02}}
  losses: [{{type: charbonnier, eps: 1e-3}}]
  val_every: 1000
  save_every: 1000
  log_every: 1
path: {{experiments_root: {exp}}}
"""


def test_two_stage_tiny_tape_r_run(tmp_path: Path) -> None:
    import cv2

    from restore.engine.trainer import Trainer

    root = tmp_path / "clean"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        cv2.imwrite(str(root / f"{i}.png"), (rng.random((40, 48, 3)) * 255).astype(np.uint8))
    exp = tmp_path / "experiments"

    def run(name: str, task: str, prior_loss: str, noise: str, step: str, overrides=()) -> Trainer:
        path = tmp_path / f"{name}.yml"
        path.write_text(STAGE.format(name=name, task=task, network=TINY % prior_loss, root=root, noise=noise,
                                     step=step, exp=exp))
        trainer = Trainer(load_options(path, list(overrides)), tensorboard=False)
        trainer.fit()
        return trainer

    # stage 1: task-agnostic, reconstruction + prior-consistency loss
    stage1 = run("pre", "pretrain", "true", "gauss5_50", "{type: tape_prior, prior_weight: 0.1}")
    log = (exp / "pre" / "log.jsonl").read_text()
    assert '"train/loss_prior"' in log
    weights = load_file(exp / "pre" / "models" / "final.pth")["params"]
    assert "prior_proj.weight" in weights and stage1.iteration == 2

    # stage 2: one task, no loss head; encoders frozen, the stage-1 loss head discarded (path.transfer)
    stage2 = run("ft", "denoise", "false", "gauss25", "{type: supervised}", [
        f"path.pretrained={exp / 'pre' / 'models' / 'final.pth'}",
        "path.transfer=[{pattern: prior_proj, action: reinit}, {pattern: encoders, action: freeze}]"])
    log = (exp / "ft" / "train.log").read_text()
    assert "weight transfer from" in log and "prior_proj" in log  # the printed summary
    params = dict(stage2.model.named_parameters())
    frozen = [n for n in params if n.startswith("encoders.")]
    assert frozen and all(not params[n].requires_grad for n in frozen)
    assert all(p.requires_grad for n, p in params.items() if n not in frozen)
    in_optimizer = {id(p) for g in stage2.optimizer.param_groups for p in g["params"]}
    assert not any(id(params[n]) in in_optimizer for n in frozen)
    final = load_file(exp / "ft" / "models" / "final.pth")["params"]
    assert "prior_proj.weight" not in final
    for key in frozen:  # frozen: still the stage-1 values after fine-tuning
        assert torch.equal(final[key], weights[key]), key
    moved = {k for k in final if k in weights and not torch.equal(final[k], weights[k])}
    assert "tail.weight" in moved and "pem.prior" in moved
    assert stage2.iteration == 2
