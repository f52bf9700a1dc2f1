"""`restore infer` as a careless or hostile user drives it: links, odd files, killed runs, no terminal.

Each fault is one line on stderr, no traceback, nothing written where it must not be, and
(for a single file's fault) the run goes on with the other files and exits 1.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from restore import registry
from restore.cli.main import main

OPTIONS = "name: faults\ndevice: cpu\nnetwork: {type: n2n_unet, n_feature: 8}\n"


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    from restore.archs.n2n_unet import N2NUNet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "n2n.pth"
    torch.save(N2NUNet(n_feature=8).state_dict(), path)
    return path


def image(path: Path, seed: int = 0, h: int = 32, w: int = 32) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)
    assert cv2.imwrite(str(path), data)
    return path


def infer(tmp_path: Path, weights: Path, *extra: str, inp: Path | None = None, out: Path | None = None,
          opt: str = OPTIONS) -> int:
    (tmp_path / "o.yml").write_text(opt)
    return main(["infer", "-opt", str(tmp_path / "o.yml"), "--weights", str(weights),
                 "--input", str(inp or tmp_path / "in"), "--output", str(out or tmp_path / "out"), *extra])


def failures(err: str) -> list[str]:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert all(line.startswith("restore: failed: ") for line in lines), lines
    return lines


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- links into the input


@pytest.mark.parametrize("overwrite", [True, False])
def test_link_in_the_output_folder_never_sends_a_write_into_the_input(tmp_path, weights, capsys, overwrite):
    """The issue's reproduction: in/a.png, in/sub/a.png, ln -s ../in out/sub."""
    image(tmp_path / "in/a.png", seed=1)
    image(tmp_path / "in/sub/a.png", seed=2)
    before = snapshot(tmp_path / "in")
    (tmp_path / "out").mkdir()
    os.symlink("../in", tmp_path / "out/sub")
    code = infer(tmp_path, weights, *(["--overwrite"] if overwrite else []))
    captured = capsys.readouterr()
    assert code == 1
    [line] = failures(captured.err)
    assert f"'{tmp_path / 'out/sub/a.png'}'" in line and "into the input file" in line
    assert "never writes into what it reads" in line
    assert snapshot(tmp_path / "in") == before
    assert (tmp_path / "out/a.png").is_file()
    assert "restored 1, skipped 0 (output exists), failed 1" in captured.out


def test_output_that_is_a_link_to_the_input_is_refused(tmp_path, weights, capsys):
    image(tmp_path / "in/a.png")
    before = snapshot(tmp_path / "in")
    os.symlink(tmp_path / "in", tmp_path / "out")
    assert infer(tmp_path, weights, "--overwrite") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is the input folder" in err[0], err
    assert snapshot(tmp_path / "in") == before


def test_output_inside_the_input_through_a_link_is_refused(tmp_path, weights, capsys):
    image(tmp_path / "in/a.png")
    (tmp_path / "in/sub").mkdir()
    os.symlink(tmp_path / "in/sub", tmp_path / "out")
    assert infer(tmp_path, weights) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "inside the input folder" in err[0], err
    assert list((tmp_path / "in/sub").iterdir()) == []


def test_output_equal_to_or_inside_the_input(tmp_path, weights, capsys):
    image(tmp_path / "in/a.png")
    before = snapshot(tmp_path / "in")
    for out in (tmp_path / "in", tmp_path / "in/restored"):
        assert infer(tmp_path, weights, "--overwrite", out=out) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "never writes into its input" in err[0], err
    assert snapshot(tmp_path / "in") == before


def test_a_target_that_resolves_outside_the_output_folder_is_refused(tmp_path, weights, capsys):
    image(tmp_path / "in/a.png")
    image(tmp_path / "in/sub/b.png", seed=1)
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "out/sub")
    assert infer(tmp_path, weights) == 1
    [line] = failures(capsys.readouterr().err)
    assert "out/sub/b.png" in line and "outside the output folder" in line
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_an_output_file_linked_to_an_input_is_refused_not_skipped(tmp_path, weights, capsys):
    image(tmp_path / "in/a.png")
    before = snapshot(tmp_path / "in")
    (tmp_path / "out").mkdir()
    os.symlink(tmp_path / "in/a.png", tmp_path / "out/a.png")
    for extra in ([], ["--overwrite"]):
        assert infer(tmp_path, weights, *extra) == 1
        [line] = failures(capsys.readouterr().err)
        assert "into the input file" in line
    assert snapshot(tmp_path / "in") == before


class MaskNet(nn.Module):
    """Takes an image and a mask."""

    input_keys = ("input", "mask")

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.w * x * (1 - mask)


@pytest.fixture
def mask_net(tmp_path):
    torch.save(MaskNet().state_dict(), tmp_path / "mask.pth")
    with registry.registered("arch", "faults_mask_net", f"{__name__}:MaskNet"):
        yield tmp_path / "mask.pth", "name: m\ndevice: cpu\nnetwork: {type: faults_mask_net}\n"


