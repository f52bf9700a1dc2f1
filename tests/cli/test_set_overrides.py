"""Adapting an option file from the command line: removing, retyping, renaming and picking sets.

Observed as a user would: ``restore options`` prints the resolved options, ``restore test``
writes one results folder per set it ran, ``restore test --check`` checks only the sets chosen.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from restore.archs.n2n_unet import N2NUNet
from restore.cli.main import main

BASE = """\
name: bench
network: {type: n2n_unet, n_feature: 8, in_nc: 3, out_nc: 3}
datasets:
  val:
    kodak24: {type: noisy_folder, root: data, protocol: basicsr}
  test:
    kodak24: {type: noisy_folder, root: data, protocol: basicsr}
    set14: {type: synthetic_noise, root: data, noise: gauss25, protocol: sidd_matlab}
    rain100h: {type: noisy_folder, root: data, label: rain_h}
"""


def resolved(capsys, opt: Path, *args: str) -> dict:
    """``restore options -opt OPT ARGS``: the printed options, parsed."""
    assert main(["options", "-opt", str(opt), *args]) == 0, capsys.readouterr().err
    return yaml.safe_load(capsys.readouterr().out)


def fails(capsys, argv: list[str], *fragments: str) -> str:
    assert main([str(a) for a in argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("restore: error: "), captured.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def opt(tmp_path: Path) -> Path:
    path = tmp_path / "bench.yml"
    path.write_text(BASE)
    return path


# ---------------------------------------------------------------- null removes a set
def test_set_null_removes_a_test_set(opt, capsys):
    tests = resolved(capsys, opt, "--set", "datasets.test.set14=null")["datasets"]["test"]
    assert list(tests) == ["kodak24", "rain_h"]


def test_null_removes_a_set_from_a_child_file_too(opt, capsys, tmp_path):
    child = tmp_path / "child.yml"
    child.write_text("base: bench.yml\ndatasets:\n  test: {kodak24: null}\n  val: null\n")
    data = resolved(capsys, child)["datasets"]
    assert list(data["test"]) == ["set14", "rain_h"] and data["val"] == {}


def test_set_null_on_a_whole_section_removes_every_set(opt, capsys):
    assert resolved(capsys, opt, "--set", "datasets.val=null")["datasets"]["val"] == {}


def test_removing_a_set_that_is_not_there_is_one_line(opt, capsys):
    fails(capsys, ["options", "-opt", opt, "--set", "datasets.test.Set14=null"],
          "--set datasets.test.Set14: there is no test set 'Set14' to remove", "kodak24, set14, rain100h")


def test_null_where_the_schema_allows_it_is_the_value_and_elsewhere_a_type_error(opt, capsys):
    data = resolved(capsys, opt, "--set", "datasets.train=null", "--set", "network.in_nc=3")
    assert data["datasets"]["train"] is None
    fails(capsys, ["options", "-opt", opt, "--set", "seed=null"], "--set seed: key 'seed' must be int, got null")


# ---------------------------------------------------------------- a new type replaces the section
def test_set_network_type_replaces_the_section(opt, capsys):
    network = resolved(capsys, opt, "--set", "network.type=uformer_t")["network"]
    assert network["type"] == "uformer_t" and "n_feature" not in network and "in_nc" not in network
    # the same type keeps the other keys
    assert resolved(capsys, opt, "--set", "network.type=n2n_unet")["network"]["n_feature"] == 8
    # keys given after the switch apply to the new section
    network = resolved(capsys, opt, "--set", "network.type=uformer_t", "--set", "network.win_size=4")["network"]
    assert network["win_size"] == 4 and "n_feature" not in network


def test_set_a_dataset_type_replaces_the_set(opt, capsys):
    args = ["--set", "datasets.test.set14.type=noisy_folder", "--set", "datasets.test.set14.root=data"]
    spec = resolved(capsys, opt, *args)["datasets"]["test"]["set14"]
    assert spec["type"] == "noisy_folder" and "noise" not in spec
    assert spec["protocol"] == "basicsr"  # the set's own keys start again from their defaults
    # without the new type's required key: one line naming the override that switched it
    fails(capsys, ["options", "-opt", opt, "--set", "datasets.test.set14.type=noisy_folder"],
          "--set datasets.test.set14.type=noisy_folder: missing required key 'datasets.test.set14.root'")


def test_a_mapping_value_with_a_new_type_replaces_too(opt, capsys):
    network = resolved(capsys, opt, "--set", "network={type: uformer_t}")["network"]
    assert "n_feature" not in network


# ---------------------------------------------------------------- naming sets
def test_label_names_a_set(opt, capsys):
    tests = resolved(capsys, opt)["datasets"]["test"]
    assert "rain_h" in tests and "rain100h" not in tests and "label" not in tests["rain_h"]


def test_label_null_in_a_child_keeps_the_key_as_the_name(opt, capsys, tmp_path):
    child = tmp_path / "child.yml"
    child.write_text("base: bench.yml\ndatasets: {test: {rain100h: {label: null}}}\n")
    assert "rain100h" in resolved(capsys, child)["datasets"]["test"]


def test_rename_set_renames_in_val_and_test(opt, capsys):
    data = resolved(capsys, opt, "--rename-set", "kodak24=bsd300", "--rename-set", "rain_h=Rain100H")["datasets"]
    assert list(data["val"]) == ["bsd300"]
    assert list(data["test"]) == ["bsd300", "set14", "Rain100H"]


def test_rename_set_faults_are_one_line(opt, capsys):
    fails(capsys, ["options", "-opt", opt, "--rename-set", "kodak=bsd300"],
          "--rename-set 'kodak=bsd300': there is no set named 'kodak'", "val: kodak24; test: kodak24, set14, rain_h")
    fails(capsys, ["options", "-opt", opt, "--rename-set", "kodak24=../../x"], "the new name '../../x'", "without '/'")
    fails(capsys, ["options", "-opt", opt, "--rename-set", "kodak24=" + "k" * 200], "200 bytes long")
    fails(capsys, ["options", "-opt", opt, "--rename-set", "kodak24"], "expected OLD=NEW")
    fails(capsys, ["options", "-opt", opt, "--rename-set", "kodak24=SET14"],
          "--rename-set kodak24=SET14: test sets 'kodak24' and 'set14' would be named 'SET14' and 'set14'", "differ only in case")
    fails(capsys, ["options", "-opt", opt, "--rename-set", "kodak24=set14"], "would both be named 'set14'")


def test_a_label_that_is_no_plain_name_or_clashes_is_one_line(opt, capsys, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("base: bench.yml\ndatasets: {test: {set14: {label: ../../../tmp/out}}}\n")
    fails(capsys, ["options", "-opt", bad], "bad.yml: key 'datasets.test.set14.label'", "without '/'")
    fails(capsys, ["options", "-opt", opt, "--set", "datasets.test.set14.label=rain_h"],
          "--set datasets.test.set14.label", "would both be named 'rain_h'")


# ---------------------------------------------------------------- picking test sets
def test_test_set_keeps_only_the_named_sets_in_that_order(opt, capsys):
    tests = resolved(capsys, opt, "--test-set", "rain_h", "--test-set", "kodak24")["datasets"]["test"]
    assert list(tests) == ["rain_h", "kodak24"]
    tests = resolved(capsys, opt, "--rename-set", "set14=s14", "--test-set", "s14")["datasets"]["test"]
    assert list(tests) == ["s14"]


def test_an_unknown_test_set_lists_the_sets_there_are(opt, capsys):
    fails(capsys, ["options", "-opt", opt, "--test-set", "rain100h"],
          "--test-set 'rain100h': there is no test set of that name (test sets: kodak24, set14, rain_h)")


# ---------------------------------------------------------------- through restore test
def images(folder: Path, n: int = 2) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return folder


def bench(tmp_path: Path) -> Path:
    clean = images(tmp_path / "clean")
    torch.save(N2NUNet(n_feature=8).state_dict(), tmp_path / "w.pth")
    opt = tmp_path / "t.yml"
    opt.write_text(
        "name: bench\nnetwork: {type: n2n_unet, n_feature: 8}\n"
        f"path: {{results_root: {tmp_path}/results, pretrained: {tmp_path}/w.pth}}\n"
        "datasets:\n  test:\n"
        f"    kodak24: {{type: synthetic_noise, root: {clean}, noise: gauss25, num_workers: 0}}\n"
        f"    other: {{type: synthetic_noise, root: {clean}, noise: gauss50, num_workers: 0, label: set14}}\n"
        f"    broken: {{type: synthetic_noise, root: {tmp_path}/missing, noise: gauss25, num_workers: 0}}\n"
    )
    return opt


def test_restore_test_runs_only_the_chosen_sets_under_their_new_names(tmp_path, capsys):
    opt = bench(tmp_path)
    code = main(["test", "-opt", str(opt), "--device", "cpu", "--rename-set", "kodak24=bsd300",
                 "--test-set", "bsd300", "--test-set", "set14"])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    results = tmp_path / "results" / "bench"
    assert sorted(p.name for p in results.iterdir() if p.is_dir()) == ["bsd300", "set14"]
    assert (results / "bsd300" / "per_image.csv").is_file()
    assert "bsd300: 2 images" in out and "kodak24" not in out and "broken" not in out
    assert "## bsd300" in (results / "summary.md").read_text()


def test_restore_test_check_checks_only_the_chosen_sets(tmp_path, capsys):
    opt = bench(tmp_path)
    assert main(["test", "-opt", str(opt), "--check", "--test-set", "kodak24"]) == 0
    assert "2 samples checked" in capsys.readouterr().out
    fails(capsys, ["test", "-opt", opt, "--check"], "missing")
    fails(capsys, ["test", "-opt", opt, "--check", "--test-set", "kodak"], "test sets: kodak24, set14, broken")
    fails(capsys, ["test", "-opt", opt, "--check", "--set", "datasets.test.broken.root=null"], "--set datasets.test.broken.root")
    assert main(["test", "-opt", str(opt), "--check", "--set", "datasets.test.broken=null"]) == 0
    assert "4 samples checked" in capsys.readouterr().out
    assert not (tmp_path / "results").exists()


def test_train_names_best_weights_after_the_renamed_validation_set(tmp_path, capsys):
    clean = images(tmp_path / "clean", n=3)
    opt = tmp_path / "train.yml"
    opt.write_text(
        "name: tiny\nnetwork: {type: n2n_unet, n_feature: 8}\n"
        f"path: {{experiments_root: {tmp_path}/exp}}\n"
        "train: {total_iter: 2, val_every: 2, save_every: 2, log_every: 1}\n"
        "datasets:\n"
        f"  train: {{type: synthetic_noise, root: {clean}, noise: gauss25, crop_size: 32, batch_size: 2, num_workers: 0}}\n"
        f"  val:\n    kodak24: {{type: synthetic_noise, root: {clean}, noise: gauss25, num_workers: 0}}\n"
    )
    assert main(["train", "-opt", str(opt), "--no-tensorboard", "--set", "device=cpu",
                 "--rename-set", "kodak24=heldout"]) == 0, capsys.readouterr().err
    models = tmp_path / "exp" / "tiny" / "models"
    assert (models / "best_heldout_psnr.pth").is_file() and not list(models.glob("best_kodak24_*"))
