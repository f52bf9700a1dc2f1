"""`restore train` meeting what a careless user or a bad machine does: a run folder in use or
already holding a run, full disks, read-only or impossible folders, stale temporaries, weights
that blow up, signals. Each through the CLI: exit status, one stderr line, nothing written
where it must not be, nothing lost."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from faults import failing_writes, read_only
from tiny_run import one_error_line, records, tree, write_options

from restore import registry
from restore.cli.main import main
from restore.methods.step import TrainStep
from restore.utils.folder_lock import FolderLock

ROOT = Path(__file__).resolve().parents[2]


def train(capsys, opt: Path, *extra: str) -> tuple[int, str, str]:
    rc = main(["train", "-opt", str(opt), "--no-tensorboard", *extra])
    out, err = capsys.readouterr()
    return rc, out, err


# ---------------------------------------------------------------- one run per folder
def test_a_run_folder_in_use_refuses_a_second_train_and_writes_nothing(tmp_path, capsys):
    opt = write_options(tmp_path, "busy", total=2)
    assert train(capsys, opt)[0] == 0
    run = tmp_path / "experiments" / "busy"
    (run / "checkpoints" / ".iter_00000009.pth.x1.tmp").write_bytes(b"partial")  # not ours to clean now
    with FolderLock(run, "run"):  # another holder (flock conflicts across open files too)
        before = tree(run)
        rc, out, err = train(capsys, opt, "--resume", "auto", "--set", "train.total_iter=4")
        after = tree(run)
    assert rc == 2
    line = one_error_line(err)
    assert f"'{run}' is in use by process {os.getpid()}" in line
    assert after == before  # not even the lock file


def test_two_trains_with_the_same_name_started_together(tmp_path):
    opt = write_options(tmp_path, "twin", total=40, save=20)
    cmd = [sys.executable, "-m", "restore.cli.main", "train", "-opt", str(opt), "--no-tensorboard"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert sorted(rc for rc, _ in results) == [0, 2], results
    loser = next(err for rc, err in results if rc == 2)
    line = one_error_line(loser)
    assert "is in use by process" in line or "already holds a run" in line
    run = tmp_path / "experiments" / "twin"
    assert [r["iter"] for r in records(run)] == list(range(1, 41))  # one history, not two interleaved
    assert (run / "train.log").read_text().count("training twin:") == 1


@pytest.mark.parametrize("artefact", ["options.yml", "train.log", "log.jsonl", "models/final.pth",
                                      "checkpoints/notes.txt", "tensorboard/events.out"])
def test_any_run_artefact_means_the_run_exists(tmp_path, capsys, artefact):
    opt = write_options(tmp_path, "exists")
    run = tmp_path / "experiments" / "exists"
    (run / artefact).parent.mkdir(parents=True, exist_ok=True)
    (run / artefact).write_text("from an earlier run")
    before = tree(run)
    rc, _, err = train(capsys, opt)
    assert rc == 2
    line = one_error_line(err)
    assert "already holds a run named 'exists'" in line and "--resume auto" in line
    assert artefact.split("/")[0] in line
    assert tree(run, lock=False) == before  # the refusing run held the lock, and wrote nothing else


def test_deleted_checkpoints_never_let_a_fresh_run_replace_final_weights(tmp_path, capsys):
    opt = write_options(tmp_path, "done", total=2)
    assert train(capsys, opt)[0] == 0
    run = tmp_path / "experiments" / "done"
    shutil.rmtree(run / "checkpoints")
    final = (run / "models" / "final.pth").read_bytes()
    rc, _, err = train(capsys, opt)
    assert rc == 2 and "already holds a run" in one_error_line(err)
    rc, _, err = train(capsys, opt, "--resume", "auto")
    assert rc == 2
    line = one_error_line(err)
    assert "holds no checkpoint" in line and "final.pth" in line
    assert (run / "models" / "final.pth").read_bytes() == final


def test_a_run_that_failed_before_writing_is_not_a_run(tmp_path, capsys):
    opt = write_options(tmp_path, "retry", total=2)
    rc, _, err = train(capsys, opt, "--set", f"datasets.train.root={tmp_path / 'nowhere'}")
    assert rc == 2 and "nowhere" in one_error_line(err)
    run = tmp_path / "experiments" / "retry"
    assert sorted(p.name for p in run.iterdir()) == [".lock"]  # checked everything before writing
    assert train(capsys, opt)[0] == 0


# ---------------------------------------------------------------- output-side OS errors
def test_disk_full_while_saving_a_checkpoint(tmp_path, capsys):
    opt = write_options(tmp_path, "full", total=4, save=2)
    ckpts = tmp_path / "experiments" / "full" / "checkpoints"
    with failing_writes(ckpts, at=1) as faults:
        rc, _, err = train(capsys, opt)
    assert faults.failed, "the fault was never reached"
    assert rc == 2
    line = one_error_line(err)
    assert f"cannot write '{ckpts / 'iter_00000002.pth'}'" in line and "disk full" in line
    assert list(ckpts.iterdir()) == []  # neither the checkpoint nor its temporary file
    assert not (tmp_path / "experiments" / "full" / "models" / "final.pth").exists()


def test_disk_full_while_appending_the_log_leaves_no_half_line(tmp_path, capsys):
    opt = write_options(tmp_path, "fulllog", total=4)
    jsonl = tmp_path / "experiments" / "fulllog" / "log.jsonl"
    with failing_writes(jsonl, at=2):
        rc, _, err = train(capsys, opt)
    assert rc == 2
    assert f"cannot write '{jsonl}'" in one_error_line(err)
    assert [r["iter"] for r in records(jsonl.parent)] == [1]  # the first record whole, nothing after
    assert jsonl.read_text().endswith("}\n")


@pytest.mark.parametrize("existing", [False, True])
def test_read_only_experiments_root(tmp_path, capsys, existing):
    opt = write_options(tmp_path, "ro", total=2)
    if existing:
        assert train(capsys, opt)[0] == 0
    root = tmp_path / "experiments"
    before = tree(root)
    with read_only(root) as refused:  # tests run as root, where chmod would not stop a write
        rc, _, err = train(capsys, opt, "--resume", "auto", "--set", "train.total_iter=4")
    assert refused and rc == 2
    line = one_error_line(err)
    assert str(root / "ro") in line and "read-only file system" in line
    assert tree(root) == before


def test_experiments_root_below_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("not a folder")
    opt = write_options(tmp_path, "under", exp=tmp_path / "afile" / "experiments")
    rc, _, err = train(capsys, opt)
    assert rc == 2
    line = one_error_line(err)
    assert str(tmp_path / "afile") in line and "a parent is not a folder" in line


def test_a_path_component_too_long_for_the_file_system(tmp_path, capsys):
    opt = write_options(tmp_path, "long", exp=tmp_path / ("x" * 300))
    rc, _, err = train(capsys, opt)
    assert rc == 2
    assert "file name too long" in one_error_line(err)
    assert not any(p.name.startswith("xxx") for p in tmp_path.iterdir())


def test_a_link_in_the_run_folder_cannot_send_writes_outside(tmp_path, capsys):
    opt = write_options(tmp_path, "linked", total=2)
    assert train(capsys, opt)[0] == 0
    run = tmp_path / "experiments" / "linked"
    elsewhere = tmp_path / "elsewhere"
    shutil.move(run / "models", elsewhere)
    (run / "models").symlink_to(elsewhere)
    before, outside = tree(run, lock=False), tree(elsewhere)
    rc, _, err = train(capsys, opt, "--resume", "auto", "--set", "train.total_iter=4")
    assert rc == 2
    line = one_error_line(err)
    assert "refusing to write" in line and "outside" in line
    assert tree(elsewhere) == outside and tree(run, lock=False) == before


def _mount_tmpfs(where: Path, size: str) -> str | None:
    """Mount a tmpfs of ``size`` at ``where``; None when done, else why it could not be."""
    if os.geteuid() != 0:
        return "needs root to mount a tmpfs"
    if shutil.which("mount") is None:
        return "no mount command"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    return None if done.returncode == 0 else f"mount failed: {done.stderr.strip() or done.returncode}"


def test_a_real_full_tmpfs_while_saving_a_checkpoint(tmp_path, capsys):
    disk = tmp_path / "small"
    why = _mount_tmpfs(disk, "1m")  # options and logs fit; a 1.8 MB checkpoint does not
    if why:
        pytest.skip(why)
    try:
        opt = write_options(tmp_path, "tmpfs", total=4, save=2, exp=disk)
        rc, _, err = train(capsys, opt)
        assert rc == 2
        line = one_error_line(err)
        assert "iter_00000002.pth" in line and "disk full" in line
        run = disk / "tmpfs"
        assert list((run / "checkpoints").iterdir()) == []
        assert not [p for p in run.rglob("*.tmp")]
        assert "name: tmpfs" in (run / "options.yml").read_text()
    finally:
        subprocess.run(["umount", str(disk)], check=False)


# ---------------------------------------------------------------- stale temporaries
def test_stale_temporaries_of_killed_writes_are_removed_on_resume(tmp_path, capsys):
    opt = write_options(tmp_path, "stale", total=2)
    assert train(capsys, opt)[0] == 0
    run = tmp_path / "experiments" / "stale"
    stale = [run / "checkpoints" / ".iter_00000004.pth.k2j3.tmp", run / "models" / ".final.pth.a8f.tmp",
             run / ".options.yml.zz1.tmp"]
    for path in stale:
        path.write_bytes(b"\0" * 1000)
    rc, out, _ = train(capsys, opt, "--resume", "auto", "--set", "train.total_iter=4")
    assert rc == 0
    assert not any(p.exists() for p in stale)
    assert "removed 3 temporary file(s)" in out


# ---------------------------------------------------------------- weights that blew up
class SqrtAtZeroStep(TrainStep):
    """L1 plus a term whose value is 0 and whose gradient is NaN (sqrt of |0|): the loss stays
    finite while the first optimiser step turns every weight into NaN."""

    def __call__(self, model, batch, trainer):
        pred = model(batch["input"])
        return (pred - batch["target"]).abs().mean() + torch.sqrt((pred * 0).sum().abs()), {}


def test_weights_that_blew_up_are_never_saved(tmp_path, capsys):
    opt = write_options(tmp_path, "nanw", total=4, save=1, train="  step: {type: sqrt_at_zero}\n  ema_decay: 0.9\n")
    with registry.registered("train_step", "sqrt_at_zero", f"{__name__}:SqrtAtZeroStep"):
        rc, _, err = train(capsys, opt)
    assert rc == 2
    line = one_error_line(err)
    assert "weights hold NaN/inf" in line and "at iteration 1" in line and "nothing was saved" in line
    run = tmp_path / "experiments" / "nanw"
    assert list((run / "checkpoints").iterdir()) == [] and list((run / "models").iterdir()) == []
    assert [r["train/loss"] < 1 for r in records(run)] == [True]  # the loss itself looked fine


# ---------------------------------------------------------------- signals and exit status
def test_sigterm_and_ctrl_c_write_a_checkpoint_and_exit_143_and_130(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        opt = write_options(tmp_path, sig.name.lower(), total=100000, save=100000)
        cmd = [sys.executable, "-m", "restore.cli.main", "train", "-opt", str(opt), "--no-tensorboard"]
        procs[sig] = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    pending = dict(procs)
    while pending and time.monotonic() < deadline:  # signal each once it is in its loop
        for sig, proc in list(pending.items()):
            log = tmp_path / "experiments" / sig.name.lower() / "log.jsonl"
            if log.is_file() and log.read_text().count("\n") >= 2:
                proc.send_signal(sig)
                del pending[sig]
        time.sleep(0.1)
    assert not pending, "training never started"
    for sig, status in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        proc = procs[sig]
        rc = proc.wait(timeout=120)
        err = proc.stderr.read()
        proc.stderr.close()
        assert rc == status, err
        assert "Traceback" not in err
        assert re.search(rf"stopped by {sig.name} at iteration (\d+) of 100000; checkpoint written; exit {status}", err)
        run = tmp_path / "experiments" / sig.name.lower()
        saved = list((run / "checkpoints").glob("iter_*.pth"))
        assert len(saved) == 1
        assert torch.load(saved[0], weights_only=True)["iteration"] >= 2
        assert not (run / "models" / "final.pth").exists()


def test_a_finished_run_exits_0_and_a_complete_one_has_nothing_to_do(tmp_path, capsys):
    opt = write_options(tmp_path, "fin", total=2)
    assert train(capsys, opt)[0] == 0
    rc, out, err = train(capsys, opt, "--resume", "auto")
    assert rc == 0 and "nothing to do" in out and err == ""


# ---------------------------------------------------------------- progress without a terminal
def test_progress_lines_and_eta_without_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("restore.engine.trainer.INTERVAL_S", 0.0)  # every iteration, for the test
    opt = write_options(tmp_path, "plain", total=3)
    rc, out, _ = train(capsys, opt)
    assert rc == 0
    plain = [line for line in out.splitlines() if re.fullmatch(r"\[iter \d/3\] \d+\.\d%, \S+ it/s, ETA \S+", line)]
    assert [line.split("]")[0] for line in plain] == ["[iter 1/3", "[iter 2/3", "[iter 3/3"]
    assert "[iter 3/3] 100.0%" in plain[-1] and plain[-1].endswith("ETA 0s")
    logged = [line for line in out.splitlines() if " loss " in line and line.startswith("[iter")]
    assert len(logged) == 3 and all(re.search(r", ETA (\d+[smhd]|\d+m\d\ds|\?)$", line) for line in logged)


def test_a_validation_set_name_that_is_not_a_file_name_is_refused_before_training(tmp_path, capsys):
    opt = write_options(tmp_path, "esc", total=2)
    val = f"datasets.val={{'../../../esc': {{type: synthetic_noise, root: {tmp_path / 'clean'}, max_images: 1}}}}"
    rc, _, err = train(capsys, opt, "--set", val, "--set", "train.val_every=1")
    assert rc == 2
    line = one_error_line(err)
    assert "'../../../esc'" in line and "datasets.val" in line
    assert not list(tmp_path.rglob("esc_*.pth")) and not list(tmp_path.rglob("best_*"))