def mask(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.zeros((32, 32), np.uint8))
    return path


def test_output_inside_the_mask_folder_is_refused(tmp_path, mask_net, capsys):
    w, opt = mask_net
    image(tmp_path / "in/a.png")
    mask(tmp_path / "masks/a.png")
    code = infer(tmp_path, w, "--mask-dir", str(tmp_path / "masks"), out=tmp_path / "masks/out", opt=opt)
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "inside the mask folder" in err[0], err
    assert not (tmp_path / "masks/out").exists()


def test_mask_folder_inside_the_output_folder_keeps_its_masks(tmp_path, mask_net, capsys):
    """Masks in work/masks, output work/: the input's own masks/ subfolder would overwrite them."""
    w, opt = mask_net
    image(tmp_path / "in/a.png")
    image(tmp_path / "in/masks/b.png", seed=1)
    mask(tmp_path / "work/masks/a.png")
    mask(tmp_path / "work/masks/masks/b.png")
    mask(tmp_path / "work/masks/b.png")  # an unrelated mask file where in/masks/b.png's output would go
    before = snapshot(tmp_path / "work/masks")
    code = infer(tmp_path, w, "--mask-dir", str(tmp_path / "work/masks"), "--overwrite",
                 out=tmp_path / "work", opt=opt)
    assert code == 1
    [line] = failures(capsys.readouterr().err)
    assert "work/masks/b.png" in line and "mask" in line
    assert snapshot(tmp_path / "work/masks") == before
    assert (tmp_path / "work/a.png").is_file()


# --------------------------------------------------------------------------- odd files


def test_odd_files_are_one_line_each_and_the_run_goes_on(tmp_path, weights, capfd):
    inp = tmp_path / "in"
    image(inp / "a_good.png")
    os.mkfifo(inp / "b_fifo.png")
    os.symlink("/dev/zero", inp / "c_device.png")
    os.symlink(tmp_path / "nowhere.png", inp / "d_broken.png")
    (inp / "e_folder.png").mkdir()  # a folder named like an image is a folder: walked, not read
    full = image(tmp_path / "full.png").read_bytes()
    (inp / "f_truncated.png").write_bytes(full[: len(full) - 40])
    (inp / "g_empty.jpg").write_bytes(b"")
    (inp / "h_bad\nname.png").write_bytes(b"not an image at all")
    (inp / "i_bad_deflate.png").write_bytes(png_with_bad_deflate())
    image(inp / "z_good.png", seed=3)
    assert infer(tmp_path, weights) == 1
    captured = capfd.readouterr()  # file-descriptor level: a libpng line would show here
    lines = failures(captured.err)
    assert len(lines) == 7, lines
    for line, words in zip(lines, [("b_fifo.png", "FIFO"), ("c_device.png", "device"), ("d_broken.png", "broken link"),
                                   ("f_truncated.png", "truncated"), ("g_empty.jpg", "empty"),
                                   ("h_bad\\nname.png", "not a decodable"),
                                   ("i_bad_deflate.png", "corrupt: IDAT")]):
        assert all(word in line for word in words), (words, line)
    assert not any(line.startswith("libpng") for line in captured.err.splitlines())
    assert "restored 2, skipped 0 (output exists), failed 7" in captured.out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_good.png", "z_good.png"]


