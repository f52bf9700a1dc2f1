"""``restore infer`` as a pipeline: background loads and writes, same-size batches, rates in the summary."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from restore.cli.main import main
from restore.config import load_options
from restore.data.image_io import read_image
from restore.engine import batch_image
from restore.engine.background import Lookahead, WriteBehind
from restore.engine.batch_plan import plan_jobs
from restore.engine.batch_restore import BatchSummary, restore_folder
from restore.engine.distributed import DistContext
from restore.engine.inference import Restorer

OPTIONS = "name: bp\ndevice: cpu\nnetwork: {type: n2n_unet, n_feature: 8}\n"


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    from restore.archs.n2n_unet import N2NUNet

    torch.manual_seed(0)
    model = N2NUNet(n_feature=8)
    for p in model.parameters():
        nn.init.normal_(p, std=0.2)
    path = tmp_path_factory.mktemp("w") / "n2n.pth"
    torch.save(model.state_dict(), path)
    return path


def options(tmp_path: Path, extra: str = ""):
    f = tmp_path / "o.yml"
    f.write_text(OPTIONS + extra)
    return load_options(f)


def write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)
    return path


def rand(h: int, w: int, c: int = 3, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    peak = np.iinfo(dtype).max
    return np.random.default_rng(seed).integers(0, peak + 1, (h, w, c) if c else (h, w)).astype(dtype)


def mixed_folder(root: Path) -> Path:
    """Sizes change along the sorted order (so batches split), with a grey and a 16-bit image."""
    write(root / "a.png", rand(40, 48, seed=1))
    write(root / "b.png", rand(40, 48, seed=2))
    write(root / "c.png", rand(40, 48, seed=3))
    write(root / "d.png", rand(33, 30, seed=4))
    write(root / "e.png", rand(40, 48, c=0, seed=5))  # grey: same (3, 40, 48) tensor as a..c
    write(root / "f.png", rand(40, 48, dtype=np.uint16, seed=6))
    write(root / "g.jpg", rand(33, 30, seed=7))
    return root


def sequential(opt, inp: Path, out: Path, weights: Path) -> None:
    """The one-image-at-a-time path: load, network, write, for each job in order, on this thread."""
    from restore.engine.checkpoint import load_weights
    from restore.engine.network import build_network

    model = build_network(opt)
    load_weights(model, weights)
    restorer = Restorer(model.eval())
    for job in plan_jobs(inp, out):
        batch_image.restore_image(restorer, job, 3, torch.device("cpu"))


def files(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: read_image(p) for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("batch_size", [1, 3])
def test_pipeline_outputs_equal_the_sequential_path_on_mixed_sizes(tmp_path, weights, batch_size):
    inp = mixed_folder(tmp_path / "in")
    # the memory format is another matter (test_torch_speed): here both paths run NCHW
    opt = options(tmp_path, f"infer: {{batch_size: {batch_size}, channels_last: false}}\n")
    sequential(opt, inp, tmp_path / "seq", weights)
    summary = restore_folder(opt, inp, tmp_path / "out", weights=weights, ctx=DistContext(), progress=False)
    assert summary.ok and [p.name for p in summary.restored] == sorted(p.name for p in inp.iterdir())
    got, want = files(tmp_path / "out"), files(tmp_path / "seq")
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].dtype == want[name].dtype and got[name].shape == want[name].shape, name
        if batch_size == 1:
            assert np.array_equal(got[name], want[name]), name
        else:  # a batched convolution may sum in another order: at most one level, rarely
            diff = np.abs(got[name].astype(np.int64) - want[name].astype(np.int64))
            assert diff.max() <= (257 if want[name].dtype == np.uint16 else 1) and (diff == 0).mean() > 0.99, name
    assert summary.pixels == 5 * 40 * 48 + 2 * 33 * 30


def test_same_size_images_share_a_forward(tmp_path, weights, monkeypatch):
    inp = mixed_folder(tmp_path / "in")
    batches: list[list[str]] = []
    real = batch_image.run

    def spy(restorer, batch, device):
        batches.append([item.job.source.name for item in batch])
        return real(restorer, batch, device)

    monkeypatch.setattr(batch_image, "run", spy)
    opt = options(tmp_path, "infer: {batch_size: 4}\n")
    assert restore_folder(opt, inp, tmp_path / "out", weights=weights, ctx=DistContext(), progress=False).ok
    # consecutive same-shape tensors, at most 4: the grey e.png becomes 3 channels like a..c, f.png is 16-bit
    assert batches == [["a.png", "b.png", "c.png"], ["d.png"], ["e.png", "f.png"], ["g.jpg"]]


def test_a_failing_image_in_the_middle_is_one_line_and_the_rest_are_written(tmp_path, weights, capsys):
    inp = tmp_path / "in"
    for i, name in enumerate(["a", "b", "d", "e"]):
        write(inp / f"{name}.png", rand(32, 32, seed=i))
    (inp / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    opt = options(tmp_path, "infer: {batch_size: 2}\n")
    summary = restore_folder(opt, inp, tmp_path / "out", weights=weights, ctx=DistContext(), progress=False)
    assert [p.name for p in summary.restored] == ["a.png", "b.png", "d.png", "e.png"]
    assert [p.name for p, _ in summary.failed] == ["c.png"]
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("restore: failed: ") and "c.png" in lines[0], lines
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "d.png", "e.png"]
    assert summary.pixels == 4 * 32 * 32


def test_a_failure_inside_a_would_be_batch_keeps_the_file_order(tmp_path, weights, capsys, monkeypatch):
    from restore.engine import batch_restore

    filed: list[str] = []
    real = batch_restore._outcome_line

    def spy(job, *args):
        filed.append(job.source.name)
        return real(job, *args)

    monkeypatch.setattr(batch_restore, "_outcome_line", spy)
    inp = tmp_path / "in"
    for i, name in enumerate(["a", "c", "d"]):
        write(inp / f"{name}.png", rand(32, 32, seed=i))
    (inp / "b.png").write_bytes(b"")
    opt = options(tmp_path, "infer: {batch_size: 4}\n")
    summary = restore_folder(opt, inp, tmp_path / "out", weights=weights, ctx=DistContext(), progress=False)
    assert [p.name for p in summary.restored] == ["a.png", "c.png", "d.png"]
    assert [p.name for p, _ in summary.failed] == ["b.png"]
    assert filed == ["a.png", "b.png", "c.png", "d.png"]  # progress and failure lines in file order
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_out_of_memory_on_a_batch_retries_its_images_one_by_one(tmp_path, weights, monkeypatch):
    inp = tmp_path / "in"
    for i in range(3):
        write(inp / f"{i}.png", rand(32, 32, seed=i))
    real = batch_image.run

    def small_memory(restorer, batch, device):
        if len(batch) > 1:
            raise torch.OutOfMemoryError("pretend")
        return real(restorer, batch, device)

    monkeypatch.setattr(batch_image, "run", small_memory)
    opt = options(tmp_path, "infer: {batch_size: 3}\n")
    summary = restore_folder(opt, inp, tmp_path / "out", weights=weights, ctx=DistContext(), progress=False)
    assert summary.ok and len(summary.restored) == 3 and len(list((tmp_path / "out").iterdir())) == 3


def test_summary_line_gives_images_and_megapixels_per_second():
    summary = BatchSummary(restored=[Path("a"), Path("b"), Path("c"), Path("d")], skipped=[Path("e")],
                           seconds=2.0, pixels=4 * 64 * 64)
    assert summary.line() == ("restored 4, skipped 1 (output exists), failed 0 in 2.0 s "
                              "(2.00 images/s, 0.00819 MP/s)")
    merged = BatchSummary.merge([summary, BatchSummary(restored=[Path("f")], seconds=3.0, pixels=1000)])
    assert merged.pixels == 4 * 64 * 64 + 1000 and merged.seconds == 3.0


def test_cli_batch_size_flag_and_summary(tmp_path, weights, capsys):
    for i in range(3):
        write(tmp_path / f"in/{i}.png", rand(64, 64, seed=i))
    (tmp_path / "o.yml").write_text(OPTIONS)
    base = ["infer", "-opt", str(tmp_path / "o.yml"), "--weights", str(weights), "--input", str(tmp_path / "in"),
            "--output", str(tmp_path / "out"), "--no-progress"]
    assert main([*base, "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    rate = re.search(r"restored 3, skipped 0 \(output exists\), failed 0 in [\d.]+ s "
                     r"\(([\d.]+) images/s, ([\d.e+-]+) MP/s\)", out)
    assert rate is not None, out
    if float(rate.group(1)) > 0.5:  # the two rates describe the same 64x64 images
        assert float(rate.group(2)) / float(rate.group(1)) == pytest.approx(64 * 64 / 1e6, rel=0.05)
    assert main([*base, "--batch-size", "0", "--overwrite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["restore: error: --batch-size must be at least 1, got 0"]


# --------------------------------------------------------------------------- the two helpers


def test_lookahead_loads_at_most_depth_ahead_in_order_and_skips_cheaply():
    started: list[int] = []
    gate = threading.Event()

    def load(i: int) -> int:
        started.append(i)
        gate.wait(5)
        return i * 10

    with Lookahead(range(10), load, depth=3, workers=2, skip=lambda i: "odd" if i % 2 else None) as ahead:
        head = ahead.peek()
        time.sleep(0.2)
        assert sorted(started) == [0, 2] and head is not None and head[0] == 0  # 2 workers busy, 4 queued
        gate.set()
        seen = []
        while (item := ahead.next()) is not None:
            i, future, verdict = item
            seen.append((i, future.result() if future is not None else verdict))
    assert seen == [(i, "odd" if i % 2 else i * 10) for i in range(10)]


def test_write_behind_keeps_order_and_waits_for_room():
    release = [threading.Event() for _ in range(3)]
    with WriteBehind(pending=2) as writer:
        for i in range(3):
            writer.submit(i, release[i].wait, 5)
        writer.record("known", "value")
        assert writer.full() and list(writer.finished()) == []  # nothing done yet at the front
        release[1].set()
        time.sleep(0.1)
        assert list(writer.finished()) == []  # 1 is done but 0 is ahead of it
        threading.Timer(0.2, release[0].set).start()
        keys = [key for key, _ in writer.finished(room=True)]
        assert keys == [0, 1] and not writer.full()  # waited for 0, then took the finished 1
        release[2].set()
        done = list(writer.finished(everything=True))
        assert [k for k, _ in done] == [2, "known"] and done[1][1].result() == "value"


def test_write_behind_hands_back_the_exception_of_a_failed_write():
    def fail() -> None:
        raise OSError(28, "No space left on device")

    with WriteBehind() as writer:
        writer.submit("x", fail)
        [(key, future)] = list(writer.finished(everything=True))
    assert key == "x" and isinstance(future.exception(), OSError)
