"""``restore export``: a trained network as an ONNX file or OpenVINO IR, for use without restore.

What is exported is the architecture's ``forward`` (what ``model(*inputs)`` computes on inputs that
meet its size rule), with dynamic batch, height and width. The Python parts of the engine are
not in the file; the JSON sidecar written beside it says what the caller must do instead: pad to
``size_multiple`` (``pad_mode``) and crop back, or follow the architecture's own rule
(``forward_any_size``, e.g. IPT's 48x48 patches), and how pixels are normalised. The file is
checked against torch on a random input before it is written; the check is printed in one line
and kept in the sidecar. See ``docs/export.md``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from restore import __version__
from restore.archs.contract import (
    input_channels,
    input_keys,
    pad_mode,
    scale_of,
    size_multiple,
    unwrap,
)
from restore.engine.backends.cache import tensor_digest
from restore.engine.backends.extras import import_backend
from restore.engine.backends.onnx_export import (
    EXPORTER,
    OPSET,
    OUTPUT,
    export_onnx,
    input_names,
)
from restore.engine.backends.runner import open_session
from restore.errors import ConfigError, OutputError
from restore.utils.files import atomic_write

#: --format -> (runtime package that verifies the file, file suffix)
FORMATS = {"onnx": ("onnxruntime", ".onnx"), "openvino": ("openvino", ".xml")}
#: Side of the random image the size rule is probed with (the graph serves every size).
PROBE_SIDE = 64
NORMALISATION = ("float32, NCHW, RGB (or grey) in [0, 1]; masks in [0, 1] with 1 = shadow; the output is in the "
                 "same range: clamp to [0, 1], then x255 and round for 8-bit images")


@dataclass
class Exported:
    """What :func:`export_network` wrote and the verification it ran."""

    files: list[Path]
    sidecar: dict[str, Any]

    def line(self) -> str:
        """One line: the files and the verification."""
        check = self.sidecar["verification"]
        shape = "x".join(str(n) for n in check["input_shape"])
        return (f"restore export: wrote {', '.join(str(p) for p in self.files)}; verified with {check['runtime']} "
                f"against torch on a random {shape} input: max abs difference {check['max_abs_diff']:.1e}")


def output_paths(out: str | os.PathLike[str], fmt: str) -> list[Path]:
    """The files ``--format`` writes for ``--out`` (model [, weights], sidecar); one-line error on a bad suffix."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    path, suffix = Path(out), FORMATS[fmt][1]
    if path.suffix.lower() != suffix:
        raise ConfigError(f"--out for --format {fmt} must end in {suffix}, got '{path}'")
    extra = [path.with_suffix(".bin")] if fmt == "openvino" else []
    return [path, *extra, path.with_name(path.name + ".json")]


def refuse_inputs(outputs: list[Path], inputs: list[str | os.PathLike[str] | None]) -> None:
    """A one-line :class:`OutputError` when an output would replace one of the command's inputs."""
    resolved = {Path(p).resolve(): p for p in inputs if p is not None}
    for path in outputs:
        if path.resolve() in resolved:
            raise OutputError(f"refusing to write '{path}': it is an input of this command ('{resolved[path.resolve()]}')")
        if path.is_dir():
            raise OutputError(f"cannot write '{path}': it is a folder")


