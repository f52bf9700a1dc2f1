"""Batch-restore (restore.engine.batch_restore): paths, bit depth, resuming, bad files, masks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from restore import registry
from restore.config import load_options
from restore.data.image_io import read_image
from restore.engine.batch_restore import BatchSummary, plan_jobs, restore_folder
from restore.engine.distributed import DistContext
from restore.errors import ConfigError, DataError

OPTIONS = "name: br\ndevice: cpu\nnetwork: {type: n2n_unet, n_feature: 8}\n"


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """Random weights of the tiny UNet, in the official plain-state_dict format."""
    from restore.archs.n2n_unet import N2NUNet

    torch.manual_seed(0)
    model = N2NUNet(n_feature=8)
    for p in model.parameters():  # the official init (x0.1) gives near-constant outputs
        nn.init.normal_(p, std=0.2)
    path = tmp_path_factory.mktemp("w") / "n2n.pth"
    torch.save(model.state_dict(), path)
    return path


def options(tmp_path: Path, text: str = OPTIONS):
    f = tmp_path / "o.yml"
    f.write_text(text)
    return load_options(f)


def write(path: Path, array: np.ndarray) -> Path:
    """Write an RGB(A)/grey array with OpenCV (independently of image_io.write_image)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.ndim == 3 and array.shape[2] == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), array)
    return path


