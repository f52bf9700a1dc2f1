"""Backends: choosing one, missing extras, precision pinning, the graph cache, the stand-in hook."""

from __future__ import annotations

import os
import sys

import pytest
import torch
from torch import Tensor, nn

from restore.engine import backends
from restore.engine.backends import cache as cache_module
from restore.engine.backends import runner as runner_module
from restore.engine.backends.cache import GraphCache, cache_key
from restore.engine.backends.runner import ExportedCore, standing_in
from restore.engine.inference import Restorer
from restore.errors import ConfigError

CPU = torch.device("cpu")


class Net(nn.Module):
    """Two convolutions, size multiple 8, plus a keyword-only path the graph cannot take."""

    size_multiple = 8

    def __init__(self, residual: bool = False) -> None:
        super().__init__()
        self.residual = residual
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))

    def forward(self, x: Tensor, *, gain: float = 1.0) -> Tensor:
        out = self.body(x) * gain
        return out + x if self.residual else out


@pytest.fixture(autouse=True)
def _graph_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RESTORE_CACHE", str(tmp_path / "cache"))


def _net(seed: int = 0, **kwargs) -> Net:
    torch.manual_seed(seed)
    return Net(**kwargs).eval()


def _image(h: int = 20, w: int = 28) -> Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(3))


# --- choosing a backend ----------------------------------------------------------------------