def probe_inputs(model: nn.Module) -> list[Tensor]:
    """Random inputs of a shape ``forward`` accepts: the first call the engine's size procedure
    makes to ``forward`` for a ``PROBE_SIDE``-pixel image (after padding, or one of IPT's patches)."""
    from restore.engine.inference import forward_padded

    net = unwrap(model)
    channels = [input_channels(net) or 3 if key == "input" else 1 for key in input_keys(net)]
    g = torch.Generator().manual_seed(0)
    image = [torch.rand(1, c, PROBE_SIDE, PROBE_SIDE, generator=g) for c in channels]
    seen: list[tuple[Tensor, ...]] = []
    forward = type(net).forward

    def record(*args: Tensor, **kwargs: Any) -> Tensor:
        seen.append(args)
        return forward(net, *args, **kwargs)

    net.__dict__["forward"] = record
    try:
        with torch.no_grad():
            forward_padded(net, *image)
    finally:
        net.__dict__.pop("forward", None)
    if not seen:  # the rule runs a submodule only (with_mask around a network with its own rule)
        side = -(-PROBE_SIDE // size_multiple(net)) * size_multiple(net)
        return [torch.rand(1, c, side, side, generator=g) for c in channels]
    return [torch.rand(t[:1].shape, generator=g) for t in seen[0]]


def _any_size_rule(net: nn.Module) -> str | None:
    rule = getattr(net, "forward_any_size", None)
    if rule is None:
        return None
    doc = (getattr(rule, "__doc__", None) or "").strip().splitlines()
    return f"{type(net).__name__}.forward_any_size (Python, not in the file)" + (f": {doc[0]}" if doc else "")


def _files_and_output(fmt: str, graph: bytes, check: list[Tensor]) -> tuple[list[bytes], Tensor]:
    """The bytes of the files ``fmt`` writes, and their output on ``check`` as run from those bytes
    (OpenVINO: the IR with float32 weights, read back and compiled)."""
    if fmt == "onnx":
        return [graph], torch.from_numpy(open_session("onnxruntime", graph, "fp32", torch.device("cpu"))(
            [t.numpy() for t in check]))
    ov = import_backend("openvino", "restore export --format openvino")
    from openvino import properties

    with tempfile.TemporaryDirectory(prefix="restore-export-") as tmp:
        xml = Path(tmp) / "model.xml"
        ov.save_model(ov.Core().read_model(graph), str(xml), compress_to_fp16=False)
        compiled = ov.Core().compile_model(str(xml), "CPU", {properties.hint.inference_precision: ov.Type.f32})
        out = torch.from_numpy(compiled([t.numpy() for t in check])[0])
        return [xml.read_bytes(), xml.with_suffix(".bin").read_bytes()], out


def export_network(model: nn.Module, fmt: str, out: str | os.PathLike[str], *, weights: str | os.PathLike[str],
                   network: dict[str, Any] | None = None, inputs: list[str | os.PathLike[str] | None] | None = None) -> Exported:
    """Export ``model`` (weights loaded, on the CPU) to ``out`` in ``fmt`` with its sidecar.

    ``weights`` is recorded in the sidecar; ``network`` is the option file's network section;
    ``inputs`` are files the outputs must not replace. Nothing is written unless the export and
    the verification succeed.
    """
    paths = output_paths(out, fmt)
    refuse_inputs(paths, [weights, *(inputs or [])])
    runtime = FORMATS[fmt][0]
    package = import_backend(runtime, f"restore export --format {fmt}")
    net = unwrap(model).eval()
    example = probe_inputs(net)
    graph = export_onnx(net, "forward", example, hint="its forward cannot be exported as it is")
    check = [torch.rand(t.shape, generator=torch.Generator().manual_seed(1)) for t in example]
    with torch.no_grad():
        expected = net(*check)
    blobs, got = _files_and_output(fmt, graph, check)
    diff = (got - expected).abs().max().item()
    keys, names = input_keys(net), input_names(len(example))
    sidecar: dict[str, Any] = {
        "format": fmt,
        "file": paths[0].name,
        "architecture": type(net).__name__,
        "network": network,
        "weights": str(weights),
        "weights_sha256": tensor_digest(net),
        "inputs": [{"name": n, "key": k, "shape": ["batch", int(t.shape[1]), "height", "width"]}
                   for n, k, t in zip(names, keys, example)],
        "output": {"name": OUTPUT, "shape": ["batch", int(expected.shape[1]), "out_height", "out_width"]},
        "size_multiple": size_multiple(net),
        "pad_mode": pad_mode(net),
        "scale": scale_of(net),
        "any_size_rule": _any_size_rule(net),
        "normalisation": NORMALISATION,
        "opset": OPSET,
        "exporter": EXPORTER,
        "verification": {"runtime": f"{runtime} {package.__version__}", "input_shape": list(check[0].shape),
                         "max_abs_diff": diff},
        "versions": {"restore": __version__, "torch": torch.__version__, runtime: package.__version__},
    }
    if not diff <= 1e-4:
        raise ConfigError(f"the exported {type(net).__name__} differs from torch by {diff:.2e} (max abs) on a random "
                          "input; nothing was written")
    for path, blob in zip(paths, blobs):
        atomic_write(path, blob)
    atomic_write(paths[-1], json.dumps(sidecar, indent=2) + "\n")
    return Exported(paths, sidecar)
