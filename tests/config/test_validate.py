"""Schema validation: unknown/missing/wrong-typed keys, component arguments, round trip."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from restore import registry
from restore.config import load_options, save_options
from restore.errors import ConfigError


class ToyDataset:
    """A dataset whose constructor is its schema (used through the registry in these tests)."""

    def __init__(self, root: str, crop_size: int | None = None, sigma: float | list[float] = 25.0,
                 phase: Literal["train", "val", "test"] = "train") -> None:
        self.root, self.crop_size, self.sigma, self.phase = root, crop_size, sigma, phase


@pytest.fixture(autouse=True)
def toy_dataset(monkeypatch):
    monkeypatch.setitem(registry._TABLE["dataset"], "toy", f"{__name__}:ToyDataset")


MINIMAL = """\
name: exp
network: {type: n2n_unet, n_feature: 8}
datasets:
  train: {type: toy, root: data/train, crop_size: 64, batch_size: 4}
  val:
    kodak: {type: toy, root: data/kodak, phase: val, protocol: basicsr}
train:
  total_iter: 100
  optimizer: {type: adam, lr: 1e-3}
  scheduler: {type: cosine, warmup_iter: 10}
  losses: [{type: l1, weight: 0.5}, {type: charbonnier, eps: 1e-3}]
"""


def opt_file(tmp_path: Path, text: str, name: str = "o.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_valid_file_builds_typed_sections(tmp_path):
    opt = load_options(opt_file(tmp_path, MINIMAL))
    assert opt.name == "exp" and opt.seed == 0
    assert opt.network.type == "n2n_unet" and opt.network.args == {"n_feature": 8}
    assert opt.datasets.train.batch_size == 4 and opt.datasets.train.dataset.args["crop_size"] == 64
    val = opt.datasets.val["kodak"]
    assert val.protocol == "basicsr" and val.metrics is None
    assert opt.train.optimizer.args == {"lr": 1e-3} and opt.train.losses[0].weight == 0.5
    assert opt.train.losses[1].loss.args == {"eps": 1e-3}
    ds = opt.datasets.train.dataset.build()
    assert isinstance(ds, ToyDataset) and ds.crop_size == 64
    net = opt.network.build()
    assert sum(p.numel() for p in net.parameters()) > 0


@pytest.mark.parametrize(
    "text, pattern",
    [
        (MINIMAL + "  optimiser: {type: adam}\n", r"o\.yml: unknown key 'train\.optimiser' \(did you mean 'optimizer'\?\)"),
        (MINIMAL.replace("crop_size: 64", "crop_sise: 64"), r"unknown key 'datasets\.train\.crop_sise' \(did you mean 'crop_size'\?\)"),
        (MINIMAL.replace("protocol: basicsr", "protocl: basicsr"), r"did you mean 'protocol'"),
        (MINIMAL.replace("name: exp\n", ""), r"o\.yml: missing required key 'name'"),
        (MINIMAL.replace("total_iter: 100", "total_iters: 100"), r"missing required key 'train\.total_iter'|did you mean 'total_iter'"),
        (MINIMAL.replace("root: data/train, ", ""), r"missing required key 'datasets\.train\.root' for dataset 'toy'"),
        (MINIMAL.replace("total_iter: 100", "total_iter: lots"), r"key 'train\.total_iter' must be int, got str 'lots'"),
        (MINIMAL.replace("crop_size: 64", "crop_size: 6.5"), r"key 'datasets\.train\.crop_size' must be int or null, got float 6\.5"),
        (MINIMAL.replace("phase: val", "phase: valid"), r"must be one of 'train', 'val', 'test', got str 'valid'"),
        (MINIMAL.replace("type: n2n_unet", "type: n2n_unet2"), r"unknown arch 'n2n_unet2'; did you mean 'n2n_unet'\?"),
        (MINIMAL.replace("type: l1", "type: L1"), r"unknown loss 'L1'; did you mean 'l1'\?"),
        (MINIMAL.replace("protocol: basicsr", "protocol: basicsrr"), r"unknown evaluation protocol 'basicsrr' \(did you mean 'basicsr'\?\)"),  # noqa: E501
        (MINIMAL.replace("{type: adam, lr: 1e-3}", "{type: adam, params: 1}"), r"'train\.optimizer\.params' is set by the engine"),
        (MINIMAL.replace("n_feature: 8", "n_features: 8"), r"unknown key 'network\.n_features' \(did you mean 'n_feature'\?\)"),
        (MINIMAL + "seed: [1]\n", r"key 'seed' must be int, got list"),
        (MINIMAL.replace("total_iter: 100", "total_iter: true"), r"must be int, got bool True"),
        (MINIMAL.replace("name: exp", "name: ../elsewhere"), r"o\.yml: key 'name' must be a plain folder name"),
    ],
    ids=["unknown-section-key", "unknown-dataset-arg", "unknown-reserved-key", "missing-name",
         "misspelt-required", "missing-dataset-arg", "str-for-int", "float-for-int", "bad-literal",
         "unknown-arch", "unknown-loss", "unknown-protocol", "injected-arg", "unknown-arch-arg",
         "list-for-int", "bool-for-int", "name-with-path"],
)
def test_errors_name_key_file_and_suggestion(tmp_path, text, pattern):
    """Each error is one line naming the file, the dotted key and, where useful, a suggestion."""
    with pytest.raises(ConfigError, match=pattern) as info:
        load_options(opt_file(tmp_path, text))
    assert "\n" not in str(info.value)


def test_error_names_the_file_the_key_came_from(tmp_path):
    opt_file(tmp_path, MINIMAL.replace("  optimizer: {type: adam, lr: 1e-3}\n", "  optimizer: {type: adam, lr: 1e-3, betaz: [0.9, 0.9]}\n"), "base.yml")  # noqa: E501
    child = opt_file(tmp_path, "base: base.yml\nname: child\n", "child.yml")
    with pytest.raises(ConfigError, match=r"base\.yml: unknown key 'train\.optimizer\.betaz' \(did you mean 'betas'\?\)"):
        load_options(child)


def test_override_errors_name_the_override(tmp_path):
    with pytest.raises(ConfigError, match=r"--set train\.total_iter: key 'train\.total_iter' must be int"):
        load_options(opt_file(tmp_path, MINIMAL), ["train.total_iter=abc"])


def test_overrides_apply_and_ints_widen_to_float(tmp_path):
    opt = load_options(opt_file(tmp_path, MINIMAL), ["train.total_iter=7", "train.grad_clip=1"])
    assert opt.train.total_iter == 7
    assert opt.train.grad_clip == 1.0 and isinstance(opt.train.grad_clip, float)


def test_resolved_options_round_trip(tmp_path):
    opt = load_options(opt_file(tmp_path, MINIMAL))
    saved = save_options(opt, tmp_path / "run" / "options.yml")
    again = load_options(saved)
    assert again.to_dict() == opt.to_dict()
    # defaults are written out explicitly
    assert again.to_dict()["train"]["accumulate"] == 1
    assert not list((tmp_path / "run").glob(".*tmp"))


def test_component_given_as_bare_name(tmp_path):
    with pytest.raises(ConfigError, match=r"missing required key 'train\.scheduler\.milestones' for scheduler 'multistep'"):
        load_options(opt_file(tmp_path, MINIMAL.replace("{type: cosine, warmup_iter: 10}", "multistep")))
    opt = load_options(opt_file(tmp_path, MINIMAL.replace("{type: cosine, warmup_iter: 10}", "constant")))
    assert opt.train.scheduler.type == "constant" and opt.train.scheduler.args == {}


def test_evaluation_sets_default_to_a_seeded_phase(tmp_path):
    text = MINIMAL.replace("root: data/kodak, phase: val,", "root: data/kodak,").replace(
        "train:\n  total_iter", "  test:\n    t1: {type: toy, root: x}\n    t2: {type: toy, root: y, phase: val}\ntrain:\n  total_iter"
    )
    opt = load_options(opt_file(tmp_path, text))
    assert opt.datasets.val["kodak"].dataset.args["phase"] == "val"
    assert opt.datasets.test["t1"].dataset.args["phase"] == "test"
    assert opt.datasets.test["t2"].dataset.args["phase"] == "val"  # an explicit choice stands
    assert "phase" not in opt.datasets.train.dataset.args


def test_constructor_config_errors_name_file_and_key(tmp_path):
    opt = load_options(opt_file(tmp_path, MINIMAL.replace("type: toy, root: data/train", "type: synthetic_noise, root: data/train, noise: gaus25")))  # noqa: E501
    with pytest.raises(ConfigError, match=r"o\.yml: datasets\.train: cannot parse noise 'gaus25'"):
        opt.datasets.train.dataset.build()