@pytest.mark.parametrize("package", ["openvino", "onnxruntime"])
def test_a_missing_extra_is_one_line_naming_it(package: str, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # `import package` now raises ImportError
    with pytest.raises(ConfigError) as info:
        Restorer(_net(), backend=package)
    message = str(info.value)
    assert "\n" not in message and f"infer.backend {package}" in message and 'pip install -e ".[fast]"' in message


def test_auto_picks_openvino_then_onnxruntime_then_torch(monkeypatch) -> None:
    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    assert backends.resolve_backend("auto", "fp32", CPU) == "openvino"
    monkeypatch.setitem(sys.modules, "openvino", None)
    assert backends.resolve_backend("auto", "fp32", CPU) == "onnxruntime"
    assert backends.resolve_backend("auto", "bf16", CPU) == "torch"  # onnxruntime runs fp32 only
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert backends.resolve_backend("auto", "fp32", CPU) == "torch"


def test_auto_keeps_torch_off_the_cpu() -> None:
    assert backends.resolve_backend("auto", "fp32", torch.device("cuda")) == "torch"


def test_onnxruntime_refuses_reduced_precision() -> None:
    pytest.importorskip("onnxruntime")
    with pytest.raises(ConfigError, match="float32 only"):
        Restorer(_net(), backend="onnxruntime", precision="bf16")


def test_onnxruntime_threads_do_not_spin_after_a_run() -> None:
    # a spinning pool keeps the cores busy after each run and slows what runs next (the writer
    # threads, or the reference a benchmark times next)
    pytest.importorskip("onnxruntime")
    from restore.engine.backends.onnx_export import export_onnx
    from restore.engine.backends.onnxruntime_backend import OnnxRuntimeSession

    session = OnnxRuntimeSession(export_onnx(_net(), "forward", [_image()]), "fp32", CPU)
    options = session.session.get_session_options()
    assert [options.get_session_config_entry(f"session.{pool}_op.allow_spinning") for pool in ("intra", "inter")] == ["0", "0"]
    assert session([_image().numpy()]).shape == (1, 3, *_image().shape[-2:])


def test_openvino_is_pinned_to_f32_unless_asked(monkeypatch) -> None:
    ov = pytest.importorskip("openvino")
    from openvino import properties

    from restore.engine.backends.onnx_export import export_onnx
    from restore.engine.backends.openvino_backend import OpenVinoSession

    configs = []
    compile_model = ov.Core.compile_model

    def spy(self, model, device, config=None):
        configs.append(dict(config or {}))
        return compile_model(self, model, device, config)

    monkeypatch.setattr(ov.Core, "compile_model", spy)
    graph = export_onnx(_net(), "forward", [_image()])
    session = OpenVinoSession(graph, "fp32", CPU)
    session([_image().numpy()])
    assert configs and all(c[properties.hint.inference_precision] == ov.Type.f32 for c in configs)
    (compiled,) = session.static.values()
    assert compiled.get_property(properties.hint.inference_precision) == ov.Type.f32


def test_openvino_compiles_the_first_shapes_alone_and_later_ones_once_for_all(monkeypatch) -> None:
    ov = pytest.importorskip("openvino")

    from restore.engine.backends.onnx_export import export_onnx
    from restore.engine.backends.openvino_backend import STATIC_SHAPES, OpenVinoSession

    compiled_for = []
    compile_model = ov.Core.compile_model

    def spy(self, model, device, config=None):
        dims = model.inputs[0].get_partial_shape()
        compiled_for.append(tuple(d.get_length() for d in dims) if dims.is_static else "any")
        return compile_model(self, model, device, config)

    monkeypatch.setattr(ov.Core, "compile_model", spy)
    net = _net()
    session = OpenVinoSession(export_onnx(net, "forward", [_image()]), "fp32", CPU)
    sizes = [(16 + 8 * i, 24) for i in range(STATIC_SHAPES + 2)]
    for h, w in sizes + sizes[::-1]:  # every shape twice
        x = _image(h, w)
        with torch.no_grad():
            expected = net(x)
        assert torch.from_numpy(session([x.numpy()])).sub(expected).abs().max() < 1e-5
    assert compiled_for == [(1, 3, h, w) for h, w in sizes[:STATIC_SHAPES]] + ["any"]


def test_openvino_refuses_a_precision_the_cpu_cannot_run(monkeypatch) -> None:
    ov = pytest.importorskip("openvino")
    monkeypatch.setattr(ov.Core, "get_property", lambda self, device, name: ["FP32", "INT8"])
    with pytest.raises(ConfigError, match="no bf16 support"):
        Restorer(_net(), backend="openvino", precision="bf16")
    assert backends.resolve_backend("auto", "bf16", CPU) != "openvino"


# --- the graph cache -------------------------------------------------------------------------


def test_a_second_restorer_starts_from_the_cached_graph(tmp_path, monkeypatch) -> None:
    pytest.importorskip("onnxruntime")
    net, x = _net(), _image()
    first = Restorer(net, backend="onnxruntime")
    expected = first(x)
    stored = sorted((tmp_path / "cache" / "onnx").glob("*.onnx"))
    assert len(stored) == 1 and first.core.graph_paths == [str(stored[0])]

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(runner_module, "export_onnx", no_export)
    torch.testing.assert_close(Restorer(net, backend="onnxruntime")(_image(36, 12)), Restorer(net)(_image(36, 12)),
                               rtol=0, atol=1e-5)
    torch.testing.assert_close(Restorer(net, backend="onnxruntime")(x), expected, rtol=0, atol=0)
    with pytest.raises(AssertionError, match="exported again"):
        Restorer(_net(seed=1), backend="onnxruntime")(x)  # other weights: another graph


def test_a_damaged_cache_file_is_exported_again(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    net, x = _net(), _image()
    Restorer(net, backend="onnxruntime")(x)
    (stored,) = (tmp_path / "cache" / "onnx").glob("*.onnx")
    stored.write_bytes(b"not an onnx file")
    torch.testing.assert_close(Restorer(net, backend="onnxruntime")(x), Restorer(net)(x), rtol=0, atol=1e-5)
    assert stored.read_bytes().startswith(b"\x08")  # a protobuf again (field 1: ir_version)


def test_cache_key_follows_weights_structure_and_options() -> None:
    options = {"opset": 18, "inputs": [[3, "float32"]]}
    key = cache_key(_net(), options)
    assert cache_key(_net(), options) == key
    assert cache_key(_net(seed=1), options) != key
    assert cache_key(_net(residual=True), options) != key  # same weights, another graph
    assert cache_key(_net(), {**options, "opset": 17}) != key


def test_cache_keeps_the_most_recently_used_graphs(tmp_path) -> None:
    cache = GraphCache(tmp_path)
    for i in range(4):
        cache.store(f"k{i}", b"graph", {"i": i})
        os.utime(cache.path(f"k{i}"), (1000 + i, 1000 + i))
    cache.load("k0")  # used now: the newest
    cache.prune(keep=2)
    assert sorted(p.name for p in (tmp_path / "onnx").iterdir()) == ["k0.json", "k0.onnx", "k3.json", "k3.onnx"]


def test_cache_root_follows_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RESTORE_CACHE", str(tmp_path / "elsewhere"))
    assert cache_module.cache_root() == tmp_path / "elsewhere"
    monkeypatch.delenv("RESTORE_CACHE")
    assert cache_module.cache_root().parts[-2:] == (".cache", "restore")


# --- the stand-in hook -----------------------------------------------------------------------


def test_keyword_calls_run_the_original_method() -> None:
    pytest.importorskip("onnxruntime")
    net, x = _net(), _image(16, 16)
    core = ExportedCore(net, "onnxruntime", "fp32", CPU)
    with standing_in(core):
        torch.testing.assert_close(net(x, gain=2.0), 2 * Net.forward(net, x))
    assert not core.sessions  # nothing was exported for it


def test_the_instance_is_left_as_it_was_even_after_an_error() -> None:
    pytest.importorskip("onnxruntime")
    net = _net()
    core = ExportedCore(net, "onnxruntime", "fp32", CPU)
    with pytest.raises(ConfigError, match="cannot export"), standing_in(core):
        assert net.__dict__["forward"] is core
        net(torch.rand(1, 5, 8, 8))  # wrong channels: the export fails inside
    assert "forward" not in net.__dict__ and "forward" not in dict(net.named_modules())


@pytest.mark.parametrize("offset, accepted", [(5e-4, True), (5e-3, False)])
def test_the_export_check_tolerates_float_reordering_but_not_a_wrong_graph(offset: float, accepted: bool,
                                                                          monkeypatch) -> None:
    """A deep network's graph differs from torch by float reordering (full-size IPT: 2.6e-4 on the
    check's noise input); that must run, while an error of 1.3 8-bit levels is refused."""
    pytest.importorskip("onnxruntime")
    real = runner_module.open_session

    def shifted(backend, graph, precision, device):
        session = real(backend, graph, precision, device)
        return lambda arrays: session(arrays) + offset  # every output of the graph off by `offset`

    monkeypatch.setattr(runner_module, "open_session", shifted)
    net, x = _net(), _image()
    restorer = Restorer(net, backend="onnxruntime")
    if accepted:
        diff = (restorer(x) - Restorer(net)(x)).abs().max().item()  # against the torch backend
        assert offset * 0.99 < diff < offset * 1.01
    else:
        with pytest.raises(ConfigError, match="does not reproduce torch on a random input"):
            restorer(x)


class Inverse(nn.Module):
    """An operator ONNX has no form for: the exporter fails."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.linalg.inv(x[..., :4, :4])


class ThroughNumpy(nn.Module):
    """A round trip through numpy: traced as a constant, without an error from the exporter."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.from_numpy(x.numpy().copy()) * 2


@pytest.mark.parametrize("module, fragment", [(Inverse(), "cannot export Inverse.forward to ONNX: "),
                                              (ThroughNumpy(), "does not reproduce torch on a random input")])
def test_an_unexportable_core_is_one_line_and_not_cached(module: nn.Module, fragment: str, tmp_path, capfd) -> None:
    pytest.importorskip("onnxruntime")
    with pytest.raises(ConfigError) as info:
        Restorer(module, backend="onnxruntime")(_image())
    assert "\n" not in str(info.value) and fragment in str(info.value) and "backend: torch" in str(info.value)
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # not the traced graph the exporter logs on a failure
    assert not list(tmp_path.glob("cache/onnx/*.onnx"))