def png_with_bad_deflate() -> bytes:
    """Whole chunks with right checksums around pixel data that is not a deflate stream: only
    libpng itself can tell, and it says so on file descriptor 2."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"\x78\x9c" + b"\xff" * 40)
            + chunk(b"IEND", b""))


def test_an_unreadable_file_is_one_line_when_reading_raises(tmp_path, weights, capsys, monkeypatch):
    """Permission denied (injected: tests run as root, who reads files whatever their mode)."""
    image(tmp_path / "in/a.png")
    image(tmp_path / "in/b.png", seed=1)
    real = Path.read_bytes

    def denied(self):
        if self.name == "b.png":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    assert infer(tmp_path, weights) == 1
    [line] = failures(capsys.readouterr().err)
    assert "b.png" in line and "Permission denied" in line


def test_a_target_that_is_a_folder_fails_that_file_only(tmp_path, weights, capsys):
    image(tmp_path / "in/a.png")
    image(tmp_path / "in/b.png", seed=1)
    (tmp_path / "out/a.png").mkdir(parents=True)
    assert infer(tmp_path, weights, "--overwrite") == 1
    [line] = failures(capsys.readouterr().err)
    assert "out/a.png" in line and "folder" in line
    assert (tmp_path / "out/b.png").is_file() and (tmp_path / "out/a.png").is_dir()


def test_a_full_disk_stops_the_run_with_one_line(tmp_path, weights, capsys, monkeypatch):
    """Fault injection: every image write hits ENOSPC; the run stops at the first rather than
    repeating it for every file, and leaves no partial or temporary file."""
    import errno

    import restore.data.image_io as image_io

    for i in range(3):
        image(tmp_path / f"in/{i}.png", seed=i)
    real = image_io.atomic_write

    def disk_full(handle):
        handle.write(b"half an ima")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(image_io, "atomic_write", lambda path, data, **kw: real(path, disk_full, **kw))
    assert infer(tmp_path, weights) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("restore: error: ") and "disk full" in err[0], err
    assert "0.png" in err[0]
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


# --------------------------------------------------------------------------- reruns and progress


def test_rerun_removes_stale_image_temporaries_only(tmp_path, weights, capsys):
    image(tmp_path / "in/a.png")
    image(tmp_path / "in/sub/b.png", seed=1)
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / ".a.png.k2j4_x9q.tmp").write_bytes(b"half an image")
    (out / "sub/.b.png.abcdefgh.tmp").write_bytes(b"half")
    (out / ".notes.txt.abcdefgh.tmp").write_bytes(b"not ours")  # not an image temporary
    (out / "keep.tmp").write_bytes(b"not ours")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere/.c.png.abcdefgh.tmp").write_bytes(b"outside the output tree")
    os.symlink(tmp_path / "elsewhere", out / "linked")
    assert infer(tmp_path, weights) == 0
    left = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert left == [".notes.txt.abcdefgh.tmp", "a.png", "keep.tmp", "sub/b.png"]
    assert (tmp_path / "elsewhere/.c.png.abcdefgh.tmp").exists()


def test_a_second_run_into_the_same_output_folder_is_refused(tmp_path, weights, capsys):
    from restore.engine.batch_plan import output_lock

    image(tmp_path / "in/a.png")
    (tmp_path / "out").mkdir()
    (tmp_path / "out/.a.png.abcdefgh.tmp").write_bytes(b"the other run's file being written")
    with output_lock(tmp_path / "out"):  # another restore infer is writing there
        assert infer(tmp_path, weights) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is in use by another restore infer" in err[0], err
    assert (tmp_path / "out/.a.png.abcdefgh.tmp").exists()
    assert not (tmp_path / "out/a.png").exists()


def test_without_a_terminal_progress_is_plain_lines_with_rate_and_eta(tmp_path, weights, capsys, monkeypatch):
    import restore.utils.progress as progress

    monkeypatch.setattr(progress, "MIN_GAP_S", 0.0)  # a line for every tenth of the set, however fast
    for i in range(5):
        image(tmp_path / f"in/{i}.png", seed=i)
    assert infer(tmp_path, weights) == 0
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    counts = [line.split(":")[1].split("(")[0].strip() for line in lines]
    assert counts == ["1/5 images", "2/5 images", "3/5 images", "4/5 images"], lines  # the summary says the rest
    assert all("img/s, ETA " in line for line in lines)
    assert "restored 5, skipped 0 (output exists), failed 0 in " in captured.out
    assert "images/s, " in captured.out and " MP/s)" in captured.out
    assert infer(tmp_path, weights, "--overwrite", "--no-progress") == 0
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- non-finite outputs


def overflowing(weights: Path, out: Path) -> Path:
    """Finite weights (so they load) whose activations overflow to inf/NaN in the first layers."""
    state = torch.load(weights)
    torch.save({k: v * 1e30 if v.is_floating_point() else v for k, v in state.items()}, out)
    assert all(torch.isfinite(v).all() for v in torch.load(out).values())
    return out


def test_non_finite_outputs_fail_every_file_and_write_nothing(tmp_path, weights, capsys):
    overflowing(weights, tmp_path / "nan.pth")
    image(tmp_path / "in/a.png")
    image(tmp_path / "in/b.png", seed=1)
    assert infer(tmp_path, tmp_path / "nan.pth") == 1
    captured = capsys.readouterr()
    lines = failures(captured.err)
    assert len(lines) == 2 and all("non-finite values (NaN or inf)" in line for line in lines), lines
    assert "restored 0, skipped 0 (output exists), failed 2" in captured.out
    assert not any(p.is_file() for p in (tmp_path / "out").rglob("*"))


def test_non_finite_outputs_in_restore_test_are_one_line(tmp_path, weights, capsys):
    overflowing(weights, tmp_path / "nan.pth")
    for folder in ("tin", "tgt"):
        image(tmp_path / folder / "a.png")
    (tmp_path / "t.yml").write_text(
        "name: nan\ndevice: cpu\nnetwork: {type: n2n_unet, n_feature: 8}\n"
        f"path: {{results_root: {tmp_path}/results}}\n"
        f"datasets:\n  test:\n    t: {{type: paired_folder, input_dir: {tmp_path}/tin, target_dir: {tmp_path}/tgt, "
        "num_workers: 0}\n")
    assert main(["test", "-opt", str(tmp_path / "t.yml"), "--weights", str(tmp_path / "nan.pth")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "image 'a'" in err[0] and "non-finite" in err[0], err
