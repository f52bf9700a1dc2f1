"""`restore compare`: runs side by side, protocols listed, never two protocols in one column."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from restore.archs.n2n_unet import N2NUNet
from restore.cli.main import main

OPTIONS = """\
name: {name}
network: {{type: n2n_unet, n_feature: 8}}
path: {{results_root: {root}/results, pretrained: {root}/{name}.pth}}
datasets:
  test:
    kodak: {{type: paired_folder, input_dir: {root}/in, target_dir: {root}/gt, num_workers: 0}}
    rain: {{type: paired_folder, input_dir: {root}/in, target_dir: {root}/gt, protocol: derain_matlab, num_workers: 0}}
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Two finished runs, 'a' and 'b' (different weights), on the same two sets."""
    root = tmp_path_factory.mktemp("cmp")
    rng = np.random.default_rng(3)
    for i in range(2):
        clean = rng.integers(40, 216, (32, 32, 3), dtype=np.uint8)
        noisy = np.clip(clean.astype(int) + rng.integers(-20, 21, clean.shape), 0, 255).astype(np.uint8)
        for folder, img in (("in", noisy), ("gt", clean)):
            (root / folder).mkdir(exist_ok=True)
            assert cv2.imwrite(str(root / folder / f"{i}.png"), img)
    for shift, name in ((0.0, "a"), (0.5, "b")):
        torch.manual_seed(0)
        state = N2NUNet(n_feature=8).state_dict()
        state["nin_c.bias"] += shift  # b's outputs are brighter: its figures differ from a's
        torch.save(state, root / f"{name}.pth")
        opt = root / f"{name}.yml"
        opt.write_text(OPTIONS.format(root=root, name=name))
        assert main(["test", "-opt", str(opt), "--progress", "off"]) == 0
    return root


def one_line(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("restore: error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def figures(root: Path, run: str, set_name: str) -> dict:
    return json.loads((root / "results" / run / set_name / "summary.json").read_text())


def test_two_runs_side_by_side(runs, capsys, monkeypatch):
    capsys.readouterr()
    monkeypatch.chdir(runs)  # run names are looked up under ./results
    assert main(["compare", "a", "b"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("a: results/a (weights ") and "kodak: basicsr, rain: derain_matlab" in out[0]
    assert out[1].startswith("b: results/b")
    table = [ln for ln in out if ln.startswith("|")]
    assert table[0] == ("| run | kodak PSNR (dB) [basicsr] | kodak SSIM [basicsr] | rain PSNR (dB) [derain_matlab] "
                        "| rain SSIM [derain_matlab] |")
    a_k, a_r, b_k = figures(runs, "a", "kodak"), figures(runs, "a", "rain"), figures(runs, "b", "kodak")
    assert table[2].startswith(f"| input | {a_k['input_metrics']['psnr']:.2f} | {a_k['input_metrics']['ssim']:.4f} |")
    assert table[3] == (f"| a | {a_k['metrics']['psnr']:.2f} | {a_k['metrics']['ssim']:.4f} | "
                        f"{a_r['metrics']['psnr']:.2f} | {a_r['metrics']['ssim']:.4f} |")
    assert table[4].startswith(f"| b | {b_k['metrics']['psnr']:.2f} |")
    assert a_k["metrics"]["psnr"] != b_k["metrics"]["psnr"]  # the runs really differ


def test_formats_metrics_and_precision(runs, capsys):
    capsys.readouterr()
    assert main(["compare", str(runs / "results/a"), str(runs / "results/b"), "--format", "csv",
                 "--metrics", "psnr", "--digits", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "run,kodak PSNR (dB) [basicsr],rain PSNR (dB) [derain_matlab]"
    assert lines[2].split(",")[1] == f"{figures(runs, 'a', 'kodak')['metrics']['psnr']:.3f}"
    assert main(["compare", str(runs / "results/a"), "--format", "tex"]) == 0
    tex = capsys.readouterr().out
    assert tex.startswith("\\begin{tabular}{lrrrr}") and "kodak PSNR (dB) [basicsr]" in tex


def test_different_protocols_in_one_column_are_refused(runs, tmp_path, capsys):
    other = tmp_path / "c"
    shutil.copytree(runs / "results/b", other)
    index = json.loads((other / "results.json").read_text())
    index["sets"][0]["protocol"] = "n2n"
    (other / "results.json").write_text(json.dumps(index))
    capsys.readouterr()
    assert main(["compare", str(runs / "results/a"), str(other)]) == 2
    one_line(capsys, "set 'kodak'", "basicsr", "n2n", "different protocols")
    index["sets"][0]["protocol"], index["sets"][0]["crop_border"] = "basicsr", 4
    (other / "results.json").write_text(json.dumps(index))
    assert main(["compare", str(runs / "results/a"), str(other)]) == 2
    one_line(capsys, "crop 4")


def test_older_results_without_an_index_still_compare(runs, tmp_path, capsys):
    old = tmp_path / "old"
    shutil.copytree(runs / "results/a", old)
    (old / "results.json").unlink()
    capsys.readouterr()
    assert main(["compare", str(old), str(runs / "results/b")]) == 0
    assert "| old |" in capsys.readouterr().out


def test_what_is_not_a_run_is_one_line(runs, tmp_path, capsys):
    capsys.readouterr()
    assert main(["compare", str(tmp_path)]) == 2
    one_line(capsys, str(tmp_path), "not a `restore test` results folder")
    assert main(["compare", "nosuchrun", "--results-root", str(runs / "results")]) == 2
    one_line(capsys, "'nosuchrun'", "neither a results folder nor a run name")
    (tmp_path / "file.txt").write_text("x")
    assert main(["compare", str(tmp_path / "file.txt")]) == 2
    one_line(capsys, "file.txt", "is a file")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "results.json").write_text("{not json")
    assert main(["compare", str(broken)]) == 2
    one_line(capsys, "results.json", "not valid JSON")
    (broken / "results.json").write_text("[1, 2]")
    assert main(["compare", str(broken)]) == 2
    one_line(capsys, "results.json", "no 'sets' list")
    assert main(["compare", str(runs / "results/a"), "--metrics", "snr"]) == 2
    one_line(capsys, "--metrics", "'snr'")
