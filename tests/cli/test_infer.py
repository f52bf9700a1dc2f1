"""`restore infer`: batch-restore a folder from the command line (exit status, messages, flags)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from restore import registry
from restore.cli.main import main
from restore.data.image_io import read_image

OPTIONS = "name: inf\ndevice: cpu\nnetwork: {type: n2n_unet, n_feature: 8}\n"


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """Random weights of the tiny UNet, saved as a plain state_dict (the official layout)."""
    from restore.archs.n2n_unet import N2NUNet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "n2n.pth"
    torch.save(N2NUNet(n_feature=8).state_dict(), path)
    return path


def option_file(tmp_path: Path, text: str = OPTIONS) -> Path:
    f = tmp_path / "o.yml"
    f.write_text(text)
    return f


def image(path: Path, h: int = 32, w: int = 32, seed: int = 0, dtype=np.uint8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).integers(0, np.iinfo(dtype).max + 1, (h, w, 3)).astype(dtype)
    assert cv2.imwrite(str(path), data)
    return path


def infer(tmp_path: Path, weights: Path | None, *extra: str, opt: Path | None = None) -> int:
    args = ["infer", "-opt", str(opt or option_file(tmp_path)), "--input", str(tmp_path / "in"),
            "--output", str(tmp_path / "out"), *extra]
    return main(args + (["--weights", str(weights)] if weights is not None else []))


def one_error_line(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("restore: error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_restores_a_nested_folder_and_prints_a_summary(tmp_path, weights, capsys):
    image(tmp_path / "in/a.png")
    image(tmp_path / "in/sub/b.jpg", seed=1)
    image(tmp_path / "in/sub/c.png", dtype=np.uint16, seed=2)
    assert infer(tmp_path, weights) == 0
    out = capsys.readouterr().out
    assert "restored 3, skipped 0 (output exists), failed 0" in out
    assert read_image(tmp_path / "out/sub/c.png").dtype == np.uint16
    assert (tmp_path / "out/sub/b.jpg").is_file() and (tmp_path / "out/a.png").is_file()

    (tmp_path / "out/a.png").write_bytes(b"sentinel")  # a second run skips what exists
    assert infer(tmp_path, weights) == 0
    assert "restored 0, skipped 3" in capsys.readouterr().out
    assert (tmp_path / "out/a.png").read_bytes() == b"sentinel"
    assert infer(tmp_path, weights, "--overwrite") == 0
    assert "restored 3, skipped 0" in capsys.readouterr().out
    assert read_image(tmp_path / "out/a.png").shape == (32, 32, 3)


def test_format_flag(tmp_path, weights, capsys):
    image(tmp_path / "in/a.png")
    image(tmp_path / "in/b.tif", seed=1)
    assert infer(tmp_path, weights, "--format", "bmp") == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.bmp", "b.bmp"]


def test_bad_files_are_reported_and_exit_status_is_1(tmp_path, weights, capsys):
    image(tmp_path / "in/a.png")
    image(tmp_path / "in/z.png", seed=1)
    (tmp_path / "in/corrupt.png").write_bytes(b"\x89PNG garbage" + bytes(range(256)))
    (tmp_path / "in/empty.png").write_bytes(b"")
    assert infer(tmp_path, weights) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert "Traceback" not in captured.err
    assert len(lines) == 2 and all(line.startswith("restore: failed: ") for line in lines), lines
    assert "corrupt.png" in lines[0] and "empty.png" in lines[1] and "empty" in lines[1]
    assert "restored 2, skipped 0 (output exists), failed 2" in captured.out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "z.png"]


def test_output_inside_input_is_refused(tmp_path, weights, capsys):
    image(tmp_path / "in/a.png")
    opt = option_file(tmp_path)
    code = main(["infer", "-opt", str(opt), "--weights", str(weights), "--input", str(tmp_path / "in"),
                 "--output", str(tmp_path / "in/out")])
    assert code == 2
    one_error_line(capsys, str(tmp_path / "in/out"), str(tmp_path / "in"), "inside the input folder")
    assert not (tmp_path / "in/out").exists()


def test_missing_weights_file_is_one_line(tmp_path, capsys):
    image(tmp_path / "in/a.png")
    assert infer(tmp_path, tmp_path / "missing.pth") == 2
    one_error_line(capsys, "missing.pth", "does not exist")
    assert not (tmp_path / "out").exists()


def test_weights_that_do_not_fit_are_one_line(tmp_path, weights, capsys):
    image(tmp_path / "in/a.png")
    opt = option_file(tmp_path, OPTIONS.replace("n_feature: 8", "n_feature: 4"))
    assert infer(tmp_path, weights, opt=opt) == 2
    one_error_line(capsys, str(weights), "do not fit", "shape mismatch")
    assert not (tmp_path / "out").exists()


def test_weights_from_path_pretrained(tmp_path, weights, capsys):
    image(tmp_path / "in/a.png")
    opt = option_file(tmp_path, OPTIONS + f"path: {{pretrained: '{weights}'}}\n")
    assert infer(tmp_path, None, opt=opt) == 0
    assert infer(tmp_path, None) == 2  # neither --weights nor path.pretrained
    one_error_line(capsys, "no weights", "--weights")


def test_tile_self_ensemble_and_device_flags_override_the_options(tmp_path, weights, monkeypatch):
    import restore.engine.batch_restore as batch

    seen = {}

    def fake_restore_folder(options, *args, **kwargs):
        seen.update(infer=options.infer, device=options.device)
        return batch.BatchSummary()

    monkeypatch.setattr(batch, "restore_folder", fake_restore_folder)
    image(tmp_path / "in/a.png")
    opt = option_file(tmp_path, OPTIONS + "infer: {tile: 128, self_ensemble: false}\n")
    assert infer(tmp_path, weights, "--tile", "64", "--self-ensemble", "--device", "cpu", opt=opt) == 0
    assert seen["infer"].tile == 64 and seen["infer"].self_ensemble is True and seen["device"] == "cpu"
    assert infer(tmp_path, weights, "--tile", "0", opt=opt) == 0
    assert seen["infer"].tile is None and seen["infer"].self_ensemble is False
    assert (seen["infer"].backend, seen["infer"].precision) == ("torch", "fp32")
    assert infer(tmp_path, weights, "--backend", "auto", "--precision", "bf16", opt=opt) == 0
    assert (seen["infer"].backend, seen["infer"].precision) == ("auto", "bf16")


def test_a_backend_whose_extra_is_missing_is_one_line(tmp_path, weights, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "openvino", None)  # as if `pip install -e ".[fast]"` never ran
    image(tmp_path / "in/a.png")
    assert infer(tmp_path, weights, "--backend", "openvino") == 2
    one_error_line(capsys, "infer.backend openvino", "'openvino'", 'pip install -e ".[fast]"')
    assert not (tmp_path / "out").exists()


def test_onnxruntime_backend_writes_the_torch_images(tmp_path, weights, capsys, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("RESTORE_CACHE", str(tmp_path / "cache"))
    image(tmp_path / "in/a.png", 40, 52)
    image(tmp_path / "in/b.png", 33, 64, seed=1)
    opt = option_file(tmp_path)
    assert main(["infer", "-opt", str(opt), "--weights", str(weights), "--input", str(tmp_path / "in"),
                 "--output", str(tmp_path / "torch")]) == 0
    assert infer(tmp_path, weights, "--backend", "onnxruntime", opt=opt) == 0
    assert len(list((tmp_path / "cache/onnx").glob("*.onnx"))) == 1  # one graph served both sizes
    for name in ("a.png", "b.png"):
        ours, theirs = read_image(tmp_path / "out" / name), read_image(tmp_path / "torch" / name)
        assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1  # fp32 rounding order only


def test_tiled_run_restores_too(tmp_path, weights, capsys):
    image(tmp_path / "in/a.png", h=70, w=90)
    assert infer(tmp_path, weights, "--tile", "64") == 0
    assert read_image(tmp_path / "out/a.png").shape == (70, 90, 3)


class MaskNet(nn.Module):
    """Takes an image and a mask, as a shadow-removal network does."""

    input_keys = ("input", "mask")

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.w * x * (1 - mask)


@pytest.fixture
def mask_options(tmp_path):
    w = tmp_path / "mask.pth"
    torch.save(MaskNet().state_dict(), w)
    with registry.registered("arch", "cli_mask_net", f"{__name__}:MaskNet"):
        yield option_file(tmp_path, "name: m\ndevice: cpu\nnetwork: {type: cli_mask_net}\n"), w


def test_mask_network_needs_mask_dir(tmp_path, mask_options, capsys):
    opt, w = mask_options
    image(tmp_path / "in/a.png")
    assert infer(tmp_path, w, opt=opt) == 2
    one_error_line(capsys, "cli_mask_net", "--mask-dir")
    assert not (tmp_path / "out").exists()


def test_mask_dir(tmp_path, mask_options, capsys):
    opt, w = mask_options
    image(tmp_path / "in/a.png")
    mask = np.zeros((32, 32), np.uint8)
    mask[:16] = 255
    (tmp_path / "masks").mkdir()
    cv2.imwrite(str(tmp_path / "masks/a.bmp"), mask)  # any image extension pairs by name
    assert infer(tmp_path, w, "--mask-dir", str(tmp_path / "masks"), opt=opt) == 0
    out = read_image(tmp_path / "out/a.png")
    assert (out[:16] == 0).all() and out[16:].any()


def test_torchrun_shares_files_and_all_ranks_agree_on_the_status(tmp_path, weights):
    """Two CPU ranks (gloo): each restores its share, rank 0 prints the gathered summary once."""
    import subprocess
    import sys

    for i in range(4):
        image(tmp_path / f"in/sub/{i}.png", seed=i)
    (tmp_path / "in/bad.png").write_bytes(b"not a png")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "restore.cli.main", "infer", "-opt", str(option_file(tmp_path)), "--weights", str(weights),
           "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.count("restore infer: restored 4, skipped 0 (output exists), failed 1") == 1, proc.stdout
    assert [line for line in proc.stderr.splitlines() if line.startswith("restore: failed: ")] == [
        f"restore: failed: cannot read image '{tmp_path / 'in/bad.png'}': not a decodable PNG file "
        "(corrupt or truncated?, 9 bytes)"
    ]
    assert sorted(p.name for p in (tmp_path / "out/sub").iterdir()) == ["0.png", "1.png", "2.png", "3.png"]
