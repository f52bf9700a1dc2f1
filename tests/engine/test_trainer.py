"""Training loop: exact resume, checkpoint contents, experiment folder, hooks, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from restore import registry
from restore.cli.main import main
from restore.config import load_options
from restore.engine.callbacks import Callback
from restore.engine.checkpoint import load_file
from restore.engine.trainer import Trainer
from restore.errors import ConfigError
from restore.methods.step import TrainStep

OPTIONS = """
name: {name}
seed: 3
network: {{type: n2n_unet, n_feature: 8}}
datasets:
  train: {{type: synthetic_noise, root: {root}, noise: gauss5_50, crop_size: 32, flip_rotate: true,
          batch_size: 2, num_workers: {workers}}}
train:
  total_iter: 8
  save_every: 3
  log_every: 2
  val_every: 1000
  ema_decay: 0.9
  accumulate: {accumulate}
  grad_clip: 1.0
  optimizer: {{type: adamw, lr: 1e-3}}
  scheduler: {{type: cosine, warmup_iter: 2}}
  losses: [{{type: l1}}, {{type: charbonnier, weight: 0.5}}]
path:
  experiments_root: {exp}
"""


@pytest.fixture()
def images(tmp_path: Path) -> Path:
    import cv2

    root = tmp_path / "clean"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        cv2.imwrite(str(root / f"{i}.png"), (rng.random((40 + 4 * i, 48, 3)) * 255).astype(np.uint8))
    return root


def write_options(tmp_path: Path, images: Path, name: str, workers: int = 0, accumulate: int = 1) -> Path:
    path = tmp_path / f"{name}.yml"
    path.write_text(
        OPTIONS.format(name=name, root=images, workers=workers, accumulate=accumulate, exp=tmp_path / "experiments")
    )
    return path


class StopAt(Callback):
    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def on_iteration_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        if trainer.iteration == self.iteration:
            trainer.stop_requested = True


def final_state(tmp_path: Path, name: str) -> dict:
    ckpts = sorted((tmp_path / "experiments" / name / "checkpoints").glob("iter_*.pth"))
    return load_file(ckpts[-1])


def assert_states_equal(a: dict, b: dict) -> None:
    assert a["iteration"] == b["iteration"]
    for part in ("model", "ema"):
        assert a[part].keys() == b[part].keys()
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key} differs"
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    for k in sa:
        for name in sa[k]:
            assert torch.equal(torch.as_tensor(sa[k][name]), torch.as_tensor(sb[k][name]))


@pytest.mark.parametrize("workers,accumulate", [(0, 1), (1, 2)])
def test_interrupted_and_resumed_run_is_bit_identical(tmp_path: Path, images: Path, workers: int, accumulate: int) -> None:
    whole = load_options(write_options(tmp_path, images, "whole", workers, accumulate))
    Trainer(whole, tensorboard=False).fit()

    split_file = write_options(tmp_path, images, "split", workers, accumulate)
    Trainer(load_options(split_file), callbacks=[StopAt(4)], tensorboard=False).fit()
    stopped = final_state(tmp_path, "split")
    assert stopped["iteration"] == 4  # stopped mid-schedule with a checkpoint (save_every is 3)
    Trainer(load_options(split_file), resume="auto", tensorboard=False).fit()

    a, b = final_state(tmp_path, "whole"), final_state(tmp_path, "split")
    assert a["iteration"] == 8
    assert_states_equal(a, b)
    assert a["sampler"]["position"] == b["sampler"]["position"] == 8 * 2 * accumulate


def test_resume_does_not_reread_trained_batches(tmp_path: Path, images: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opts_file = write_options(tmp_path, images, "reads")
    Trainer(load_options(opts_file), callbacks=[StopAt(5)], tensorboard=False).fit()
    from restore.data.synthetic_noise import SyntheticNoiseDataset

    calls = []
    original = SyntheticNoiseDataset.load

    def counting(self, index, seed):
        calls.append((index, seed))
        return original(self, index, seed)

    monkeypatch.setattr(SyntheticNoiseDataset, "load", counting)
    Trainer(load_options(opts_file), resume="auto", tensorboard=False).fit()
    # 3 iterations x batch 2 remain; the loader may prefetch a little, never the 10 done already
    assert 6 <= len(calls) <= 6 + 2
    from restore.engine.sampler import ResumableSampler

    done = {ResumableSampler(5, 3).key(p) for p in range(10)}
    assert not done & set(calls)


def test_checkpoint_holds_full_state_and_loads_weights_only(tmp_path: Path, images: Path) -> None:
    Trainer(load_options(write_options(tmp_path, images, "ck")), tensorboard=False).fit()
    exp = tmp_path / "experiments" / "ck"
    state = torch.load(exp / "checkpoints" / "iter_00000008.pth", weights_only=True)
    for key in ("model", "ema", "optimizer", "scheduler", "iteration", "rng", "sampler", "best", "options"):
        assert key in state
    assert set(state["rng"][0]) >= {"python", "numpy", "torch"}
    # keep_checkpoints defaults to 3: iterations 3, 6, 8 remain
    assert [p.name for p in sorted((exp / "checkpoints").iterdir())] == [
        "iter_00000003.pth", "iter_00000006.pth", "iter_00000008.pth"
    ]
    assert not list((exp / "checkpoints").glob(".*tmp"))
    assert load_options(exp / "options.yml").to_dict() == load_options(tmp_path / "ck.yml").to_dict()
    records = [json.loads(line) for line in (exp / "log.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records] == [2, 4, 6, 8]
    assert all("train/loss_l1" in r and "train/loss_charbonnier" in r and "train/lr" in r for r in records)
    assert "[iter 8/8]" in (exp / "train.log").read_text()
    final = load_file(exp / "models" / "final.pth")
    for key, value in state["ema"].items():  # final weights are the EMA weights
        assert torch.equal(final["params"][key], value)


def test_fresh_run_refuses_to_overwrite_a_run(tmp_path: Path, images: Path) -> None:
    opts_file = write_options(tmp_path, images, "again")
    Trainer(load_options(opts_file), callbacks=[StopAt(3)], tensorboard=False).fit()
    with pytest.raises(ConfigError, match="--resume auto"):
        Trainer(load_options(opts_file), tensorboard=False).fit()


class HalfStep(TrainStep):
    """A made-up step (regress half the target) that records the progress it is given."""

    seen: list[float] = []

    def __call__(self, model, batch, trainer):
        self.seen.append(trainer.progress)
        pred = model(batch["input"])
        return (pred - 0.5 * batch["target"]).abs().mean(), {"custom": torch.tensor(1.0)}


def test_custom_train_step_plugs_in(tmp_path: Path, images: Path) -> None:
    HalfStep.seen.clear()
    path = write_options(tmp_path, images, "custom")
    path.write_text(path.read_text().replace("  total_iter: 8", "  total_iter: 4\n  step: {type: half}"))
    with registry.registered("train_step", "half", f"{__name__}:HalfStep"):
        Trainer(load_options(path), tensorboard=False).fit()
    assert HalfStep.seen == [0.0, 0.25, 0.5, 0.75]
    records = [json.loads(x) for x in (tmp_path / "experiments/custom/log.jsonl").read_text().splitlines()]
    assert records[-1]["train/custom"] == 1.0


def test_cli_train_reports_a_corrupt_image_in_one_line(tmp_path: Path, images: Path, capsys) -> None:
    (images / "3.png").write_bytes(b"not a png at all")
    path = write_options(tmp_path, images, "corrupt", workers=1)
    assert main(["train", "-opt", str(path), "--no-tensorboard"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("restore: error:") and "3.png" in err[0]


def test_cli_train_unwraps_an_error_raised_in_a_loader_worker(tmp_path: Path, images: Path, capsys) -> None:
    data = (images / "2.png").read_bytes()
    (images / "2.png").write_bytes(data[: len(data) // 3])  # header intact: only decoding fails
    path = write_options(tmp_path, images, "truncated", workers=1)
    assert main(["train", "-opt", str(path), "--no-tensorboard"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("restore: error:") and "2.png" in err[0], err
    assert "Traceback" not in err[0] and "worker" not in err[0]


def test_tensorboard_gets_scalars_and_validation_images(tmp_path: Path, images: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    path = write_options(tmp_path, images, "tb")
    text = path.read_text().replace("  total_iter: 8", "  total_iter: 2")
    text = text.replace("datasets:\n", f"datasets:\n  val:\n    clean: {{type: synthetic_noise, root: {images}, max_images: 2}}\n")
    path.write_text(text)
    Trainer(load_options(path)).fit()
    events = EventAccumulator(str(tmp_path / "experiments" / "tb" / "tensorboard"))
    events.Reload()
    tags = events.Tags()
    assert {"train/loss", "train/lr", "val/clean/psnr", "val/clean/ssim"} <= set(tags["scalars"])
    assert {"val/clean/0", "val/clean/1"} <= set(tags["images"])
    best = load_file(tmp_path / "experiments" / "tb" / "models" / "best_clean_psnr.pth")
    assert best["iteration"] == 2


class NaNStep(TrainStep):
    """Diverges at the third iteration."""

    def __call__(self, model, batch, trainer):
        loss = model(batch["input"]).abs().mean()
        return (loss * float("nan") if trainer.iteration == 2 else loss), {}


def test_a_diverging_loss_stops_with_one_line_before_any_nan_checkpoint(tmp_path: Path, images: Path) -> None:
    from restore.errors import RestoreError

    path = write_options(tmp_path, images, "nan")
    path.write_text(path.read_text().replace("  total_iter: 8", "  total_iter: 8\n  step: {type: nan}"))
    with registry.registered("train_step", "nan", f"{__name__}:NaNStep"):
        with pytest.raises(RestoreError, match="loss became nan by iteration 3") as info:
            Trainer(load_options(path), tensorboard=False).fit()
    assert "\n" not in str(info.value)
    saved = sorted((tmp_path / "experiments" / "nan" / "checkpoints").glob("iter_*.pth"))
    assert [p.name for p in saved] == []  # save_every 3: iteration 3 already held NaN weights
