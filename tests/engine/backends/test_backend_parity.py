"""Parity: every architecture's exported core on ONNX Runtime and OpenVINO equals torch (fp32).

Small random-weight networks, images in [0, 1] at two sizes that are not the size a graph is
traced at and that go through each architecture's own size rule (IPT's patch rule, Uformer's
centred square, WDNet's resize rule, N2N's padding, LAB-Net's mask). One graph per network
(module-wide cache folder): the OpenVINO case reuses the graph the ONNX Runtime case exported.
Both the whole path (what a user gets) and the core itself (every call the graph served, against
the original method on the same tensors) are compared, so an output that rounds to 8-bit codes
(LAB-Net) or averages many tiles (IPT) cannot hide a difference.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")

from restore.archs.mask_input import WithMask
from restore.archs.n2n_unet import N2NUNet
from restore.engine.backends.runner import ExportedCore
from restore.engine.inference import Restorer
from restore.methods.ipt.arch import IPT
from restore.methods.labnet.arch import LABNet
from restore.methods.tape.arch import TAPER
from restore.methods.uformer.arch import Uformer
from restore.methods.wdnet.arch import WDNet

TOLERANCE = 1e-4  # max abs, images in [0, 1]


def _randomized(net: nn.Module, std: float = 0.05) -> nn.Module:
    """Random weights (WDNet's official init is nearly the identity, which would hide wiring)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return net


# name -> (network builder, channels of each input, two (H, W) sizes)
CASES: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], tuple[tuple[int, int], tuple[int, int]]]] = {
    "n2n_unet": (lambda: N2NUNet(n_feature=8), (3,), ((50, 70), (97, 64))),
    "uformer": (lambda: Uformer(embed_dim=8, depths=[1] * 9, win_size=4, modulator=True, drop_path_rate=0.0), (3,),
                ((60, 50), (100, 70))),  # size multiple 64: squares of 64 and 128
    "tape_r": (lambda: TAPER(embed_dim=8, depths_enc=[1, 1], depth_mid=1, depths_dec=[1, 1], heads=[1, 2],
                             heads_mid=2, win_size=4, prior_tokens=8, pem_heads=2, drop_path_rate=0.0), (3,),
               ((40, 28), (52, 70))),
    "wdnet": (lambda: _randomized(WDNet(channels=16, growth=8, dilations=[1, 3])), (3,), ((66, 62), (45, 80))),
    "labnet": (lambda: LABNet(channels=8, down_size=64), (3, 1), ((70, 66), (90, 72))),
    "ipt": (lambda: IPT(n_feats=4, num_heads=4, num_layers=1, scale=1), (3,), ((60, 52), (49, 75))),
    "with_mask(n2n_unet, square)": (lambda: WithMask(N2NUNet(in_nc=4, n_feature=8, pad_square=True)), (3, 1),
                                     ((40, 30), (33, 70))),
}


@pytest.fixture(scope="module", autouse=True)
def _graph_cache(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RESTORE_CACHE", str(tmp_path_factory.mktemp("restore_cache")))
        yield


def _inputs(channels: tuple[int, ...], size: tuple[int, int], seed: int) -> list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    tensors = [torch.rand(1, c, *size, generator=g) for c in channels]
    if len(tensors) > 1:
        tensors[1] = (tensors[1] > 0.5).float()  # a binary mask
    return tensors


# LAB-Net's forward converts RGB <-> LAB with OpenCV on numpy arrays, which no graph can hold;
# its pure-torch part is forward_lab. Until LABNet names it (export_core = "forward_lab"), the
# case is not run.
_LABNET_CORE = pytest.mark.xfail(
    getattr(LABNet, "export_core", "forward") == "forward", run=False, strict=True,
    reason="LABNet.forward calls OpenCV (numpy) for its LAB conversions; it needs export_core = 'forward_lab'",
)


def _params() -> list:
    marks = {"labnet": [_LABNET_CORE]}
    return [pytest.param(name, marks=marks.get(name, [])) for name in CASES]


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("name", _params())
def test_exported_core_equals_torch(name: str, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    build, channels, sizes = CASES[name]
    torch.manual_seed(0)
    net = build().eval()
    served: list[tuple[tuple[Tensor, ...], Tensor]] = []
    call = ExportedCore.__call__

    def spy(self: ExportedCore, *inputs: Tensor) -> Tensor:
        out = call(self, *inputs)
        served.append((inputs, out))
        return out

    monkeypatch.setattr(ExportedCore, "__call__", spy)
    fast, plain = Restorer(net, backend=backend), Restorer(net)
    for seed, size in enumerate(sizes):
        inputs = _inputs(channels, size, seed)
        expected, got = plain(*inputs), fast(*inputs)
        assert got.shape == expected.shape
        diff = (got - expected).abs().max().item()
        assert diff <= TOLERANCE, f"{name} on {backend} at {size}: max abs difference {diff:.2e}"
    assert fast.core is not None and fast.core.sessions and served, "the exported graph never ran"
    shapes = set()
    for inputs, out in served:
        if inputs[0].shape in shapes:
            continue  # IPT: many tile batches of one shape
        shapes.add(inputs[0].shape)
        with torch.no_grad():
            diff = (out - fast.core.original(*inputs)).abs().max().item()
        assert diff <= TOLERANCE, f"{name} core on {backend} at {tuple(inputs[0].shape)}: max abs difference {diff:.2e}"
    assert len(shapes) >= 2  # the graph served two sizes (or tile batches) other than the traced one
    assert fast.core.method not in fast.core.owner.__dict__  # the instance is left as it was
