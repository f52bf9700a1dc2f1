"""`restore export`: an ONNX file or OpenVINO IR plus a JSON sidecar, checked against torch."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from restore.archs.n2n_unet import N2NUNet
from restore.cli.main import main

OPTIONS = "name: exp\nnetwork: {type: n2n_unet, n_feature: 8}\n"


@pytest.fixture()
def files(tmp_path) -> tuple[Path, Path, N2NUNet]:
    torch.manual_seed(0)
    net = N2NUNet(n_feature=8).eval()
    torch.save(net.state_dict(), tmp_path / "w.pth")
    (tmp_path / "o.yml").write_text(OPTIONS)
    return tmp_path / "o.yml", tmp_path / "w.pth", net


def export(opt: Path, weights: Path, fmt: str, out: Path) -> int:
    return main(["export", "-opt", str(opt), "--weights", str(weights), "--format", fmt, "--out", str(out)])


def one_error_line(capsys, *fragments: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("restore: error: "), captured.err
    assert all(f in lines[0] for f in fragments), lines[0]
    return lines[0]


def test_onnx_file_sidecar_and_verification_line(files, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    opt, weights, net = files
    out = tmp_path / "deploy" / "unet.onnx"
    assert export(opt, weights, "onnx", out) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"restore export: wrote {out}, {out}.json; verified with onnxruntime")
    assert "against torch on a random 1x3x64x64 input: max abs difference" in lines[0]
    sidecar = json.loads((tmp_path / "deploy" / "unet.onnx.json").read_text())
    assert (sidecar["format"], sidecar["file"], sidecar["architecture"]) == ("onnx", "unet.onnx", "N2NUNet")
    assert (sidecar["size_multiple"], sidecar["pad_mode"], sidecar["scale"], sidecar["any_size_rule"]) == (32, "reflect", 1, None)
    assert sidecar["inputs"] == [{"name": "input0", "key": "input", "shape": ["batch", 3, "height", "width"]}]
    assert sidecar["output"] == {"name": "output", "shape": ["batch", 3, "out_height", "out_width"]}
    assert sidecar["network"] == {"type": "n2n_unet", "n_feature": 8} and sidecar["weights"] == str(weights)
    assert "[0, 1]" in sidecar["normalisation"] and sidecar["opset"] == 18
    assert set(sidecar["versions"]) == {"restore", "torch", "onnxruntime"}
    assert 0 <= sidecar["verification"]["max_abs_diff"] <= 1e-4
    # run it as docs/export.md says, without restore: any multiple of 32, any batch
    x = torch.rand(2, 3, 96, 64)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input0": x.numpy()})
    with torch.no_grad():
        assert np.abs(got - net(x).numpy()).max() <= 1e-4


def test_openvino_ir_with_float32_weights(files, tmp_path, capsys):
    ov = pytest.importorskip("openvino")
    opt, weights, net = files
    out = tmp_path / "unet.xml"
    assert export(opt, weights, "openvino", out) == 0
    assert "verified with openvino" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.glob("unet.*")) == ["unet.bin", "unet.xml", "unet.xml.json"]
    assert json.loads((tmp_path / "unet.xml.json").read_text())["format"] == "openvino"
    compiled = ov.Core().compile_model(str(out), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    x = torch.rand(1, 3, 64, 128)
    with torch.no_grad():
        assert np.abs(compiled([x.numpy()])[0] - net(x).numpy()).max() <= 1e-4
    constants = [op for op in ov.Core().read_model(str(out)).get_ops() if op.get_type_name() == "Constant"]
    assert constants and ov.Type.f16 not in {op.get_output_element_type(0) for op in constants}  # not compressed


@pytest.mark.parametrize("fmt, out, fragment", [("tflite", "m.onnx", "--format must be one of onnx, openvino"),
                                               ("onnx", "m.xml", "must end in .onnx"),
                                               ("openvino", "m.onnx", "must end in .xml")])
def test_bad_format_or_suffix_is_one_line_and_writes_nothing(files, tmp_path, capsys, fmt, out, fragment):
    opt, weights, _ = files
    assert export(opt, weights, fmt, tmp_path / "out" / out) == 2
    one_error_line(capsys, fragment)
    assert not (tmp_path / "out").exists()


def test_missing_weights_is_one_line_and_writes_nothing(files, tmp_path, capsys):
    opt, _, _ = files
    assert export(opt, tmp_path / "missing.pth", "onnx", tmp_path / "out" / "m.onnx") == 2
    one_error_line(capsys, "missing.pth")
    assert not (tmp_path / "out").exists()


def test_an_output_that_is_an_input_is_refused(files, tmp_path, capsys):
    opt, weights, _ = files
    before = weights.read_bytes()
    (tmp_path / "link.onnx").symlink_to(weights)
    assert export(opt, weights, "onnx", tmp_path / "link.onnx") == 2
    one_error_line(capsys, "refusing to write", "link.onnx", "input")
    assert weights.read_bytes() == before


def test_a_missing_runtime_names_the_extra(files, tmp_path, capsys, monkeypatch):
    opt, weights, _ = files
    monkeypatch.setitem(sys.modules, "openvino", None)
    assert export(opt, weights, "openvino", tmp_path / "m.xml") == 2
    one_error_line(capsys, "restore export --format openvino", "'openvino'", 'pip install -e ".[fast]"')
    assert not list(tmp_path.glob("m.*"))
