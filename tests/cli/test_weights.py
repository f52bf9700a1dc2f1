"""`restore weights`: the released-weights table and `restore weights check FILE`.

The official-layout files are built from the official key listings (tests/fixtures/keys: names,
shapes, dtypes, as the official code saves them), in the official wrappers; none is built with
restore's own networks, so a wrong row, a wrong option file or a loader that unwraps differently
fails here. Large tensors are stride-0 views of one random value (full shape, tiny file).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
import torch
from fixture_files import KEYS_DIR
from key_listings import key_listing

from restore.cli.main import main
from restore.engine.released_weights import PROJECT_ROOT, method_folders, released_weights

SMALL = 1 << 16  # tensors up to this size are random; larger ones are views of one random value


def listing_shapes(name: str) -> tuple[dict[str, list[int]], dict[str, str]]:
    """(key -> shape, buffer key -> dtype) of an official listing."""
    data = key_listing(name)
    if "meta" not in data:
        return data, {}
    return data["state_dict"], {k: v["dtype"] for k, v in data.get("buffers", {}).items()}


def listing_params(name: str) -> int:
    """Parameter count from the listing: every listed tensor except the buffers."""
    shapes, buffers = listing_shapes(name)
    return sum(math.prod(s) for k, s in shapes.items() if k not in buffers)


def official_state(name: str, drop: str | None = None, reshape: tuple[str, list[int]] | None = None) -> dict[str, torch.Tensor]:
    shapes, buffers = listing_shapes(name)
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in shapes.items():
        if reshape is not None and key == reshape[0]:
            shape = reshape[1]
        if key in buffers:
            state[key] = torch.randint(0, 64, shape, generator=gen, dtype=getattr(torch, buffers[key]))
        elif math.prod(shape) <= SMALL:
            state[key] = torch.randn(shape, generator=gen)
        else:
            state[key] = torch.randn(1, generator=gen).expand(shape)
    if drop is not None:
        del state[drop]
    return state


def save_official(path: Path, state: dict[str, torch.Tensor], wrapper: str) -> Path:
    """``state`` saved as the official code saves it."""
    if wrapper == "bare":  # N2N, LAB-Net, WDNet training code: torch.save(net.state_dict())
        torch.save(state, path)
    elif wrapper == "legacy":  # IPT release: bare state_dict, pre-zip torch format
        torch.save(state, path, _use_new_zipfile_serialization=False)
    elif wrapper == "safetensors":  # a conversion: the header alone is read
        from safetensors.torch import save_file

        save_file(state, str(path))
    elif wrapper == "dataparallel":  # WDNet predict scripts: DataParallel keys
        torch.save({"module." + k: v for k, v in state.items()}, path)
    elif wrapper == "uformer":  # train.py: {'epoch', 'state_dict' of the DataParallel model, 'optimizer'}
        opt = {"state": {}, "param_groups": [{"lr": 2e-4, "params": list(range(len(state)))}]}
        torch.save({"epoch": 250, "state_dict": {"module." + k: v for k, v in state.items()}, "optimizer": opt}, path)
    else:
        raise ValueError(wrapper)
    return path


def check(capsys, path: Path) -> tuple[int, str, str]:
    code = main(["weights", "check", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def matched_labels(out: str) -> list[str]:
    """The row labels under "matches ...", in order (their marker removed)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("matches "))
    return [line.strip().split("   <-")[0] for line in lines[start + 1:] if line.startswith("  ") and not line.startswith("     ")]


# ------------------------------------------------------------------------------------------ table


def test_parameter_counts_are_the_official_listings() -> None:
    rows = released_weights()
    assert rows
    for row in rows:
        assert (KEYS_DIR / row.listing).is_file(), row.label
        assert row.params == listing_params(row.listing), row.label
        meta = key_listing(row.listing)
        if "num_params" in meta:  # the count the listing states agrees with its own shapes
            assert meta["num_params"] == row.params, row.label


def test_every_infer_option_file_is_a_row_and_points_to_the_table() -> None:
    rows = released_weights()
    infer_files = {p.relative_to(PROJECT_ROOT).as_posix() for p in PROJECT_ROOT.glob("options/*/infer/*.yml")}
    assert len(infer_files) >= 16  # the glob found the option files
    assert infer_files == {r.infer for r in rows if r.infer}
    for rel in infer_files:
        assert "restore weights" in (PROJECT_ROOT / rel).read_text(), rel
    for row in rows:
        for rel in (row.infer, row.test, row.layout_options):
            assert not rel or (PROJECT_ROOT / rel).is_file(), (row.label, rel)
        assert row.url.startswith(("https://", "http://")), row.label


def test_listing_names_every_method_and_every_file(capsys) -> None:
    assert main(["weights"]) == 0
    out = capsys.readouterr().out
    for folder in method_folders():
        assert any(line.startswith(folder.name) for line in out.splitlines()), folder.name
    for row in released_weights():
        assert row.task in out and row.url in out and f"{row.params:,}" in out
        assert not row.file or row.file in out
    assert "tape: no official code or checkpoint" in out


