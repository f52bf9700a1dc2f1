"""Weights that know their network: every file restore writes records it, and `restore test` /
`restore infer` stop on a difference (or take the stored network when asked). Also the
one-line errors for weights files that cannot be used (NaN/inf, a raw pickle)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_run import make_images, one_error_line, write_options

import restore
from restore.archs.n2n_unet import N2NUNet
from restore.cli.main import main
from restore.engine.weights_meta import network_differences

ROOT = Path(__file__).resolve().parents[2]
TEST = """\
name: bench
task: denoise
{network}path: {{results_root: {root}/results}}
datasets:
  test:
    clean: {{type: synthetic_noise, root: {images}, noise: gauss25, phase: test, protocol: basicsr}}
"""
STORED = {"type": "n2n_unet", "in_nc": 3, "out_nc": 3, "n_feature": 8, "residual": True, "pad_square": False}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A quickstart-style run (``network.residual: true``) with a validation set: its folder."""
    tmp = tmp_path_factory.mktemp("meta")
    opt = write_options(tmp, "resid", total=2, save=2, network=", residual: true")
    text = opt.read_text().replace("datasets:\n", f"datasets:\n  val:\n    clean: {{type: synthetic_noise, root: "
                                                 f"{tmp / 'clean'}, noise: gauss25, max_images: 1}}\n")
    opt.write_text(text.replace("val_every: 100000", "val_every: 2"))
    assert main(["train", "-opt", str(opt), "--no-tensorboard"]) == 0
    return tmp / "experiments" / "resid"


def bench_options(tmp_path: Path, network: str | None = "network: {type: n2n_unet, n_feature: 8}\n") -> Path:
    images = make_images(tmp_path / "images", n=2)
    path = tmp_path / "bench.yml"
    path.write_text(TEST.format(network=network or "", root=tmp_path, images=images))
    return path


def test_every_weights_file_records_its_network_for_a_weights_only_load(trained: Path):
    files = [trained / "models" / "final.pth", trained / "models" / "best_clean_psnr.pth",
             trained / "checkpoints" / "iter_00000002.pth"]
    for path in files:
        meta = torch.load(path, weights_only=True)["meta"]
        assert meta["network"] == STORED, path
        assert (meta["task"], meta["run"], meta["restore"], meta["iteration"]) == ("denoise", "resid", restore.__version__, 2)


def test_restore_test_stops_on_a_network_the_weights_were_not_trained_with(trained, tmp_path, capsys):
    opt = bench_options(tmp_path)  # like options/unet/test/denoise_gauss25_unet.yml: no network.residual
    rc = main(["test", "-opt", str(opt), "--weights", str(trained / "models" / "final.pth")])
    assert rc == 2
    line = one_error_line(capsys.readouterr().err)
    assert "network.residual (weights: True, option file: False)" in line and "--network-from-weights" in line
    assert not (tmp_path / "results").exists()


