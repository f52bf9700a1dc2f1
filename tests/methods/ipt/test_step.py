"""IPT multi-task pre-training: task routing, the loss, checkpoints, pre-train -> fine-tune."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from key_listings import key_listing

from restore import registry
from restore.config import load_options
from restore.engine.checkpoint import load_file, load_weights
from restore.engine.trainer import Trainer
from restore.errors import ConfigError
from restore.losses.pixel import L1Loss
from restore.losses.weighted import WeightedSum
from restore.methods.ipt.arch import IPT, PRETRAIN_TASKS
from restore.methods.ipt.loss import patch_contrastive_loss
from restore.methods.ipt.step import IPTPretrainStep

ROOT = Path(__file__).resolve().parents[3]
# Six tasks, 12 + 12 layers (the official key set) at toy width: 12x12 inputs, 16 tokens of 36 dims.
TINY = {"n_feats": 4, "num_heads": 2, "num_layers": 12, "patch_size": 12}
SIX = {"scale": [2, 3, 4, 1, 1, 1], "num_queries": 6}


@pytest.fixture(scope="module", autouse=True)
def _no_onednn():
    """oneDNN compiles kernels per conv shape (~0.3 s each); the native path is faster for toy convs."""
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    yield
    torch.backends.mkldnn.enabled = before


def tiny_ipt(seed: int = 0, **kwargs) -> IPT:
    torch.manual_seed(seed)
    return IPT(**{**SIX, **TINY, **kwargs})


def l1_criterion() -> WeightedSum:
    return WeightedSum([("l1", L1Loss(), 1.0)])


def fake_context(model: torch.nn.Module, batch_size: int = 4, **extra) -> SimpleNamespace:
    """A StepContext without a trainer: what the step may read, nothing more."""
    return SimpleNamespace(model=model, criterion=l1_criterion(), batch_size=batch_size, train_set=extra.get("train_set"))


# --------------------------------------------------------------------------- the step on hand-built batches


def test_mixed_batch_equals_per_sample_reference() -> None:
    """Routing by task name: the loss equals running every sample alone through its own task."""
    net = tiny_ipt()
    torch.manual_seed(1)
    x, y = torch.rand(4, 3, 12, 12), torch.rand(4, 3, 12, 12)
    tasks = ["derain", "denoise_sigma30", "derain", "denoise_sigma50"]
    step = IPTPretrainStep(contrastive_weight=0.1, temperature=0.5)
    loss, logs = step(net, {"input": x, "target": y, "task": tasks}, fake_context(net))

    preds, tokens = zip(*(net.forward_features(x[i : i + 1], task=t) for i, t in enumerate(tasks)))
    supervised = F.l1_loss(torch.cat(preds), y)  # equal sizes: the per-sample mean over the batch
    expected = supervised + 0.1 * patch_contrastive_loss(torch.cat(tokens), 0.5)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert logs["loss_supervised"].item() == pytest.approx(supervised.item(), rel=1e-5)
    derain = F.l1_loss(torch.cat([preds[0], preds[2]]), y[[0, 2]])
    assert logs["loss_derain"].item() == pytest.approx(derain.item(), rel=1e-5)
    assert set(logs) == {"loss_derain", "loss_denoise_sigma30", "loss_denoise_sigma50", "loss_supervised", "loss_contrastive"}


def test_only_the_batch_tasks_heads_and_tails_get_gradients() -> None:
    net = tiny_ipt()
    x, y = torch.rand(2, 3, 12, 12), torch.rand(2, 3, 12, 12)
    loss, _ = IPTPretrainStep()(net, {"input": x, "target": y, "task": ["denoise_sigma50", "derain"]}, fake_context(net))
    loss.backward()
    used = {4, 5}
    for t in range(6):
        for part in (net.head[t], net.tail[t]):
            grads = [p.grad for p in part.parameters()]
            if t in used:
                assert all(g is not None and g.abs().sum() > 0 for g in grads), t
            else:
                assert all(g is None for g in grads), t
    assert net.body.query_embed.weight.grad[[0, 1, 2, 3]].abs().sum() == 0
    assert net.body.query_embed.weight.grad[4].abs().sum() > 0


def test_super_resolution_batch_and_task_ids() -> None:
    """A one-task SR batch (inputs smaller than targets); ``task_id`` routes when the network has no names."""
    net = tiny_ipt()
    x, y = torch.rand(2, 3, 12, 12), torch.rand(2, 3, 36, 36)
    step = IPTPretrainStep(contrastive_weight=0.0)
    loss, logs = step(net, {"input": x, "target": y, "task": ["sr_x3", "sr_x3"]}, fake_context(net))
    assert loss.item() == pytest.approx(F.l1_loss(net(x, task=1), y).item(), rel=1e-6)
    assert "loss_contrastive" not in logs and "loss_sr_x3" in logs
    # no names on the network: task_id indexes the heads
    unnamed = tiny_ipt(scale=[1, 3], num_queries=2)
    assert unnamed.task_names is None
    loss2, logs2 = step(unnamed, {"input": x, "target": y, "task_id": torch.tensor([1, 1])}, fake_context(unnamed))
    assert loss2.item() == pytest.approx(F.l1_loss(unnamed(x, task=1), y).item(), rel=1e-6)
    assert "loss_1" in logs2
    # no task at all: the network's current task
    unnamed.set_task(1)
    loss3, _ = step(unnamed, {"input": x, "target": y}, fake_context(unnamed))
    assert loss3.item() == pytest.approx(loss2.item(), rel=1e-6)


def test_unknown_task_and_wrong_network_are_config_errors() -> None:
    net = tiny_ipt()
    x = torch.rand(2, 3, 12, 12)
    with pytest.raises(ConfigError, match="'gauss30' is not a task of the network"):
        IPTPretrainStep()(net, {"input": x, "target": x, "task": ["gauss30", "gauss30"]}, fake_context(net))
    with pytest.raises(ConfigError, match="trains an 'ipt' network"):
        IPTPretrainStep().setup(fake_context(torch.nn.Conv2d(3, 3, 1)))
    with pytest.raises(ConfigError, match="batch_size >= 2"):
        IPTPretrainStep().setup(fake_context(net, batch_size=1))
    with pytest.raises(ConfigError, match="contrastive_weight"):
        IPTPretrainStep(contrastive_weight=-1)
    # a mixture source whose scale does not match its task's head
    source = SimpleNamespace(scale=2)
    mixture = SimpleNamespace(tasks=["denoise_sigma30"], sources=[source], tag_tasks=True)
    with pytest.raises(ConfigError, match=r"sources.0 \(task 'denoise_sigma30'\) has scale 2"):
        IPTPretrainStep().setup(fake_context(net, train_set=mixture))


def test_registered() -> None:
    assert registry.get("train_step", "ipt_pretrain") is IPTPretrainStep


def test_shipped_option_file_matches_the_six_task_network(clean_images: Path) -> None:
    """options/ipt/train/ipt_pretrain.yml: every source is a task of the network, at its scale, 48 px inputs."""
    import yaml

    from restore.data.mixture import MixtureDataset

    opts = yaml.safe_load((ROOT / "options" / "ipt" / "train" / "ipt_pretrain.yml").read_text())
    assert opts["network"]["scale"] == SIX["scale"] and opts["network"]["num_queries"] == 6
    assert opts["train"]["step"]["type"] == "ipt_pretrain" and opts["train"]["step"]["contrastive_weight"] == 0.1
    train = {k: v for k, v in opts["datasets"]["train"].items() if k not in ("type", "batch_size", "num_workers")}
    assert [src["task"] for src in train["sources"]] == list(PRETRAIN_TASKS)
    for src in train["sources"]:
        src["root"] = str(clean_images)
    mixture = MixtureDataset(**train)
    net = tiny_ipt(patch_size=48)
    IPTPretrainStep().setup(fake_context(net, train_set=mixture))  # names and scales agree
    for i, source in enumerate(mixture.sources):
        sample = source[(0, 7)]
        assert sample["input"].shape[-2:] == (48, 48)
        assert sample["target"].shape[-1] == 48 * SIX["scale"][i]


# --------------------------------------------------------------------------- checkpoints in the official layout


def test_full_size_layout_is_the_official_pretraining_file() -> None:
    spec = key_listing("ipt.json")
    with torch.device("meta"):
        full = IPT(**SIX)
    state = full.state_dict()
    assert {k: list(v.shape) for k, v in state.items()} == spec["state_dict"]
    assert sum(p.numel() for p in full.parameters()) == spec["num_params"] == 118_892_394
    assert full.task_names == [name for name, _ in spec["meta"]["tasks"]] == list(PRETRAIN_TASKS)


# --------------------------------------------------------------------------- two stages through the Trainer

PRETRAIN = """
name: pre
task: pretrain
seed: 5
network: {{type: ipt, scale: [2, 3, 4, 1, 1, 1], num_queries: 6, n_feats: 4, num_heads: 2, num_layers: 12, patch_size: 12}}
datasets:
  train:
    type: mixture
    batch_by_task: true
    sources:
      - {{type: degraded_folder, root: {root}, degradation: bicubic_x2, crop_size: 24, task: sr_x2}}
      - {{type: degraded_folder, root: {root}, degradation: bicubic_x3, crop_size: 36, task: sr_x3}}
      - {{type: degraded_folder, root: {root}, degradation: bicubic_x4, crop_size: 48, task: sr_x4}}
      - {{type: degraded_folder, root: {root}, degradation: gauss30, crop_size: 12, task: denoise_sigma30}}
      - {{type: degraded_folder, root: {root}, degradation: gauss50, crop_size: 12, task: denoise_sigma50}}
      - {{type: degraded_folder, root: {root}, degradation: rain, crop_size: 12, task: derain}}
    batch_size: 3
    num_workers: 0
