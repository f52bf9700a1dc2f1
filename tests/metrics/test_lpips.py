"""LPIPS without downloads: missing backbone file -> one-line MissingWeightsError; local loading."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from restore.errors import MissingWeightsError
from restore.metrics.lpips_metric import BACKBONE_FILES, ENV_VAR, LPIPSMetric, backbone_file


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv(ENV_VAR, raising=False)
    return tmp_path


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_missing_backbone_names_file_and_place(empty_torch_home, net):
    expected = empty_torch_home / "hub" / "checkpoints" / BACKBONE_FILES[net]
    assert backbone_file(net) == expected
    with pytest.raises(MissingWeightsError) as err:
        LPIPSMetric(net)
    msg = str(err.value)
    assert "\n" not in msg
    assert BACKBONE_FILES[net] in msg and str(expected) in msg and ENV_VAR in msg


def test_unknown_net():
    with pytest.raises(ValueError):
        LPIPSMetric("squeezy")


@pytest.fixture(scope="module")
def alexnet_state():
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.alexnet(weights=None).state_dict()


def test_loads_local_backbone_from_hub_dir(empty_torch_home, alexnet_state):
    ckpt = empty_torch_home / "hub" / "checkpoints" / BACKBONE_FILES["alex"]
    ckpt.parent.mkdir(parents=True)
    torch.save(alexnet_state, ckpt)
    metric = LPIPSMetric("alex")
    assert metric.backbone_path == ckpt
    conv0 = metric.model.net.slice1[0].weight
    assert torch.equal(conv0, alexnet_state["features.0.weight"])
    assert torch.equal(getattr(metric.model.net.slice5, "10").bias, alexnet_state["features.10.bias"])
    torch.manual_seed(1)
    a = torch.rand(2, 3, 64, 64)
    b = (a + 0.2 * torch.randn_like(a)).clamp(0, 1)
    same = metric(a, a)
    assert same.shape == (2,) and same.dtype == torch.float64
    assert torch.allclose(same, torch.zeros(2, dtype=torch.float64))
    d = metric(a, b)
    assert torch.isfinite(d).all() and (d > 0).all()
    # inputs are clamped to [0, 1] before mapping to [-1, 1]
    assert torch.allclose(metric(a * 3 - 1, b), metric((a * 3 - 1).clamp(0, 1), b))


def test_backbone_path_from_env_and_argument(tmp_path, monkeypatch, alexnet_state):
    f = tmp_path / "my_alexnet.pth"
    torch.save(alexnet_state, f)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv(ENV_VAR, str(f))
    assert LPIPSMetric("alex").backbone_path == f
    monkeypatch.delenv(ENV_VAR)
    assert LPIPSMetric("alex", backbone_path=f).backbone_path == f


def test_wrong_checkpoint_is_reported(tmp_path, alexnet_state):
    f = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, f)
    with pytest.raises(MissingWeightsError, match="bad.pth"):
        LPIPSMetric("alex", backbone_path=f)


def test_import_is_cheap():
    code = (
        "import sys, torch; before = torch.get_default_dtype(); import restore.metrics; "
        "heavy = [m for m in ('lpips', 'torchvision', 'skimage', 'cv2') if m in sys.modules]; "
        "assert not heavy, heavy; assert torch.get_default_dtype() == before"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_evaluator_lpips_needs_weights_up_front(empty_torch_home):
    from restore.metrics import Evaluator

    with pytest.raises(MissingWeightsError, match=BACKBONE_FILES["alex"]):
        Evaluator("uhdm")  # fails at construction, not at the first validation
    Evaluator("uhdm", metrics=["psnr", "ssim"])  # fine without LPIPS


def test_evaluator_uhdm_with_local_backbone(empty_torch_home, alexnet_state):
    from restore.metrics import Evaluator

    ckpt = empty_torch_home / "hub" / "checkpoints" / BACKBONE_FILES["alex"]
    ckpt.parent.mkdir(parents=True)
    torch.save(alexnet_state, ckpt)
    ev = Evaluator("uhdm")
    torch.manual_seed(2)
    gt = torch.rand(2, 3, 64, 64)
    rows = ev.update(gt, gt)
    assert rows[0]["lpips"] == pytest.approx(0.0, abs=1e-7)
    ev.update((gt + 0.1 * torch.randn_like(gt)).clamp(0, 1), gt)
    s = ev.summary()
    assert set(s) == {"n_images", "psnr", "ssim", "lpips"} and math.isfinite(s["lpips"]) and s["lpips"] > 0
    assert "(alex)" in ev.format_table()


@pytest.mark.parametrize(
    "content,reason",
    [
        (b"", "empty file"),
        (b"this is not a checkpoint\n" * 20, "Error"),  # pickle's error type depends on the bytes
        (b"PK\x03\x04" + bytes(200), "RuntimeError"),  # a truncated zip (torch.save's format)
    ],
    ids=["empty", "garbage", "truncated_zip"],
)
def test_unreadable_backbone_file_is_one_line(tmp_path, content, reason):
    f = tmp_path / BACKBONE_FILES["alex"]
    f.write_bytes(content)
    with pytest.raises(MissingWeightsError) as err:
        LPIPSMetric("alex", backbone_path=f)
    msg = str(err.value)
    assert "\n" not in msg and len(msg) < 400
    assert msg.startswith(f"{f}: not a readable PyTorch checkpoint of torchvision's {BACKBONE_FILES['alex']} (")
    assert reason in msg


def test_checkpoint_that_is_not_a_state_dict(tmp_path):
    f = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), f)
    with pytest.raises(MissingWeightsError, match=r"tensor.pth: not a readable .* \(holds a Tensor, not a state dict\)"):
        LPIPSMetric("vgg", backbone_path=f)
    g = tmp_path / "odd.pth"
    torch.save({"features.0.weight": [1, 2]}, g)
    with pytest.raises(MissingWeightsError, match=r"odd.pth: features.0.weight is list, expected a tensor"):
        LPIPSMetric("alex", backbone_path=g)


def test_evaluator_lpips_input_errors(tmp_path, alexnet_state):
    from restore.errors import DataError
    from restore.metrics import Evaluator

    f = tmp_path / "alex.pth"
    torch.save(alexnet_state, f)
    ev = Evaluator("uhdm", lpips_backbone=f)
    gt = torch.rand(1, 3, 40, 40)
    with pytest.raises(DataError, match=r"^image 'g': LPIPS needs RGB images, got 1 channel\(s\)$"):
        ev.update(gt[:, :1], gt[:, :1], names=["g"])
    with pytest.raises(DataError, match=r"^image 's' is 30x40, smaller than the 31x31 LPIPS alex needs$"):
        ev.update(gt[..., :30], gt[..., :30], names=["s"])
    (row,) = ev.update(gt[..., :31], gt[..., :31], names=["ok"])  # the smallest size AlexNet takes
    assert row["lpips"] == pytest.approx(0.0, abs=1e-6)
