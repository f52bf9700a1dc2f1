"""`restore train --resume`: state from the checkpoint, settings from the option file, every
change printed, and one line for each resume that cannot be right."""

from __future__ import annotations

import math
import shutil

import torch
from tiny_run import one_error_line, records, tree, write_options

from restore.cli.main import main


def train(capsys, opt, *extra):
    rc = main(["train", "-opt", str(opt), "--no-tensorboard", *extra])
    out, err = capsys.readouterr()
    return rc, out, err


def lrs(run):
    return {r["iter"]: r["train/lr"] for r in records(run)}


def test_a_new_lr_on_resume_is_the_lr_trained_at(tmp_path, capsys):
    opt = write_options(tmp_path, "lr", total=4, lr=1e-3)
    assert train(capsys, opt)[0] == 0
    rc, out, _ = train(capsys, opt, "--resume", "auto", "--set", "train.total_iter=6", "--set", "train.optimizer.lr=1e-4")
    assert rc == 0
    run = tmp_path / "experiments" / "lr"
    logged = lrs(run)
    assert [logged[i] for i in (1, 2, 3, 4)] == [1e-3] * 4
    assert [logged[i] for i in (5, 6)] == [1e-4, 1e-4]
    assert "  train.optimizer.lr: 0.001 -> 0.0001" in out
    assert "  train.total_iter: 4 -> 6" in out
    assert "learning rate at iteration 4: 0.001 under the checkpoint's options -> 0.0001 now" in out
    state = torch.load(run / "checkpoints" / "iter_00000006.pth", weights_only=True)
    assert state["optimizer"]["param_groups"][0]["lr"] == 1e-4


def test_a_new_total_iter_re_evaluates_the_schedule_and_says_so(tmp_path, capsys):
    lr0 = 1e-3
    opt = write_options(tmp_path, "cos", total=4, lr=lr0, train="  scheduler: {type: cosine, eta_min: 0.0}\n")
    assert train(capsys, opt)[0] == 0
    rc, out, _ = train(capsys, opt, "--resume", "auto", "--set", "train.total_iter=8")
    assert rc == 0
    logged = lrs(tmp_path / "experiments" / "cos")

    def cosine(it, total):  # the lr set after `it` iterations: 0.5 * lr0 * (1 + cos(pi * it / total))
        return 0.5 * lr0 * (1 + math.cos(math.pi * it / total))

    for it in (1, 2, 3, 4):
        assert math.isclose(logged[it], cosine(it, 4), rel_tol=1e-6, abs_tol=1e-12)
    for it in (5, 6, 7, 8):
        assert math.isclose(logged[it], cosine(it, 8), rel_tol=1e-6, abs_tol=1e-12)
    assert "  train.total_iter: 4 -> 8" in out
    assert ("learning rate at iteration 4: 0 under the checkpoint's options -> 0.0005 now "
            "(the cosine schedule of the option file, evaluated at iteration 4); "
            "the run now ends at iteration 8 (was 4)") in out


def test_an_unchanged_resume_reports_no_changes(tmp_path, capsys):
    opt = write_options(tmp_path, "same", total=2)
    assert train(capsys, opt)[0] == 0
    shutil.copy(opt, tmp_path / "more.yml")
    rc, out, _ = train(capsys, opt, "--resume", "auto")
    assert rc == 0 and "nothing to do" in out and "differ" not in out


def test_resume_path_to_a_folder(tmp_path, capsys):
    opt = write_options(tmp_path, "dir", total=2)
    assert train(capsys, opt)[0] == 0
    folder = tmp_path / "experiments" / "dir" / "checkpoints"
    rc, _, err = train(capsys, opt, "--resume", str(folder))
    assert rc == 2 and f"--resume: '{folder}' is a folder" in one_error_line(err)


