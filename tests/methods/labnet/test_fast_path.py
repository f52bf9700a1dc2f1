"""LAB-Net's two implementations of one network against the official one, transcribed
(``official.py``): the channels-last inference path (CPU, no autograd) and the module path
(training, export, GPU); the graph form of the attention; export to ONNX with dynamic sizes."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from restore.engine.inference import Restorer
from restore.methods.labnet import arch as labnet_module
from restore.methods.labnet.arch import LABNet
from restore.methods.labnet.attention import attention_batched, attention_per_sample
from restore.methods.labnet.fast import Workspace, reflect_pad

from .official import official_forward_lab, official_test_image
from .test_arch import direct_attention, regions


def masks(b: int, h: int, w: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """A blob, a band along the bottom, shadow everywhere (no ring), no shadow: (B, 1, H, W) x 2."""
    m = torch.zeros(b, 1, h, w, dtype=dtype)
    m[0, :, 10:40, 20:60] = 1
    if b > 1:
        m[1, :, 50:, :] = 1
    if b > 2:
        m[2] = 1
    return m, F.max_pool2d(m, 11, 1, 5)


@pytest.fixture
def calls(monkeypatch) -> list[int]:
    """Counts the runs of the channels-last path."""
    seen: list[int] = []
    original = labnet_module.fast.forward_lab

    def spy(*args, **kwargs):
        seen.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(labnet_module.fast, "forward_lab", spy)
    return seen


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_both_paths_equal_the_official_network(dtype, tol, calls) -> None:
    torch.manual_seed(0)
    net = LABNet(channels=8, down_size=[24, 20]).to(dtype).eval()
    lab = torch.rand(4, 3, 70, 90, dtype=dtype)
    mask, dilated = masks(4, 70, 90, dtype)
    with torch.no_grad():
        official = official_forward_lab(net.state_dict(), lab, mask, dilated, 24, 20)
        fast = net.forward_lab(lab, mask, dilated)
        assert len(calls) == 1
        modules = net.forward_modules(lab, mask, dilated)
    assert official.abs().max() > 0.5  # a non-trivial output
    torch.testing.assert_close(fast, official, rtol=0, atol=tol)
    torch.testing.assert_close(modules, official, rtol=0, atol=tol)


def test_training_and_autograd_use_the_modules(calls) -> None:
    torch.manual_seed(0)
    net = LABNet(channels=8, down_size=32)
    lab = torch.rand(1, 3, 66, 70)
    mask, dilated = masks(1, 66, 70, torch.float32)
    out = net.forward_lab(lab, mask, dilated)
    assert out.requires_grad and not calls
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(net.forward_lab(lab, mask, dilated), out.detach(), rtol=0, atol=1e-5)
    assert calls == [1]


@pytest.mark.parametrize("p", [1, 4, 16, 39])
def test_reflection_padding_into_the_workspace_is_f_pad(p: int) -> None:
    x = torch.randn(1, 5, 40, 57).permute(0, 2, 3, 1)[0]  # (H, W, C), strided as in the network
    padded = reflect_pad(Workspace(x), x, p)
    expected = F.pad(x.permute(2, 0, 1)[None], (p, p, p, p), mode="reflect")[0].permute(1, 2, 0)
    assert torch.equal(padded, expected)
    with pytest.raises(ValueError, match="reflection padding 40"):
        reflect_pad(Workspace(x), x, 40)


def test_graph_attention_equals_the_direct_one_across_a_batch() -> None:
    """The batched form masks pairs of different samples: a sample without ring must get 0, not
    an average of another sample's ring; gradients equal too."""
    torch.manual_seed(3)
    b, c, h, w = 4, 6, 16, 18
    cases = [regions(h, w, kind) for kind in ("all_shadow", "blob", "none", "blob")]
    shadow = torch.stack([s for s, _ in cases])
    ring = torch.stack([r for _, r in cases])
    shadow[3] &= torch.rand(h * w) < 0.4
    q = torch.randn(b, c, h * w, dtype=torch.float64, requires_grad=True)
    k = torch.randn(b, c, h * w, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(b, c, h * w, dtype=torch.float64)
    ref = direct_attention(q, k, shadow, ring)
    grads_ref = torch.autograd.grad((ref * upstream).sum(), (q, k))
    for form in (attention_batched, attention_per_sample):
        out = form(q, k, shadow, ring)
        grads = torch.autograd.grad((out * upstream).sum(), (q, k))
        torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
        for g, g_ref in zip(grads, grads_ref):
            torch.testing.assert_close(g, g_ref, rtol=1e-10, atol=1e-10)
    assert torch.equal(ref[0], torch.zeros_like(ref[0]))


def test_forward_lab_exports_to_onnx_with_dynamic_sizes() -> None:
    """The export core (``export_core``) traced once serves other sizes, batches and masks in
    ONNX Runtime within 1e-4 of torch's channels-last path."""
    ort = pytest.importorskip("onnxruntime")
    assert LABNet.export_core == "forward_lab"
    torch.manual_seed(0)
    net = LABNet(channels=8, down_size=32).eval()

    class Core(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, lab, mask, dilated):
            return self.net.forward_lab(lab, mask, dilated)

    def example(b: int, h: int, w: int) -> list[torch.Tensor]:
        return [torch.rand(b, 3, h, w), *masks(b, h, w, torch.float32)]

    names = ["lab", "mask", "mask_d"]
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Core(), tuple(example(1, 72, 80)), buffer, input_names=names, dynamo=False,
                          dynamic_axes={n: {0: "b", 2: "h", 3: "w"} for n in names}, opset_version=18)
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    for b, h, w in ((1, 90, 66), (3, 81, 100)):  # batch 3: blob, band, shadow everywhere
        inputs = example(b, h, w)
        with torch.no_grad():
            expected = net.forward_lab(*inputs)
        got = session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})[0]
        assert got.shape == tuple(expected.shape)
        assert np.abs(got - expected.numpy()).max() <= 1e-4


def test_restorer_on_a_real_shadow_photo_gives_the_official_test_output(shared_data: Path) -> None:
    """A real image and mask (crop), random weights: the Restorer's RGB against the official
    test.py transcription. Both end by truncating to 8-bit LAB codes, so float32 rounding may move
    a value across a code boundary: a handful of pixels may differ, by a few RGB codes."""
    images = shared_data / "shadow"
    if not (images / "images" / "USR_1.jpg").is_file():
        pytest.skip("no shadow photos in the shared data")
    rgb = cv2.cvtColor(cv2.imread(str(images / "images" / "USR_1.jpg")), cv2.COLOR_BGR2RGB)[200:320, 220:380]
    mask = cv2.imread(str(images / "masks" / "USR_1.png"), cv2.IMREAD_GRAYSCALE)[200:320, 220:380]
    assert 0.05 < (mask > 229).mean() < 0.95
    torch.manual_seed(0)
    net = LABNet(channels=8, down_size=64).eval()
    official = official_test_image(net.state_dict(), rgb, mask, down=64)
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    m = torch.from_numpy(mask)[None, None].float() / 255
    ours = (Restorer(net)(x, m)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.int16)
    diff = np.abs(ours - official.astype(np.int16))
    assert len(np.unique(official)) > 50
    assert (diff > 0).mean() < 0.002 and diff.max() <= 6