def test_network_from_weights_takes_the_stored_network_and_says_so(trained, tmp_path, capsys):
    opt = bench_options(tmp_path)
    rc = main(["test", "-opt", str(opt), "--weights", str(trained / "models" / "final.pth"), "--network-from-weights"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "restore: note: using the network stored in" in err and "network.residual" in err
    assert (tmp_path / "results" / "bench" / "clean" / "summary.json").is_file()


def test_an_option_file_without_network_takes_it_only_when_asked(trained, tmp_path, capsys):
    opt = bench_options(tmp_path, network=None)
    weights = str(trained / "models" / "best_clean_psnr.pth")
    assert main(["test", "-opt", str(opt), "--weights", weights]) == 2
    assert "missing required key 'network'" in one_error_line(capsys.readouterr().err)
    assert main(["test", "-opt", str(opt), "--weights", weights, "--network-from-weights"]) == 0
    assert "type 'n2n_unet'" in capsys.readouterr().err


def test_restore_infer_checks_the_network_too(trained, tmp_path, capsys):
    opt = bench_options(tmp_path)
    weights = str(trained / "models" / "final.pth")
    args = ["infer", "-opt", str(opt), "--weights", weights, "--input", str(tmp_path / "images"),
            "--output", str(tmp_path / "out")]
    assert main(args) == 2
    assert "network.residual" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()
    assert main([*args, "--network-from-weights"]) == 0
    assert len(list((tmp_path / "out").glob("*.png"))) == 2


def test_release_files_without_metadata_load_as_before(tmp_path, capsys):
    opt = bench_options(tmp_path)
    torch.save(N2NUNet(n_feature=8).state_dict(), tmp_path / "release.pth")
    assert main(["test", "-opt", str(opt), "--weights", str(tmp_path / "release.pth")]) == 0
    assert "note" not in capsys.readouterr().err


@pytest.mark.parametrize("command", ["test", "infer"])
def test_weights_with_nan_are_one_line_naming_the_tensor(tmp_path, capsys, command):
    opt = bench_options(tmp_path)
    state = N2NUNet(n_feature=8).state_dict()
    name = sorted(state)[5]
    state[name].view(-1)[2] = float("nan")
    torch.save(state, tmp_path / "nan.pth")
    extra = ["--input", str(tmp_path / "images"), "--output", str(tmp_path / "out")] if command == "infer" else []
    assert main([command, "-opt", str(opt), "--weights", str(tmp_path / "nan.pth"), *extra]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"NaN/inf values in tensor {name}" in line
    assert not (tmp_path / "out").exists() and not (tmp_path / "results").exists()


def test_a_raw_pickle_weights_file_is_one_clear_line_without_torch_warnings(tmp_path):
    opt = bench_options(tmp_path)
    with open(tmp_path / "raw.pth", "wb") as handle:
        pickle.dump({k: v.numpy() for k, v in N2NUNet(n_feature=8).state_dict().items()}, handle)
    done = subprocess.run([sys.executable, "-m", "restore.cli.main", "test", "-opt", str(opt), "--weights",
                           str(tmp_path / "raw.pth")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert done.returncode == 2
    line = one_error_line(done.stderr)
    assert "raw.pth' is a plain Python pickle, not a torch weights file" in line
    assert line.endswith("or as .safetensors") and "Warning" not in done.stderr


def test_network_differences_compare_only_what_both_record():
    old = {"type": "wrap", "depth": 2, "inner": {"type": "a", "w": 1}}
    assert network_differences(old, {**old, "added_later": True}) == []  # written before the key existed
    assert network_differences(old, {**old, "depth": 2.0}) == []
    assert network_differences(old, {**old, "inner": {"type": "b", "v": 3}}) == [
        "network.inner.type (weights: 'a', option file: 'b')"
    ]
    assert network_differences({"type": "a", "x": [1, 2]}, {"type": "a"}) == ["network.x (weights: [1, 2], option file: absent)"]


@pytest.mark.parametrize("transfer", [False, True])
def test_pretrained_weights_with_nan_stop_training_before_it_starts(tmp_path, capsys, transfer):
    state = N2NUNet(n_feature=8).state_dict()
    name = sorted(state)[1]
    state[name].view(-1)[0] = float("-inf")
    torch.save({"params": state}, tmp_path / "start.pth")
    opt = write_options(tmp_path, "ft", total=2)
    extra = ["--set", "path.transfer=[{pattern: 'enc_*', action: freeze}]"] if transfer else []
    rc = main(["train", "-opt", str(opt), "--no-tensorboard", "--set", f"path.pretrained={tmp_path / 'start.pth'}", *extra])
    assert rc == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"NaN/inf values in tensor {name}" in line
    assert sorted(p.name for p in (tmp_path / "experiments" / "ft").iterdir()) == [".lock"]


class Payload:
    """What a malicious weights file would carry: unpickling it runs a command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_weights_file_carrying_code_is_refused_in_one_line_and_never_run(tmp_path, capsys):
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pth"
    torch.save({"format": "restore-checkpoint-v1", "model": Payload(marker)}, evil)
    opt = bench_options(tmp_path)
    assert main(["test", "-opt", str(opt), "--weights", str(evil)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "holds Python objects that a weights-only load refuses" in line and "posix.system" in line
    train_opt = write_options(tmp_path, "evil", total=2)
    assert main(["train", "-opt", str(train_opt), "--no-tensorboard", "--resume", str(evil)]) == 2
    assert "refuses" in one_error_line(capsys.readouterr().err)
    assert not marker.exists()


def test_a_slimmable_network_takes_the_weights_of_its_plain_network(trained, tmp_path, capsys):
    """n2n_unet_slim declares weights_of = n2n_unet: the type alone is no difference, the rest still is."""
    weights = str(trained / "models" / "final.pth")
    same = bench_options(tmp_path, network="network: {type: n2n_unet_slim, n_feature: 8, residual: true}\n")
    assert main(["test", "-opt", str(same), "--weights", weights]) == 0
    capsys.readouterr()
    other = tmp_path / "other"
    other.mkdir()
    differing = bench_options(other, network="network: {type: n2n_unet_slim, n_feature: 8}\n")
    assert main(["test", "-opt", str(differing), "--weights", weights]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "network.residual (weights: True, option file: False)" in line and "network.type" not in line