def test_a_truncated_checkpoint_is_one_line(tmp_path, capsys):
    opt = write_options(tmp_path, "cut", total=2)
    assert train(capsys, opt)[0] == 0
    ckpt = tmp_path / "experiments" / "cut" / "checkpoints" / "iter_00000002.pth"
    ckpt.write_bytes(ckpt.read_bytes()[:5000])
    rc, _, err = train(capsys, opt, "--resume", "auto", "--set", "train.total_iter=4")
    assert rc == 2
    line = one_error_line(err)
    assert str(ckpt) in line and "truncated or corrupt" in line


def test_a_run_keeps_its_network(tmp_path, capsys):
    opt = write_options(tmp_path, "net", total=2)
    assert train(capsys, opt)[0] == 0
    run = tmp_path / "experiments" / "net"
    before = tree(run, lock=False)
    rc, _, err = train(capsys, opt, "--resume", "auto", "--set", "train.total_iter=4", "--set", "network.residual=true")
    assert rc == 2
    line = one_error_line(err)
    assert "network.residual (weights: False, option file: True)" in line  # strict load alone would pass
    rc, _, err = train(capsys, opt, "--resume", "auto", "--set", "train.total_iter=4", "--set", "network.n_feature=16")
    assert rc == 2 and "network.n_feature (weights: 8, option file: 16)" in one_error_line(err)
    assert tree(run, lock=False) == before


def test_a_checkpoint_with_nan_weights_names_the_tensor(tmp_path, capsys):
    opt = write_options(tmp_path, "bad", total=2)
    assert train(capsys, opt)[0] == 0
    ckpt = tmp_path / "experiments" / "bad" / "checkpoints" / "iter_00000002.pth"
    state = torch.load(ckpt, weights_only=True)
    name = sorted(state["model"])[3]
    state["model"][name].view(-1)[0] = float("inf")
    torch.save(state, ckpt)
    rc, _, err = train(capsys, opt, "--resume", "auto", "--set", "train.total_iter=4")
    assert rc == 2
    line = one_error_line(err)
    assert f"NaN/inf values in tensor {name}" in line and str(ckpt) in line


def test_resuming_an_earlier_checkpoint_under_later_ones_is_refused(tmp_path, capsys):
    opt = write_options(tmp_path, "rewind", total=6, save=2)
    assert train(capsys, opt)[0] == 0
    run = tmp_path / "experiments" / "rewind"
    before = tree(run, lock=False)
    rc, _, err = train(capsys, opt, "--resume", str(run / "checkpoints" / "iter_00000002.pth"))
    assert rc == 2
    line = one_error_line(err)
    assert "later than iteration 2" in line and "iter_00000004.pth" in line
    assert tree(run, lock=False) == before


def test_a_new_optimizer_type_starts_fresh_moments(tmp_path, capsys):
    opt = write_options(tmp_path, "opt", total=2)
    assert train(capsys, opt)[0] == 0
    rc, out, _ = train(capsys, opt, "--resume", "auto", "--set", "train.total_iter=4",
                       "--set", "train.optimizer.type=adamw")
    assert rc == 0
    assert "train.optimizer.type changed (adam -> adamw): the optimiser starts with fresh moments" in out


def test_another_runs_checkpoint_continues_under_the_new_name(tmp_path, capsys):
    opt = write_options(tmp_path, "parent", total=2)
    assert train(capsys, opt)[0] == 0
    parent = tmp_path / "experiments" / "parent"
    before = tree(parent, lock=False)
    ckpt = parent / "checkpoints" / "iter_00000002.pth"
    rc, out, _ = train(capsys, opt, "--resume", str(ckpt), "--set", "name=child", "--set", "train.total_iter=4",
                       "--set", "seed=9")
    assert rc == 0
    assert "  name: 'parent' -> 'child'  (the checkpoint comes from another run" in out
    assert "  seed: 3 -> 9  (no effect on a resumed run" in out
    child = tmp_path / "experiments" / "child"
    assert [r["iter"] for r in records(child)] == [3, 4]
    assert torch.load(child / "models" / "final.pth", weights_only=True)["meta"]["run"] == "child"
    assert tree(parent, lock=False) == before
