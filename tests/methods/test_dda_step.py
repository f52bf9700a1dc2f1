"""DDA training (train.step: dda): score classes, per-class batches, one loss per class at its
width; a tiny run through the CLI, resume, and option faults (one line, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny_run import make_images, one_error_line, records, tree

from restore.cli.main import main
from restore.methods.dda_classes import ClassBatches, classify, pool_keys, quantile_boundaries

OPTIONS = """\
name: {name}
seed: 5
task: demoire
network: {{type: {network}, channels: 16, growth: 8, dilations: [1, 2]}}
datasets:
  train: {{type: degraded_folder, root: {root}, degradation: rain, crop_size: 32, batch_size: 2, num_workers: 0}}
train:
  total_iter: {total}
  step: {{type: dda, score: {score}, widths: {widths}, patches: 12}}
  optimizer: {{type: adam, lr: 1.0e-3}}
  save_every: 2
  log_every: 1
  val_every: 100000
path:
  experiments_root: {exp}
"""


def write(tmp_path: Path, name: str = "dda", *, total: int = 3, network: str = "wdnet_slim", score: str = "moire",
          widths: str = "[0.25, 0.5, 1.0]") -> Path:
    clean = tmp_path / "clean"
    if not clean.is_dir():
        make_images(clean, n=3)
    path = tmp_path / f"{name}.yml"
    path.write_text(OPTIONS.format(name=name, network=network, root=clean, total=total, score=score, widths=widths,
                                   exp=tmp_path / "experiments"))
    return path


def train(capsys, opt: Path, *extra: str) -> tuple[int, str, str]:
    rc = main(["train", "-opt", str(opt), "--no-tensorboard", *extra])
    out, err = capsys.readouterr()
    return rc, out, err


# --------------------------------------------------------------------- classes


def test_tercile_boundaries_of_constructed_scores():
    # scores 1..9: the 1/3 quantile is 1 + 8/3, the 2/3 quantile 1 + 16/3 (linear interpolation)
    scores = [7.0, 1.0, 9.0, 4.0, 2.0, 8.0, 3.0, 6.0, 5.0]
    bounds = quantile_boundaries(scores, 3)
    assert bounds == pytest.approx([11 / 3, 19 / 3])
    assert classify(scores, bounds).tolist() == [2, 0, 2, 1, 0, 2, 0, 1, 1]
    # quartiles of 0..100 (step 1): 25, 50, 75; a score equal to a boundary goes up
    assert quantile_boundaries(list(range(101)), 4) == pytest.approx([25.0, 50.0, 75.0])
    assert classify([24.9, 25.0, 74.99, 75.0, 1000.0], [25.0, 50.0, 75.0]).tolist() == [0, 1, 2, 3, 3]
    assert quantile_boundaries([3.0], 1) == []


def test_pool_keys_walk_every_image_with_fixed_seeds():
    keys = pool_keys(3, 7)
    assert [i for i, _ in keys] == [0, 1, 2, 0, 1, 2, 0]
    assert keys == pool_keys(3, 7) and len({s for _, s in keys}) == 7


def test_class_batches_draw_every_class_and_resume_mid_stream():
    classes = [[(0, 10), (1, 11)], [(2, 12), (3, 13), (4, 14)], [(5, 15)]]
    fresh = ClassBatches(classes, per_class=2, seed=1)
    stream = iter(fresh)
    batches = [next(stream) for _ in range(5)]
    for batch in batches:
        assert len(batch) == 6
        assert set(batch[:2]) <= set(classes[0]) and set(batch[2:4]) <= set(classes[1])
        assert batch[4:] == [(5, 15), (5, 15)]
    # class 1 (3 patches): each epoch of 3 draws is a permutation of the class
    draws = [k for b in batches for k in b[2:4]]
    assert sorted(draws[:3]) == sorted(classes[1]) and sorted(draws[3:6]) == sorted(classes[1])
    resumed = iter(ClassBatches(classes, per_class=2, seed=1, start=3 * 6))
    assert [next(resumed) for _ in range(2)] == batches[3:5]
    with pytest.raises(ValueError):
        ClassBatches(classes, per_class=2, seed=1, start=5)


# ------------------------------------------------------------------------ runs


def test_a_tiny_dda_run_logs_a_loss_per_class_and_writes_weights(tmp_path, capsys):
    rc, out, err = train(capsys, write(tmp_path))
    assert rc == 0, err
    run = tmp_path / "experiments" / "dda"
    assert (run / "models" / "final.pth").is_file() and (run / "checkpoints" / "iter_00000002.pth").is_file()
    rows = records(run)
    assert [r["iter"] for r in rows] == [1, 2, 3]
    for r in rows:
        parts = [r["train/loss_w0.25"], r["train/loss_w0.5"], r["train/loss_w1"]]
        assert r["train/loss"] == pytest.approx(sum(parts), rel=1e-5)
    cached = json.loads((run / "dda_classes.json").read_text())
    assert cached["score"] == "moire" and cached["widths"] == [0.25, 0.5, 1.0]
    assert cached["boundaries"] == pytest.approx(quantile_boundaries(cached["scores"], 3))
    assert cached["class_sizes"] == [4, 4, 4] and len(cached["keys"]) == 12
    assert "dda: moire boundaries" in out
    # the weights are saved at full width and load into the plain network
    from restore.methods.wdnet.arch import WDNet

    WDNet(channels=16, growth=8, dilations=[1, 2]).load_state_dict(
        torch.load(run / "models" / "final.pth", weights_only=True)["params"], strict=True)


def test_resume_reads_the_cached_classes_and_continues_the_same_stream(tmp_path, capsys):
    straight = tmp_path / "a"
    assert train(capsys, write(straight, total=4))[0] == 0
    split = tmp_path / "b"
    assert train(capsys, write(split, total=2))[0] == 0
    rc, out, err = train(capsys, write(split, total=4), "--resume", "auto")
    assert rc == 0, err
    assert "read the scored patches" in out and "scoring" not in out
    a = torch.load(straight / "experiments" / "dda" / "models" / "final.pth", weights_only=True)["params"]
    b = torch.load(split / "experiments" / "dda" / "models" / "final.pth", weights_only=True)["params"]
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"widths": "[0.5, 0.25, 1.0]"}, "key 'train.step.widths' must be strictly ascending"),
        ({"widths": "[0.5, 1.5]"}, "key 'train.step.widths' must hold widths in (0, 1]"),
        ({"score": "moir"}, "key 'train.step.score': unknown tile score 'moir' (did you mean 'moire'?)"),
    ],
)
def test_bad_dda_options_are_one_line_at_load_naming_file_and_key(tmp_path, capsys, kwargs, expected):
    opt = write(tmp_path, **kwargs)
    rc, _, err = train(capsys, opt)
    assert rc == 2
    line = one_error_line(err)
    assert str(opt) in line and expected in line
    assert not (tmp_path / "experiments").exists()


def test_dda_refuses_a_network_that_cannot_change_width(tmp_path, capsys):
    opt = write(tmp_path, network="wdnet")
    rc, _, err = train(capsys, opt)
    assert rc == 2
    line = one_error_line(err)
    assert "train.step 'dda' trains a slimmable network" in line and "wdnet_slim" in line
    assert tree(tmp_path / "experiments", lock=False) == {}
