"""Nested option sections checked at load time: a mixture's ``sources`` and ``path.transfer``.

Each fault is written into a file that otherwise trains (the unchanged file loads, and its
sources build), then run through the real command line: exit status 2, exactly one
``restore: error:`` line naming the file and the whole key, and no run folder.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from restore.cli.main import main

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
name: mix
network: {{type: n2n_unet, n_feature: 8}}
datasets:
  train:
    type: mixture
    batch_by_task: true
    sources:
      - {{type: degraded_folder, root: {clean}, degradation: gauss30, crop_size: 32}}
      - {{type: degraded_folder, root: {clean}, degradation: rain, crop_size: 32, weight: 2, task: derain}}
    batch_size: 2
    num_workers: 0
train: {{total_iter: 1, log_every: 1}}
path:
  experiments_root: {tmp}/exp
  results_root: {tmp}/results
  transfer:
    - {{pattern: head, action: reinit}}
    - {{encoders: freeze}}
"""


@pytest.fixture
def good(tmp_path: Path) -> str:
    import cv2

    clean = tmp_path / "clean"
    clean.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        cv2.imwrite(str(clean / f"{i}.png"), (rng.random((40, 40, 3)) * 255).astype(np.uint8))
    return GOOD.format(clean=clean, tmp=tmp_path)