train:
  total_iter: 3
  step: {{type: ipt_pretrain, contrastive_weight: 0.1}}
  optimizer: {{type: adam, lr: 1e-3}}
  scheduler: {{type: multistep, milestones: [2], gamma: 0.4}}
  losses: [{{type: l1}}]
  log_every: 1
path: {{experiments_root: {exp}}}
"""

FINETUNE = """
name: fine
task: denoise
seed: 6
network: {{type: ipt, scale: [2, 3, 4, 1, 1, 1], num_queries: 6, n_feats: 4, num_heads: 2, num_layers: 12,
          patch_size: 12, task: denoise_sigma30, freeze_other_tasks: true}}
datasets:
  train: {{type: degraded_folder, root: {root}, degradation: gauss30, crop_size: 12, batch_size: 2, num_workers: 0}}
train:
  total_iter: 2
  optimizer: {{type: adam, lr: 1e-3}}
  losses: [{{type: l1}}]
path: {{experiments_root: {exp}, pretrained: {pretrained}}}
"""


@pytest.fixture()
def clean_images(tmp_path: Path) -> Path:
    import cv2

    root = tmp_path / "clean"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        cv2.imwrite(str(root / f"{i}.png"), (rng.random((192, 200, 3)) * 255).astype(np.uint8))
    return root


def test_pretrain_then_finetune_one_task(tmp_path: Path, clean_images: Path) -> None:
    exp = tmp_path / "experiments"
    pre_file = tmp_path / "pre.yml"
    pre_file.write_text(PRETRAIN.format(root=clean_images, exp=exp))
    Trainer(load_options(pre_file), tensorboard=False).fit()

    final = exp / "pre" / "models" / "final.pth"
    saved = load_file(final)
    assert set(saved) >= {"params"}
    state = saved["params"]
    assert list(state) == list(key_listing("ipt.json")["state_dict"])  # official six-task keys, toy shapes
    assert state["body.query_embed.weight"].shape[0] == 6
    assert IPT.layout_of(state)["scale"] == [2, 3, 4, 1, 1, 1]
    init = tiny_ipt(seed=123)
    load_weights(init, final, strict=True)
    assert all(torch.equal(v, state[k]) for k, v in init.state_dict().items())

    records = [json.loads(line) for line in (exp / "pre" / "log.jsonl").read_text().splitlines()]
    scalars = {k for r in records for k in r}
    assert {"train/loss", "train/loss_supervised", "train/loss_contrastive"} <= scalars
    per_task = {k for k in scalars if k.removeprefix("train/loss_") in PRETRAIN_TASKS}
    assert per_task, scalars  # every batch logs its own task's loss

    fine_file = tmp_path / "fine.yml"
    fine_file.write_text(FINETUNE.format(root=clean_images, exp=exp, pretrained=final))
    Trainer(load_options(fine_file), tensorboard=False).fit()
    tuned = load_file(exp / "fine" / "models" / "final.pth")["params"]
    assert list(tuned) == list(state)
    changed = {k for k in state if not torch.equal(state[k], tuned[k])}
    assert any(k.startswith("head.3.") for k in changed) and any(k.startswith("tail.3.") for k in changed)
    assert any(k.startswith("body.encoder.") for k in changed)
    frozen = [k for k in state if k.split(".")[0] in ("head", "tail") and k.split(".")[1] != "3"]
    assert frozen and not changed & set(frozen)  # other tasks' heads and tails kept as pre-trained
    assert not changed & {"sub_mean.weight", "sub_mean.bias", "add_mean.weight", "add_mean.bias"}