def rand(h: int, w: int, c: int = 3, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    peak = np.iinfo(dtype).max
    return np.random.default_rng(seed).integers(0, peak + 1, (h, w, c) if c else (h, w)).astype(dtype)


def run(opt, inp, out, **kw) -> BatchSummary:
    return restore_folder(opt, inp, out, ctx=DistContext(), progress=False, **kw)


def test_nested_paths_bit_depth_and_format(tmp_path, weights, capsys):
    inp = tmp_path / "in"
    write(inp / "a.png", rand(40, 48))
    write(inp / "sub/deeper/b.jpg", rand(33, 30, seed=1))
    write(inp / "sub/c16.png", rand(20, 36, dtype=np.uint16, seed=2))
    write(inp / "grey.png", rand(32, 32, c=0, seed=3))  # grey -> replicated for the 3-channel net
    (inp / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    summary = run(options(tmp_path), inp, out, weights=weights)
    assert summary.ok and len(summary.restored) == 4 and not summary.skipped
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a.png", "grey.png", "sub/c16.png", "sub/deeper/b.jpg"]
    assert read_image(out / "a.png").shape == (40, 48, 3) and read_image(out / "a.png").dtype == np.uint8
    assert read_image(out / "sub/c16.png").dtype == np.uint16
    assert (out / "sub/deeper/b.jpg").read_bytes()[:2] == b"\xff\xd8"  # really a JPEG
    assert read_image(out / "sub/deeper/b.jpg").shape == (33, 30, 3)
    assert "failed" not in capsys.readouterr().err


def test_format_option_changes_extension_and_depth(tmp_path, weights):
    inp = tmp_path / "in"
    write(inp / "x.png", rand(32, 32, dtype=np.uint16))
    write(inp / "y.jpg", rand(32, 32, seed=1))
    out = tmp_path / "out"
    assert run(options(tmp_path), inp, out, weights=weights, fmt="jpg").ok
    assert sorted(p.name for p in out.iterdir()) == ["x.jpg", "y.jpg"]
    assert read_image(out / "x.jpg").dtype == np.uint8  # JPEG cannot hold 16 bits
    assert run(options(tmp_path), inp, tmp_path / "tif", weights=weights, fmt="tif").ok
    assert read_image(tmp_path / "tif/x.tif").dtype == np.uint16


def test_two_inputs_one_output_name_is_refused(tmp_path, weights):
    write(tmp_path / "in/a.png", rand(8, 8))
    write(tmp_path / "in/a.jpg", rand(8, 8))
    with pytest.raises(DataError, match=r"a\.jpg' and .*a\.png' would both be written"):
        plan_jobs(tmp_path / "in", tmp_path / "out", fmt="png")


def test_skips_existing_and_overwrite_replaces(tmp_path, weights):
    inp, out = tmp_path / "in", tmp_path / "out"
    write(inp / "a.png", rand(32, 32))
    write(inp / "b.png", rand(32, 32, seed=1))
    out.mkdir()
    (out / "a.png").write_bytes(b"sentinel")
    summary = run(options(tmp_path), inp, out, weights=weights)
    assert [p.name for p in summary.skipped] == ["a.png"] and [p.name for p in summary.restored] == ["b.png"]
    assert (out / "a.png").read_bytes() == b"sentinel"
    summary = run(options(tmp_path), inp, out, weights=weights, overwrite=True)
    assert len(summary.restored) == 2 and not summary.skipped
    assert read_image(out / "a.png").shape == (32, 32, 3)


def test_killed_run_continues_where_it_stopped(tmp_path, weights):
    inp, out = tmp_path / "in", tmp_path / "out"
    for i in range(5):
        write(inp / f"{i}.png", rand(32, 32, seed=i))
    first = run(options(tmp_path), inp, tmp_path / "full", weights=weights)
    # A killed run: the first two outputs are complete, the temporary file of the third is left.
    out.mkdir()
    for name in ("0.png", "1.png"):
        (out / name).write_bytes((tmp_path / "full" / name).read_bytes())
    (out / ".2.png.abc.tmp").write_bytes(b"half")
    stamps = {name: (out / name).stat().st_mtime_ns for name in ("0.png", "1.png")}
    summary = run(options(tmp_path), inp, out, weights=weights)
    assert [p.name for p in summary.restored] == ["2.png", "3.png", "4.png"]
    assert [p.name for p in summary.skipped] == ["0.png", "1.png"]
    assert all((out / n).stat().st_mtime_ns == t for n, t in stamps.items())
    for i in range(5):  # the continued run gives the same files as an uninterrupted one
        assert (out / f"{i}.png").read_bytes() == (tmp_path / "full" / f"{i}.png").read_bytes()
    assert len(first.restored) == 5


def test_corrupt_and_empty_files_are_reported_and_skipped(tmp_path, weights, capsys):
    inp, out = tmp_path / "in", tmp_path / "out"
    write(inp / "good.png", rand(32, 32))
    (inp / "bad.png").write_bytes(b"this is not a png at all" * 10)
    (inp / "sub").mkdir()
    (inp / "sub/empty.jpg").write_bytes(b"")
    summary = run(options(tmp_path), inp, out, weights=weights)
    assert [p.name for p in summary.restored] == ["good.png"]
    assert sorted(p.name for p, _ in summary.failed) == ["bad.png", "empty.jpg"]
    assert not summary.ok
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("restore: failed: ") for line in err), err
    assert any("bad.png" in line and "corrupt" in line for line in err)
    assert any("empty.jpg" in line and "empty" in line for line in err)
    assert sorted(p.name for p in out.rglob("*")) == ["good.png"]  # no folder, no partial file


@pytest.mark.parametrize("where", ["same", "inside"])
def test_output_inside_input_is_refused(tmp_path, weights, where):
    inp = tmp_path / "in"
    write(inp / "a.png", rand(8, 8))
    out = inp if where == "same" else inp / "restored"
    with pytest.raises(DataError, match="restore infer never writes into its input") as info:
        run(options(tmp_path), inp, out, weights=weights)
    assert str(inp) in str(info.value) and str(out) in str(info.value)
    assert sorted(p.name for p in inp.rglob("*")) == ["a.png"]


def test_input_inside_output_is_fine(tmp_path, weights):
    out = tmp_path / "work"
    inp = out / "noisy"
    write(inp / "a.png", rand(32, 32))
    assert run(options(tmp_path), inp, out, weights=weights).ok
    assert (out / "a.png").is_file()


def test_weights_missing_or_not_fitting(tmp_path, weights):
    write(tmp_path / "in/a.png", rand(8, 8))
    with pytest.raises(DataError, match="does not exist"):
        run(options(tmp_path), tmp_path / "in", tmp_path / "out", weights=tmp_path / "nope.pth")
    wide = options(tmp_path, OPTIONS.replace("n_feature: 8", "n_feature: 16"))
    with pytest.raises(ConfigError, match="do not fit"):
        run(wide, tmp_path / "in", tmp_path / "out", weights=weights)
    with pytest.raises(ConfigError, match="no weights"):
        run(options(tmp_path), tmp_path / "in", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_pretrained_from_options(tmp_path, weights):
    write(tmp_path / "in/a.png", rand(32, 32))
    opt = options(tmp_path, OPTIONS + f"path: {{pretrained: '{weights}'}}\n")
    assert run(opt, tmp_path / "in", tmp_path / "out").ok


def test_ranks_share_the_files(tmp_path, weights):
    inp = tmp_path / "in"
    for i in range(5):
        write(inp / f"{i}.png", rand(32, 32, seed=i))
    summary = restore_folder(options(tmp_path), inp, tmp_path / "out", weights=weights,
                             ctx=DistContext(rank=1, world_size=2), progress=False)
    assert [p.name for p in summary.restored] == ["1.png", "3.png"]


def test_output_equals_the_model_run_directly(tmp_path, weights):
    """Independent path: read as float, pad to a multiple of 32 (reflect), forward, crop, round."""
    from restore.archs.n2n_unet import N2NUNet

    image = rand(40, 50, seed=7)
    write(tmp_path / "in/x.png", image)
    assert run(options(tmp_path), tmp_path / "in", tmp_path / "out", weights=weights).ok
    model = N2NUNet(n_feature=8)
    model.load_state_dict(torch.load(weights, weights_only=True))
    x = torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        y = model(F.pad(x, (0, 64 - 50, 0, 64 - 40), mode="reflect"))[0, :, :40, :50]
    expected = np.rint(y.clamp(0, 1).permute(1, 2, 0).numpy().astype(np.float64) * 255).astype(np.uint8)
    got = read_image(tmp_path / "out/x.png")
    assert np.abs(got.astype(int) - expected).max() <= 1  # float summation order may differ
    assert (got == expected).mean() > 0.99
    assert expected.std() > 5  # the check is not vacuous (not a constant image)


# --------------------------------------------------------------------------- masks


class TinyMaskNet(nn.Module):
    """Shadow-removal stand-in: output = input * (1 - mask) + gain * mask (a mask really matters)."""

    input_keys = ("input", "mask")
    in_nc = 3

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(0.5))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        assert mask.shape == (x.shape[0], 1, *x.shape[2:])
        return x * (1 - mask) + self.gain * mask


@pytest.fixture
def mask_net(tmp_path):
    w = tmp_path / "mask_net.pth"
    torch.save(TinyMaskNet().state_dict(), w)
    with registry.registered("arch", "tiny_mask_net", f"{__name__}:TinyMaskNet"):
        yield options(tmp_path, "name: m\ndevice: cpu\nnetwork: {type: tiny_mask_net}\n"), w


def test_mask_dir_pairs_by_relative_name_any_extension(tmp_path, mask_net):
    opt, w = mask_net
    image = rand(16, 16)
    write(tmp_path / "in/sub/s1.png", image)
    write(tmp_path / "in/s2.jpg", rand(16, 16, seed=1))
    mask = np.zeros((16, 16), np.uint8)
    mask[:, 8:] = 1  # a 0/1 mask: read_mask rescales it to 0/255
    write(tmp_path / "masks/sub/s1.bmp", mask)
    write(tmp_path / "masks/s2.png", mask * 255)
    summary = run(opt, tmp_path / "in", tmp_path / "out", weights=w, mask_dir=tmp_path / "masks")
    assert summary.ok and len(summary.restored) == 2
    got = read_image(tmp_path / "out/sub/s1.png")
    assert np.array_equal(got[:, :8], image[:, :8]) and (got[:, 8:] == 128).all()


def test_mask_network_without_mask_dir_is_an_error(tmp_path, mask_net):
    opt, w = mask_net
    write(tmp_path / "in/a.png", rand(8, 8))
    with pytest.raises(ConfigError, match="needs a shadow mask.*--mask-dir"):
        run(opt, tmp_path / "in", tmp_path / "out", weights=w)


def test_missing_or_wrong_size_mask(tmp_path, mask_net, capsys):
    opt, w = mask_net
    write(tmp_path / "in/a.png", rand(16, 16))
    write(tmp_path / "in/b.png", rand(16, 16))
    write(tmp_path / "masks/a.png", np.zeros((16, 16), np.uint8))
    with pytest.raises(DataError, match=r"no mask in .* for input .*b\.png'"):
        run(opt, tmp_path / "in", tmp_path / "out", weights=w, mask_dir=tmp_path / "masks")
    write(tmp_path / "masks/b.png", np.zeros((8, 16), np.uint8))
    summary = run(opt, tmp_path / "in", tmp_path / "out", weights=w, mask_dir=tmp_path / "masks")
    assert [p.name for p in summary.restored] == ["a.png"] and [p.name for p, _ in summary.failed] == ["b.png"]
    assert "mask" in summary.failed[0][1] and "16x8" in summary.failed[0][1]


def test_channel_conversion_to_in_nc(tmp_path, weights):
    grey = options(tmp_path, OPTIONS.replace("n_feature: 8", "n_feature: 8, in_nc: 1, out_nc: 1"))
    from restore.archs.n2n_unet import N2NUNet

    w = tmp_path / "grey.pth"
    torch.save(N2NUNet(in_nc=1, out_nc=1, n_feature=8).state_dict(), w)
    rgba = rand(32, 32, c=4)
    write(tmp_path / "in/rgba.png", rgba)
    assert run(grey, tmp_path / "in", tmp_path / "out", weights=w).ok
    assert read_image(tmp_path / "out/rgba.png").shape == (32, 32, 1)