def fails(capsys, argv: list[str], *fragments: str) -> str:
    """Run ``restore ARGV``; assert exit 2 and one error line holding every fragment."""
    assert main([str(a) for a in argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("restore: error: "), captured.err
    assert "Traceback" not in captured.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def nothing_written(tmp_path: Path) -> None:
    assert not (tmp_path / "exp").exists() and not (tmp_path / "results").exists()


def test_the_good_file_loads_and_prints_the_sources_and_rules_as_sections(tmp_path, capsys, good):
    opt = tmp_path / "o.yml"
    opt.write_text(good)
    assert main(["options", "-opt", str(opt)]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    sources = printed["datasets"]["train"]["sources"]
    assert [(s["type"], s["degradation"], s["weight"], s["task"]) for s in sources] == [
        ("degraded_folder", "gauss30", 1.0, None), ("degraded_folder", "rain", 2.0, "derain")]
    # the short rule form {P: A} is the long one
    assert printed["path"]["transfer"] == [{"pattern": "head", "action": "reinit"},
                                           {"pattern": "encoders", "action": "freeze"}]
    from restore.config import load_options

    mix = load_options(opt).datasets.train.dataset.build()
    assert mix.tasks == ["gauss30", "derain"] and mix.weights == [1.0, 2.0]
    nothing_written(tmp_path)


# what is replaced in the good file, and what the error line must say
SOURCE_FAULTS = [
    ("crop_size: 32, weight: 2", "crop: 32, weight: 2",
     ["unknown key 'datasets.train.sources.1.crop'", "did you mean 'crop_size'"]),
    ("gauss30, crop_size: 32", "gauss30, crop_size: '32'",
     ["key 'datasets.train.sources.0.crop_size' must be int or null, got str '32'"]),
    ("weight: 2", "weight: heavy", ["key 'datasets.train.sources.1.weight' must be float, got str 'heavy'"]),
    ("weight: 2", "weight: 0", ["key 'datasets.train.sources.1.weight' must be a positive number, got 0"]),
    ("task: derain", "task: [derain]", ["key 'datasets.train.sources.1.task' must be str or null, got list"]),
    ("{{type: degraded_folder, root", "{{type: degraded_folders, root",
     ["key 'datasets.train.sources.0.type': unknown dataset 'degraded_folders'", "did you mean 'degraded_folder'"]),
    ("root: {clean}, degradation: gauss30", "degradation: gauss30",
     ["missing required key 'datasets.train.sources.0.root' for dataset 'degraded_folder'"]),
    ("- {{type: degraded_folder, root: {clean}, degradation: gauss30, crop_size: 32}}",
     "- {{type: mixture, sources: [{{type: degraded_folder, root: {clean}, degradation: gauss30}}]}}",
     ["key 'datasets.train.sources.0.type' must not be 'mixture'"]),
    ("- {{type: degraded_folder, root: {clean}, degradation: gauss30, crop_size: 32}}", "- gauss30",
     ["key 'datasets.train.sources.0' must be a mapping, got str"]),
]

TRANSFER_FAULTS = [
    ("action: reinit", "action: drop", ["key 'path.transfer.0.action' must be one of 'keep', 'reinit', 'freeze'",
                                        "got str 'drop'"]),
    ("{{encoders: freeze}}", "{{encoders: frezze}}", ["key 'path.transfer.1.action' must be one of"]),
    ("pattern: head,", "pattern: '',", ["key 'path.transfer.0.pattern' must be a non-empty string"]),
    ("pattern: head,", "pattern: 3,", ["key 'path.transfer.0.pattern' must be str, got int 3"]),
    ("{{pattern: head, action: reinit}}", "{{pattern: head}}", ["missing required key 'path.transfer.0.action'"]),
    ("action: reinit}}", "action: reinit, why: x}}",
     ["unknown key 'path.transfer.0.why'", "valid keys for section 'path.transfer.0': action, pattern"]),
    ("{{encoders: freeze}}", "encoders", ["key 'path.transfer.1' must be a mapping, got str"]),
    ("{{encoders: freeze}}", "{{head: freeze}}",
     ["key 'path.transfer.1.pattern' repeats the pattern 'head' of rule 0", "never apply"]),
]


@pytest.mark.parametrize("command", ["options", "train"])
@pytest.mark.parametrize("old,new,fragments", SOURCE_FAULTS + TRANSFER_FAULTS)
def test_a_bad_nested_key_is_one_line_at_load_time(tmp_path, capsys, good, command, old, new, fragments):
    old, new = (text.format(clean=tmp_path / "clean") for text in (old, new))
    assert old in good
    opt = tmp_path / "o.yml"
    opt.write_text(good.replace(old, new, 1))
    fails(capsys, [command, "-opt", opt], f"restore: error: {opt}: ", *fragments)
    nothing_written(tmp_path)


def test_a_bad_source_from_a_base_file_or_set_blames_it(tmp_path, capsys, good):
    base = tmp_path / "base.yml"
    base.write_text(good.replace("weight: 2", "weight: -1"))
    child = tmp_path / "child.yml"
    child.write_text("base: base.yml\nseed: 3\n")
    line = fails(capsys, ["train", "-opt", child], f"{base}: key 'datasets.train.sources.1.weight' must be a positive")
    assert "child.yml" not in line
    opt = tmp_path / "o.yml"
    opt.write_text(good)
    fails(capsys, ["train", "-opt", opt, "--set", "datasets.train.sources.0.crop_size=big"],
          "--set datasets.train.sources.0.crop_size: key 'datasets.train.sources.0.crop_size' must be int or null")
    fails(capsys, ["train", "-opt", opt, "--set", "path.transfer.0.action=thaw"],
          "--set path.transfer.0.action: key 'path.transfer.0.action' must be one of")
    nothing_written(tmp_path)


def test_a_mixture_under_val_checks_its_sources_too(tmp_path, capsys, good):
    val = (f"  val:\n    mixed:\n      type: mixture\n      sources:\n"
           f"        - {{type: degraded_folder, root: {tmp_path / 'clean'}, degradation: haze, repeat: two}}\n")
    opt = tmp_path / "o.yml"
    opt.write_text(good.replace("train: {total_iter", val + "train: {total_iter", 1))
    fails(capsys, ["train", "-opt", opt], f"{opt}: key 'datasets.val.mixed.sources.0.repeat' must be int, got str 'two'")
    nothing_written(tmp_path)


def test_in_a_real_process_the_exit_status_is_2_and_stderr_one_line(tmp_path, good):
    opt = tmp_path / "o.yml"
    opt.write_text(good.replace("crop_size: 32, weight: 2", "crop: 32, weight: 2"))
    proc = subprocess.run([sys.executable, "-m", "restore.cli.main", "train", "-opt", str(opt)],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"restore: error: {opt}: unknown key 'datasets.train.sources.1.crop'")
    nothing_written(tmp_path)
