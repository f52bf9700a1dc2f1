"""Adding a method is one folder plus its registrations (docs/adding_a_method.md).

A toy method is written to a temporary folder outside the package -- an ``__init__.py`` holding
only ``REGISTRY``, an architecture and a training step -- and trained through the command line,
as a user would, with ``RESTORE_METHODS`` naming the package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_run import make_images, one_error_line

from restore import registry

TOY_INIT = '''\
"""A toy method: a 1x1 convolution trained with a step of its own."""

REGISTRY = {"arch": {"toy_net": ".arch:ToyNet"}, "train_step": {"toy_step": ".step:ToyStep"}}
'''

TOY_ARCH = '''\
from torch import Tensor, nn


class ToyNet(nn.Module):
    size_multiple = 4

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x)
'''

TOY_STEP = '''\
from restore.methods.step import StepContext, TrainStep


class ToyStep(TrainStep):
    def __init__(self, marker: float = 1.0) -> None:
        self.marker = marker

    def setup(self, ctx: StepContext) -> None:
        self.total = ctx.total_iter

    def __call__(self, model, batch, ctx: StepContext):
        loss, logs = ctx.criterion(model(batch["input"]), batch["target"])
        return loss, {**logs, "toy_marker": self.marker, "toy_total": float(self.total)}
'''

OPTIONS = """\
name: toy
seed: 1
network: {{type: toy_net}}
datasets:
  train: {{type: synthetic_noise, root: {root}, noise: gauss25, crop_size: 16, batch_size: 2, num_workers: 0}}
train:
  total_iter: 3
  save_every: 3
  log_every: 1
  val_every: 100000
  optimizer: {{type: adam, lr: 1.0e-3}}
  step: {{type: toy_step, marker: 7.5}}
path:
  experiments_root: {exp}
"""


def write_toy_method(folder: Path, package: str = "toy_restore_method") -> Path:
    pkg = folder / package
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(TOY_INIT)
    (pkg / "arch.py").write_text(TOY_ARCH)
    (pkg / "step.py").write_text(TOY_STEP)
    return pkg


def run_restore(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parents[2]
    paths = [str(cwd / "plugins"), str(root), os.environ.get("PYTHONPATH", "")]
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), **env}
    return subprocess.run([sys.executable, "-m", "restore.cli.main", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=300)


def test_a_method_from_its_own_folder_trains_through_the_cli(tmp_path: Path) -> None:
    write_toy_method(tmp_path / "plugins")
    options = tmp_path / "toy.yml"
    options.write_text(OPTIONS.format(root=make_images(tmp_path / "clean"), exp=tmp_path / "exp"))
    proc = run_restore(["train", "-opt", str(options)], tmp_path, RESTORE_METHODS="toy_restore_method")
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "exp" / "toy"
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    logged = [r for r in rows if "train/toy_marker" in r]
    assert logged and logged[-1]["train/toy_marker"] == 7.5  # the option file's value reached the step
    assert logged[-1]["train/toy_total"] == 3.0  # ... and the StepContext's total_iter
    weights = torch.load(next(run.rglob("*.pth")), map_location="cpu", weights_only=False)
    state = weights.get("model", weights.get("params", weights))
    assert {k for k in state if not k.startswith("__")} >= {"conv.weight", "conv.bias"}


def test_without_the_package_named_the_option_file_fails_in_one_line(tmp_path: Path) -> None:
    options = tmp_path / "toy.yml"
    options.write_text(OPTIONS.format(root=make_images(tmp_path / "clean"), exp=tmp_path / "exp"))
    proc = run_restore(["train", "-opt", str(options)], tmp_path)
    line = one_error_line(proc.stderr)
    assert proc.returncode == 2 and "toy_net" in line and "toy.yml" in line
    assert not (tmp_path / "exp").exists()


@pytest.mark.parametrize("init, expected", [
    (None, "cannot be imported: ModuleNotFoundError"),
    ("REGISTRY = {'archs': {'x': '.arch:X'}}\n", "unknown kind 'archs'"),
    ("REGISTRY = {'arch': {'x': 'no colon'}}\n", "must look like '.module:attribute'"),
    ("REGISTRY = {'arch': {'uformer': '.arch:X'}}\n", "already registered"),
    ("REGISTRY = {oops\n", "cannot be imported: SyntaxError"),
])
def test_a_broken_method_package_is_one_line(tmp_path: Path, init: str | None, expected: str) -> None:
    if init is not None:
        (tmp_path / "plugins" / "bad_method").mkdir(parents=True)
        (tmp_path / "plugins" / "bad_method" / "__init__.py").write_text(init)
    proc = run_restore(["options", "-opt", "nothing.yml"], tmp_path, RESTORE_METHODS="bad_method")
    line = one_error_line(proc.stderr)
    assert proc.returncode == 2 and expected in line and "bad_method" in line


def test_add_method_registers_relative_targets_in_process(tmp_path: Path, monkeypatch) -> None:
    write_toy_method(tmp_path, "toy_method_inproc")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = {kind: registry.names(kind) for kind in registry.KINDS}
    try:
        added = registry.add_method("toy_method_inproc")
        assert sorted(added) == [("arch", "toy_net"), ("train_step", "toy_step")]
        assert registry.target("arch", "toy_net") == "toy_method_inproc.arch:ToyNet"
        net = registry.get("arch", "toy_net")()
        assert net(torch.zeros(1, 3, 4, 4)).shape == (1, 3, 4, 4)
    finally:
        for kind, name in (("arch", "toy_net"), ("train_step", "toy_step")):
            registry._TABLE[kind].pop(name, None)
    assert {kind: registry.names(kind) for kind in registry.KINDS} == before


def test_every_shipped_method_folder_registers_only_its_own_modules() -> None:
    """Each folder's REGISTRY points into that folder, so a method is wholly in one place."""
    methods = Path(registry.__file__).parent / "methods"
    folders = sorted(p.name for p in methods.iterdir() if (p / "__init__.py").is_file())
    assert folders == ["ipt", "labnet", "neighbor2neighbor", "tape", "uformer", "wdnet"]
    for kind in registry.KINDS:
        for name in registry.names(kind):
            module = registry.target(kind, name).partition(":")[0].split(".")
            if module[:2] == ["restore", "methods"] and len(module) > 3:  # not methods.step, the shared contract
                assert module[2] in folders, (kind, name)
                assert (methods / module[2] / f"{module[3]}.py").is_file(), (kind, name)