def test_csv_and_json_hold_every_row(capsys) -> None:
    rows = released_weights()
    assert main(["weights", "--format", "csv"]) == 0
    parsed = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["method"], r["task"], r["file"], int(r["params"])) for r in parsed] == [(r.method, r.task, r.file, r.params) for r in rows]
    assert main(["weights", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["infer"] for d in data["weights"]] == [r.infer for r in rows]
    assert set(data["without_weights"]) == {"tape"}


# ------------------------------------------------------------------------------------------ check


@pytest.mark.parametrize(
    "listing, name, wrapper, expected",
    [
        ("n2n_unet.json", "model_gauss25_b4e100r02.pth", "bare", [
            "neighbor2neighbor: denoise, Gaussian sigma 25 (model_gauss25_b4e100r02.pth)",
            "neighbor2neighbor: denoise, Gaussian sigma in [5, 50] (model_gauss5-50_b4e100r02.pth)",
            "neighbor2neighbor: denoise, Poisson lambda 30 (model_poisson30_b4e100r02.pth)",
            "neighbor2neighbor: denoise, Poisson lambda in [5, 50] (model_poisson5-50_b4e100r02.pth)",
        ]),
        ("labnet.json", "labnet_istd.safetensors", "safetensors", [
            "labnet: shadow removal, ISTD (best_net_G.pth)",
            "labnet: shadow removal, SRD (best_net_G.pth)",
        ]),
        ("ipt_x2.json", "IPT_sr2.pt", "legacy", ["ipt: super-resolution x2 (IPT_sr2.pt)"]),
        ("ipt_x3.json", "IPT_sr3.pt", "legacy", ["ipt: super-resolution x3 (IPT_sr3.pt)"]),
        ("ipt_x4.json", "IPT_sr4.pt", "legacy", ["ipt: super-resolution x4 (IPT_sr4.pt)"]),
        ("ipt_x1.json", "IPT_derain.pt", "legacy", [  # one network for three files: the name picks the first
            "ipt: derain, Rain100L (IPT_derain.pt)",
            "ipt: denoise, Gaussian sigma 30 (IPT_denoise30.pt)",
            "ipt: denoise, Gaussian sigma 50 (IPT_denoise50.pt)",
        ]),
        ("ipt.json", "IPT_pretrain.pt", "legacy", ["ipt: six-task pre-training (IPT_pretrain.pt)"]),
        ("uformer_B.json", "Uformer_B_GoPro.pth", "uformer", [
            "uformer: deblur, motion (GoPro) (Uformer_B_GoPro.pth)",
            "uformer: denoise, real noise (SIDD) (Uformer_B_SIDD.pth)",
        ]),
        ("labnet.json", "best_net_G.pth", "bare", [
            "labnet: shadow removal, ISTD (best_net_G.pth)",
            "labnet: shadow removal, SRD (best_net_G.pth)",
        ]),
        ("wdnet.json", "lastest.pth", "dataparallel", [
            "wdnet: demoire, TIP2018 (no released file)",
            "wdnet: demoire, full resolution (LCDMoire) (no released file)",
        ]),
    ],
)
def test_official_layout_files_match_their_rows(tmp_path, capsys, listing, name, wrapper, expected) -> None:
    path = save_official(tmp_path / name, official_state(listing), wrapper)
    code, out, err = check(capsys, path)
    assert code == 0 and err == ""
    shapes, _ = listing_shapes(listing)
    assert out.startswith(f"{path}: {len(shapes)} tensors, {listing_params(listing):,} parameters")
    assert matched_labels(out) == expected
    assert ("<- same file name" in out) == (name not in ("lastest.pth", "labnet_istd.safetensors"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing written


def test_a_file_with_one_key_missing_matches_none_and_says_which(tmp_path, capsys) -> None:
    path = save_official(tmp_path / "model_gauss25_b4e100r02.pth", official_state("n2n_unet.json", drop="dec_conv1a.bias"), "bare")
    code, out, err = check(capsys, path)
    assert code == 1 and err == ""
    assert "matches no row of `restore weights`" in out
    assert ("closest: neighbor2neighbor: denoise, Gaussian sigma 25 (model_gauss25_b4e100r02.pth), the network of "
            "options/neighbor2neighbor/infer/n2n_gauss25.yml: 49 of 50 keys agree") in out
    assert "missing from the file (1) dec_conv1a.bias" in out
    assert "not in the network (0)" in out and "no shape mismatch" in out


def test_a_file_with_one_shape_changed_matches_none_and_names_the_shape(tmp_path, capsys) -> None:
    key = "decoderlayer_0.blocks.0.modulator.weight"
    listed = tuple(listing_shapes("uformer_B.json")[0][key])
    state = official_state("uformer_B.json", reshape=(key, [listed[0], listed[1] + 1]))
    path = save_official(tmp_path / "Uformer_B_SIDD.pth", state, "uformer")
    code, out, err = check(capsys, path)
    assert code == 1 and err == ""
    assert "matches no row" in out
    assert "closest: uformer: denoise, real noise (SIDD) (Uformer_B_SIDD.pth)" in out  # its own name breaks the tie
    assert "missing from the file (0)" in out and "not in the network (0)" in out
    assert f"first shape mismatch: {key} is {(listed[0], listed[1] + 1)} in the file, {listed} expected" in out


def test_a_file_of_no_table_network_says_so(tmp_path, capsys) -> None:
    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(8, 3, 3, 3)}, path)
    code, out, _ = check(capsys, path)
    assert code == 1
    assert "no row's network shares a key and shape with it" in out


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"weights: see the README\n", "is not a torch weights file"),
        (b"", "is empty (0 bytes)"),
        (None, "does not contain a state_dict of tensors"),
    ],
)
def test_an_unreadable_file_is_one_line_and_exit_2(tmp_path, capsys, content, reason) -> None:
    path = tmp_path / "notes.pth"
    if content is None:
        torch.save({"epoch": 3, "lr": 0.1}, path)
    else:
        path.write_bytes(content)
    code, out, err = check(capsys, path)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("restore: error: ")
    assert str(path) in err and reason in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.pth"]


def test_a_missing_file_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    code, out, err = check(capsys, tmp_path / "nope.pth")
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and "does not exist" in err
