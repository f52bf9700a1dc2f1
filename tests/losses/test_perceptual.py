"""VGG perceptual loss: local weights only (clear error when absent), WDNet's definition."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from restore.config.schema import Component
from restore.errors import ConfigError, MissingWeightsError
from restore.losses.perceptual import PerceptualLoss


@pytest.fixture(scope="module")
def vgg19(tmp_path_factory) -> tuple[Path, torch.nn.Sequential]:
    """A randomly initialised VGG19 ``features`` saved in torchvision's key layout."""
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    features = make_layers(cfgs["E"]).eval()
    path = tmp_path_factory.mktemp("vgg") / "vgg19-dcbb9e9d.pth"
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.6.bias"] = torch.zeros(1000)  # the real file has a classifier too: ignored
    torch.save(state, path)
    return path, features


def reference(features, pred, target, taps, prep):
    """The loss written out: run each image through torchvision's features, L1 at the taps."""
    total = 0.0
    for index, weight in taps.items():
        fp = features[: index + 1](prep(pred).clone())
        ft = features[: index + 1](prep(target).clone())
        total = total + weight * F.l1_loss(fp, ft)
    return total


def caffe(x):
    return x * 255 - torch.tensor([123.68, 116.779, 103.939]).view(1, 3, 1, 1)


def test_missing_weights_is_one_line_naming_the_file_and_place(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty hub cache
    monkeypatch.delenv("RESTORE_VGG_WEIGHTS", raising=False)
    with pytest.raises(MissingWeightsError) as err:
        PerceptualLoss()
    message = str(err.value)
    assert "\n" not in message
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    assert f"vgg19-dcbb9e9d.pth at {expected}" in message and "RESTORE_VGG_WEIGHTS" in message
    assert "nothing is downloaded" in message
    with pytest.raises(MissingWeightsError, match="vgg16-397923af.pth.*elsewhere/v.pth"):
        PerceptualLoss(net="vgg16", weights_path="elsewhere/v.pth")
    # through an option file's loss section the error also names the key
    spec = Component("loss", "perceptual", {}, where="opt.yml: train.losses[1]")
    with pytest.raises(MissingWeightsError, match=r"^opt.yml: train.losses\[1\]: vgg19 ImageNet weights"):
        spec.build()


def test_wdnet_definition_matches_the_reference(vgg19):
    path, features = vgg19
    loss = PerceptualLoss(weights_path=str(path))
    pred, target = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    expected = reference(features, pred, target, {3: 1 / 2.6, 8: 1 / 4.8}, caffe)  # relu1_2, relu2_2
    torch.testing.assert_close(loss(pred, target), expected, rtol=1e-5, atol=1e-5)
    assert len(loss.features) == 9  # built and loaded only up to relu2_2


def test_other_layers_and_imagenet_normalisation(vgg19):
    path, features = vgg19
    loss = PerceptualLoss(layers={"conv3_1": 0.5, "relu1_1": 2.0}, weights_path=str(path), input_norm="imagenet")
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    pred, target = torch.rand(1, 3, 24, 24, requires_grad=True), torch.rand(1, 3, 24, 24)
    expected = reference(features, pred.detach(), target, {10: 0.5, 1: 2.0}, lambda x: (x - mean) / std)
    value = loss(pred, target)
    torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
    value.backward()  # a tap on a conv output followed by a ReLU still back-propagates
    assert pred.grad is not None and torch.isfinite(pred.grad).all()


def test_gradients_reach_the_prediction_only(vgg19):
    loss = PerceptualLoss(weights_path=str(vgg19[0]))
    pred = torch.rand(1, 3, 16, 16, requires_grad=True)
    target = torch.rand(1, 3, 16, 16)
    loss(pred, target).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in loss.parameters())
    assert loss(target, target).item() == 0.0
    assert not loss.train().features.training


def test_unreadable_or_foreign_files_are_missing_weights_errors(tmp_path, vgg19):
    bad = tmp_path / "vgg19-dcbb9e9d.pth"
    bad.write_bytes(b"truncated download")
    with pytest.raises(MissingWeightsError, match="not a readable PyTorch checkpoint"):
        PerceptualLoss(weights_path=str(bad))
    state = torch.load(vgg19[0], weights_only=True)
    del state["features.7.weight"]
    torch.save(state, bad)
    with pytest.raises(MissingWeightsError, match=r"features.7.weight is missing, expected a tensor of shape \(128, 128, 3, 3\)"):
        PerceptualLoss(weights_path=str(bad))


def test_bad_options_are_config_errors(vgg19):
    with pytest.raises(ConfigError, match="unknown vgg19 layer.*relu9_9.*known: conv1_1"):
        PerceptualLoss(layers={"relu9_9": 1.0}, weights_path=str(vgg19[0]))
    with pytest.raises(ConfigError, match="input_norm"):
        PerceptualLoss(input_norm="torch")
