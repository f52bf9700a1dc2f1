"""The torch path's switches: infer.channels_last / compile / tf32, cudnn.benchmark, fused Adam."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from restore.component import Component
from restore.config import load_options
from restore.data.image_io import read_image
from restore.engine import torch_speed
from restore.engine.batch_restore import restore_folder
from restore.engine.distributed import DistContext
from restore.engine.inference import Restorer
from restore.errors import ConfigError

OPTIONS = "name: ts\ndevice: cpu\nnetwork: {type: n2n_unet, n_feature: 8, residual: true}\n"


def options(tmp_path: Path, extra: str = ""):
    f = tmp_path / "o.yml"
    f.write_text(OPTIONS + extra)
    return load_options(f)


def unet(seed: int = 0) -> nn.Module:
    from restore.archs.n2n_unet import N2NUNet

    torch.manual_seed(seed)
    model = N2NUNet(n_feature=8, residual=True)  # outputs near the input: inside [0, 1], not saturated
    for p in model.parameters():
        nn.init.normal_(p, std=0.05)
    return model.eval()


def test_channels_last_option_parses_and_refuses_other_values(tmp_path):
    assert options(tmp_path).infer.channels_last == "auto"
    assert options(tmp_path, "infer: {channels_last: false, compile: true, tf32: true}\n").infer.channels_last is False
    with pytest.raises(ConfigError, match="infer.channels_last"):
        options(tmp_path, "infer: {channels_last: sometimes}\n")
    with pytest.raises(ConfigError, match="train.tf32"):
        options(tmp_path, "train: {total_iter: 1, tf32: maybe}\n")


class Declares(nn.Module):
    channels_last = True

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


@pytest.mark.parametrize(("setting", "declared", "expected"), [
    ("auto", True, True), ("auto", False, False), (True, False, True), (False, True, False)])
def test_auto_follows_the_architectures_declaration(setting, declared, expected):
    model = Declares() if declared else nn.Sequential(nn.Conv2d(3, 4, 3, padding=1))
    infer = type("Infer", (), {"channels_last": setting, "compile": False, "tf32": None})()
    torch_speed.prepare_for_inference(model, infer, torch.device("cpu"))
    assert torch_speed.has_channels_last_weights(model) is expected
    assert Restorer(model).channels_last is expected


def test_channels_last_gives_the_same_outputs_and_feeds_nhwc_inputs():
    eager = unet()
    nhwc = unet().to(memory_format=torch.channels_last)
    seen: list[bool] = []
    nhwc.enc_conv0.register_forward_pre_hook(
        lambda _m, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    x = torch.rand(2, 3, 40, 50)
    with torch.inference_mode():
        a, b = Restorer(eager)(x), Restorer(nhwc)(x)
    assert seen == [True]
    assert (a - b).abs().max() < 1e-5 and (a - x).std() > 0.01  # equal, and the network does something


@pytest.mark.parametrize("size", [(32, 48), (30, 46)])  # whole wavelet path, and WDNet's resize rule
def test_wdnet_declares_channels_last_and_gives_the_same_outputs(size):
    from restore.methods.wdnet.arch import WDNet

    def light(seed: int = 0) -> nn.Module:
        torch.manual_seed(seed)
        model = WDNet(channels=16, growth=8, dilations=[1, 3])
        for p in model.parameters():
            nn.init.normal_(p, std=0.05)  # the official init is nearly the identity
        return model.eval()

    auto = type("Infer", (), {"channels_last": "auto", "compile": False, "tf32": None})()
    nhwc = torch_speed.prepare_for_inference(light(), auto, torch.device("cpu"))
    x = torch.rand(1, 3, *size)
    with torch.inference_mode():
        a, b = Restorer(light())(x), Restorer(nhwc)(x)
    assert torch_speed.has_channels_last_weights(nhwc)
    assert (a - b).abs().max() < 1e-5 and (a - x).abs().mean() > 0.01


def test_infer_channels_last_true_and_false_write_the_same_images(tmp_path):
    weights = tmp_path / "w.pth"
    torch.save(unet().state_dict(), weights)
    image = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    (tmp_path / "in").mkdir()
    import cv2

    cv2.imwrite(str(tmp_path / "in/a.png"), image)
    for flag in ("true", "false"):
        opt = options(tmp_path, f"infer: {{channels_last: {flag}}}\n")
        assert restore_folder(opt, tmp_path / "in", tmp_path / flag, weights=weights, ctx=DistContext(),
                              progress=False).ok
    nhwc, nchw = read_image(tmp_path / "true/a.png"), read_image(tmp_path / "false/a.png")
    assert np.array_equal(nhwc, nchw) and not np.array_equal(nchw, image[..., ::-1])  # RGB vs OpenCV's BGR


def test_compile_runs_the_compiled_forward_even_through_forward_any_size(monkeypatch, capsys):
    """infer.compile compiles in place, so the architecture's own size rule (pad_square) calls the
    compiled forward. Compiled here with dynamo's 'eager' backend: inductor's C++ build takes
    minutes on a loaded 2-core machine; the option itself uses the default backend."""
    from torch._dynamo.utils import counters

    from restore.archs.n2n_unet import N2NUNet

    torch._dynamo.reset()
    counters.clear()
    monkeypatch.setattr(nn.Module, "compile", functools.partialmethod(nn.Module.compile, backend="eager"))
    torch.manual_seed(0)
    model = N2NUNet(n_feature=8, pad_square=True).eval()
    x = torch.rand(1, 3, 40, 50)
    with torch.inference_mode():
        expected = Restorer(model)(x)
        infer = type("Infer", (), {"channels_last": False, "compile": True, "tf32": None})()
        torch_speed.prepare_for_inference(model, infer, torch.device("cpu"))
        restorer = torch_speed.FirstCallTimer(Restorer(model), print)
        got = restorer(x)
        again = restorer(x)
    assert counters["stats"]["unique_graphs"] >= 1  # dynamo really compiled the forward
    # the eager forward fuses conv + LeakyReLU (restore.archs.fused_cpu), the traced one cannot: rounding apart
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)
    assert torch.equal(again, got)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("infer.compile: first forward (compile included) took ")
    assert restorer.model is model  # the timer passes attributes through
    torch._dynamo.reset()


def test_fused_adam_on_cuda_only_and_never_over_the_users_choice():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert torch_speed.optimizer_extras(Component("optimizer", "adamw", {"lr": 1e-3}), cuda) == {"fused": True}
    assert torch_speed.optimizer_extras(Component("optimizer", "adam", {}), cuda) == {"fused": True}
    assert torch_speed.optimizer_extras(Component("optimizer", "adam", {}), cpu) == {}
    assert torch_speed.optimizer_extras(Component("optimizer", "adam", {"fused": False}), cuda) == {}
    assert torch_speed.optimizer_extras(Component("optimizer", "adam", {"foreach": True}), cuda) == {}
    assert torch_speed.optimizer_extras(Component("optimizer", "sgd", {}), cuda) == {}


@pytest.fixture
def backend_flags():
    saved = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.fp32_precision,
             torch.backends.cudnn.conv.fp32_precision)
    yield
    torch.backends.cudnn.benchmark = saved[0]
    torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision = saved[1:]


def test_training_switches_touch_cuda_settings_only_for_cuda(backend_flags):
    torch.backends.cudnn.benchmark = False
    before = (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision)
    torch_speed.training_switches(torch.device("cpu"), True)
    assert torch.backends.cudnn.benchmark is False
    assert (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision) == before
    torch_speed.training_switches(torch.device("cuda"), None)  # None: torch's TF32 defaults stay
    assert torch.backends.cudnn.benchmark is True
    assert (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision) == before
    torch_speed.set_tf32(True, torch.device("cuda"))
    assert torch.backends.cuda.matmul.fp32_precision == "tf32" == torch.backends.cudnn.conv.fp32_precision
    torch_speed.set_tf32(False, torch.device("cuda"))
    assert torch.backends.cuda.matmul.fp32_precision == "ieee" == torch.backends.cudnn.conv.fp32_precision
