"""LAB-Net: official keys and size, the attention against a direct computation, OpenCV LAB,
training in LAB space, and `restore infer` / `restore test` against the official test procedure."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from key_listings import key_listing
from PIL import Image

from restore.cli.main import main
from restore.engine.checkpoint import load_weights
from restore.errors import ConfigError, MissingWeightsError
from restore.methods.labnet import arch as labnet_module
from restore.methods.labnet.arch import LABNet, SpatialAttentionBlock, local_spatial_attention
from restore.methods.labnet.lab import lab8_codes, lab8_to_rgb, rgb_to_lab8

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def official_keys() -> dict[str, list[int]]:
    return key_listing("labnet.json")


# --------------------------------------------------------------------------- size and keys


def test_state_dict_matches_the_official_listing(official_keys: dict[str, list[int]]) -> None:
    state = LABNet().state_dict()
    assert list(state) == list(official_keys)  # 304 tensors, no buffers, official order
    assert {k: list(v.shape) for k, v in state.items()} == official_keys


def test_parameter_counts_are_the_specs() -> None:
    net = LABNet()
    assert sum(p.numel() for p in net.parameters()) == 933_355  # labnet.md §3
    parts = {name: sum(p.numel() for p in m.parameters()) for name, m in net.named_children()}
    assert parts["convst"] == parts["convfinal"] == 84
    assert parts["basicblock1"] == parts["basicblock2"] == 83_980
    assert all(parts[f"basicblock{i}"] == 108_172 for i in (3, 4, 5, 6))
    assert (parts["basicblock7"], parts["basicblock8"]) == (99_213, 99_502)
    assert all(parts[f"spaatt{i}"] == 30_336 for i in (1, 2, 3, 4))
    assert all(parts[f"conv{s}_{b}"] == 2_080 for s in (12, 34, 56) for b in ("l", "ab"))


def test_official_plain_state_dict_loads_strictly(tmp_path: Path) -> None:
    source = LABNet(channels=8)
    path = tmp_path / "best_net_G.pth"
    torch.save(source.state_dict(), path)  # save_networks: plain keys, no wrapper, no module.
    target = LABNet(channels=8)
    load_weights(target, path, strict=True)
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values()))
    with pytest.raises(ConfigError, match="shape mismatch"):
        load_weights(LABNet(channels=16), path)
    with pytest.raises(ConfigError, match="multiple of 8"):
        LABNet(channels=12)


# --------------------------------------------------------------------------- local spatial attention


def direct_attention(q: torch.Tensor, k: torch.Tensor, shadow: torch.Tensor, ring: torch.Tensor) -> torch.Tensor:
    """The official loop: boolean indexing, the full |S| x |R| softmax matrix, overwrite K[:, S]."""
    k = k.clone()
    for i in range(q.shape[0]):
        s, r = shadow[i], ring[i]
        a = torch.softmax(q[i][:, s].t() @ k[i][:, r] / math.sqrt(q.shape[1]), dim=-1)
        k[i][:, s] = (a @ k[i][:, r].t()).t()
    return k


def regions(h: int, w: int, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    m = torch.zeros(1, 1, h, w)
    if kind == "blob":
        m[..., h // 4 : h // 2, w // 3 : w - 3] = 1
    elif kind == "all_shadow":  # no ring: the shadow columns become 0
        m[:] = 1
    md = torch.nn.functional.max_pool2d(m, 11, 1, 5)
    return (m == 1).flatten(1)[0], (md - m == 1).flatten(1)[0]


def test_memory_efficient_attention_equals_the_direct_one_with_gradients() -> None:
    torch.manual_seed(0)
    b, c, h, w = 4, 12, 20, 24
    cases = [regions(h, w, kind) for kind in ("blob", "blob", "none", "all_shadow")]
    shadow = torch.stack([s for s, _ in cases])
    ring = torch.stack([r for _, r in cases])
    shadow[1] &= torch.rand(h * w) < 0.5  # ragged sets of another size
    assert shadow[0].any() and ring[0].any() and not shadow[2].any() and not ring[3].any()
    q = torch.randn(b, c, h * w, dtype=torch.float64, requires_grad=True)
    k = torch.randn(b, c, h * w, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(b, c, h * w, dtype=torch.float64)

    fast = local_spatial_attention(q, k, shadow, ring)
    grads_fast = torch.autograd.grad((fast * upstream).sum(), (q, k))
    ref = direct_attention(q, k, shadow, ring)
    grads_ref = torch.autograd.grad((ref * upstream).sum(), (q, k))

    torch.testing.assert_close(fast, ref, rtol=1e-10, atol=1e-10)
    for g_fast, g_ref in zip(grads_fast, grads_ref):
        torch.testing.assert_close(g_fast, g_ref, rtol=1e-10, atol=1e-10)
    assert torch.equal(fast[2], k[2])  # no shadow: unchanged
    assert torch.equal(fast[3], torch.zeros_like(k[3]))  # shadow everywhere, no ring: zeros
    assert not torch.equal(fast[0][:, shadow[0]], k[0][:, shadow[0]])
    assert torch.equal(fast[0][:, ~shadow[0]], k[0][:, ~shadow[0]])


def test_attention_block_at_the_working_resolution_equals_the_direct_one(monkeypatch) -> None:
    torch.manual_seed(1)
    block = SpatialAttentionBlock(8)
    net = LABNet(channels=8, down_size=[24, 20])
    mask = torch.zeros(2, 1, 50, 40)
    mask[0, :, 10:30, 5:25] = 1
    mask[1, :, 30:, :] = 1
    shadow, ring = net.attention_regions(mask, torch.nn.functional.max_pool2d(mask, 11, 1, 5))
    t = torch.randn(2, 8, 50, 40)
    fast = block(t, shadow, ring, net.down_size)
    monkeypatch.setattr(labnet_module, "local_spatial_attention", direct_attention)
    torch.testing.assert_close(block(t, shadow, ring, net.down_size), fast, rtol=1e-5, atol=1e-5)


def test_large_attention_never_builds_the_shadow_by_ring_matrix() -> None:
    """|S| x |R| = 12000 x 6000 floats would be 288 MB; no op may allocate a tenth of it."""
    torch.manual_seed(2)
    n, c = 20000, 48
    shadow = torch.zeros(1, n, dtype=torch.bool)
    ring = torch.zeros(1, n, dtype=torch.bool)
    shadow[0, :12000] = True
    ring[0, 12000:18000] = True
    q, k = torch.randn(1, c, n), torch.randn(1, c, n)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        local_spatial_attention(q, k, shadow, ring)
    biggest = max(e.cpu_memory_usage for e in prof.events())
    assert 0 < biggest < 28 * 2**20


# --------------------------------------------------------------------------- OpenCV LAB


def spec_lab8(rgb: np.ndarray) -> np.ndarray:
    """labnet.md §1.2, OpenCV's definition of 8-bit LAB, in float64 (the test's own reference)."""
    c = rgb.astype(np.float64) / 255
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])
    x, y, z = np.moveaxis(lin @ m.T, -1, 0)
    x, z = x / 0.950456, z / 1.088754

    def f(t: np.ndarray) -> np.ndarray:
        return np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16 / 116)

    lum = np.where(y > 0.008856, 116 * np.cbrt(y) - 16, 903.3 * y)
    lab = np.stack([lum * 255 / 100, 500 * (f(x) - f(y)) + 128, 200 * (f(y) - f(z)) + 128], -1)
    return np.clip(np.rint(lab), 0, 255)


def test_lab_conversion_is_opencvs_8bit_d65_lab_and_round_trips() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (2, 40, 50, 3), dtype=np.uint8)
    rgb[0, 0, :8] = [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128],
                     [1, 2, 3], [250, 5, 130]]
    x = torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255

    lab = rgb_to_lab8(x)
    codes = lab * 255
    assert lab.dtype == torch.float32 and torch.equal(codes, codes.round())  # codes / 255, as ToTensor
    diff = np.abs(codes.permute(0, 2, 3, 1).numpy() - spec_lab8(rgb))
    assert diff.max() <= 2 and (diff > 0).mean() < 0.15  # fixed-point vs float: +-2 codes on ~6-14 %

    back = lab8_to_rgb(lab)
    assert back.dtype == torch.float32 and torch.equal(back * 255, (back * 255).round())
    error = (back - x).abs() * 255
    assert error.mean() < 1.5 and error.max() <= 30  # the 8-bit round trip is lossy (mean ~0.7)
    greys = torch.arange(256.0).view(1, 1, 1, 256).expand(1, 3, 1, 256) / 255
    assert ((lab8_to_rgb(rgb_to_lab8(greys)) - greys) * 255).round().abs().max() <= 1


def test_output_codes_are_truncated_and_clipped_as_tensor2im() -> None:
    v = torch.tensor([-0.2, 0.0, 100.99 / 255, 101.0 / 255, 254.999 / 255, 1.3]).view(1, 1, 1, 6).expand(1, 3, 1, 6)
    assert lab8_codes(v)[0, 0, 0].tolist() == [0, 0, 100, 101, 254, 255]


# --------------------------------------------------------------------------- forward, backward, masks


def test_masks_use_the_official_thresholds_and_11x11_dilation() -> None:
    net = LABNet(channels=8)
    raw = np.zeros((70, 80), np.uint8)
    raw[20:40, 30:50] = 255
    raw[50:60, 5:15] = 200  # shadow for training (> 0.5), not for testing (> 0.9)
    mask = torch.from_numpy(raw)[None, None].float() / 255
    for training, threshold in ((False, 0.9 * 255), (True, 0.5 * 255)):
        net.train(training)
        binary, dilated = net.prepare_mask(mask)
        expected = (raw > threshold).astype(np.uint8)
        assert np.array_equal(binary[0, 0].numpy(), expected)
        assert np.array_equal(dilated[0, 0].numpy(), cv2.dilate(expected, np.ones((11, 11), np.uint8)))


def test_tiny_forward_backward_and_rgb_path() -> None:
    torch.manual_seed(0)
    net = LABNet(channels=8, down_size=32)
    x = torch.rand(2, 3, 66, 72)
    mask = torch.zeros(2, 1, 66, 72)
    mask[0, :, 10:40, 20:50] = 1
    out = net(rgb_to_lab8(x), mask, lab=True)
    assert out.shape == (2, 3, 66, 72)
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    net.zero_grad(set_to_none=True)
    net(rgb_to_lab8(x), torch.zeros_like(mask), lab=True).mean().backward()  # no shadow anywhere
    assert all(p.grad is not None for p in net.parameters())  # DDP needs every parameter in the graph
    with pytest.raises(ConfigError, match="train.step"):
        net(x, mask)  # the OpenCV path has no gradient: training must go through LAB
    net.eval()
    with torch.no_grad():
        rgb = net(x, mask)
        small = net.forward_any_size(x[..., :40, :30], mask[..., :40, :30])  # padded to 65, cropped back
    assert rgb.shape == x.shape and torch.equal(rgb * 255, (rgb * 255).round())
    assert small.shape == (2, 3, 40, 30)


def test_perceptual_loss_is_the_official_sliced_vgg16(tmp_path: Path, monkeypatch) -> None:
    from torchvision.models.vgg import cfgs, make_layers

    from restore.methods.labnet.loss import LabNetPerceptualLoss, SobelGradientLoss

    torch.manual_seed(0)
    vgg = make_layers(cfgs["D"])  # ReLUs in place, as in the official network
    torch.save({f"features.{k}": v for k, v in vgg.state_dict().items()}, tmp_path / "vgg16.pth")
    pred, target = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)

    def official(x: torch.Tensor) -> list[torch.Tensor]:
        out, h = [x], x
        for a, b in ((0, 3), (3, 8), (8, 13), (13, 20), (20, 27)):
            h = vgg[a:b](h)  # the next slice's in-place ReLU rewrites the stored output
            out.append(h)
        return out

    with torch.no_grad():
        ref = sum(torch.nn.functional.l1_loss(p, t) / d
                  for p, t, d in zip(official(pred), official(target), (1.0, 2.6, 4.8, 3.7, 5.6, 0.15)))
    loss = LabNetPerceptualLoss(weights_path=str(tmp_path / "vgg16.pth"))
    torch.testing.assert_close(loss(pred, target), ref, rtol=1e-5, atol=1e-6)

    monkeypatch.setenv("RESTORE_VGG_WEIGHTS", str(tmp_path / "missing.pth"))
    with pytest.raises(MissingWeightsError, match="missing.pth"):
        LabNetPerceptualLoss()

    def sobel(a: np.ndarray, kernel: list[list[int]]) -> np.ndarray:  # cross-correlation, zero padding 1
        p = np.pad(a, 1)
        return sum(kernel[i][j] * p[i : i + a.shape[0], j : j + a.shape[1]] for i in range(3) for j in range(3))

    kx, ky = [[1, 0, -1], [2, 0, -2], [1, 0, -1]], [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]
    x, y = np.random.default_rng(1).random((2, 1, 2, 9, 11))
    ref = sum(np.abs(sobel(x[0, c], k) - sobel(y[0, c], k)).mean() for k in (kx, ky) for c in range(2)) / 2
    assert SobelGradientLoss()(torch.from_numpy(x), torch.from_numpy(y)).item() == pytest.approx(ref, rel=1e-10)


# --------------------------------------------------------------------------- through the framework


def official_test_output(net: LABNet, image: Path, mask: Path) -> np.ndarray:
    """LAB-Net's test.py for one image, written from labnet.md §1.1-1.2: PIL RGB -> cv2 8-bit LAB
    -> ToTensor; PIL mask / 255 > 0.9, dilated with ones(11, 11); network; x255, clip,
    astype(uint8); cv2 LAB -> RGB."""
    rgb = np.array(Image.open(image).convert("RGB"))
    lab = torch.from_numpy(cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)).permute(2, 0, 1)[None].float().div(255)
    m = (np.array(Image.open(mask)).astype(np.float32) / 255 > 0.9).astype(np.float32)
    md = cv2.dilate(m, np.ones((11, 11), np.uint8))
    with torch.no_grad():
        out = net.forward_lab(lab, torch.from_numpy(m)[None, None], torch.from_numpy(md)[None, None])
    codes = np.clip(out[0].permute(1, 2, 0).numpy() * 255.0, 0, 255).astype(np.uint8)
    return cv2.cvtColor(codes, cv2.COLOR_LAB2RGB)


@pytest.fixture(scope="module")
def shadow_set(tmp_path_factory) -> Path:
    """ISTD layout with two 72x88 / 80x70 triplets; masks 0/255 plus patches at 200 (not shadow at
    test time) and 240 (shadow)."""
    root = tmp_path_factory.mktemp("ISTD")
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(((72, 88), (80, 70))):
        yy, xx = np.mgrid[:h, :w]
        base = np.stack([xx * 3 % 256, yy * 3 % 256, (xx + yy) * 2 % 256], -1)
        image = np.clip(base + rng.integers(-20, 21, (h, w, 3)), 0, 255).astype(np.uint8)
        mask = np.zeros((h, w), np.uint8)
        cv2.ellipse(mask, (w // 2, h // 2), (w // 6, h // 7), 0, 0, 360, 255, -1)
        mask[2:10, 2:12], mask[-10:-2, -12:-2] = 200, 240
        for folder, array in (("test_A", image), ("test_B", mask), ("test_C", np.clip(image.astype(int) + 30, 0, 255))):
            (root / "test" / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(array.astype(np.uint8)).save(root / "test" / folder / f"{i}-1.png")
    return root


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> tuple[Path, LABNet]:
    torch.manual_seed(0)
    net = LABNet(channels=8, down_size=64).eval()
    path = tmp_path_factory.mktemp("w") / "best_net_G.pth"
    torch.save(net.state_dict(), path)  # the official layout
    return path, net


def test_restore_infer_gives_the_official_test_outputs(tmp_path, shadow_set, tiny_weights, capsys) -> None:
    weights, net = tiny_weights
    test = shadow_set / "test"
    # down_size only sets where the attention runs, identically in both paths; 64 keeps the test fast
    code = main(["infer", "-opt", str(ROOT / "options/labnet/infer/labnet_istd.yml"), "--set", "network.channels=8",
                 "--set", "network.down_size=64", "--set", "device=cpu", "--weights", str(weights),
                 "--input", str(test / "test_A"),
                 "--mask-dir", str(test / "test_B"), "--output", str(tmp_path / "out"), "--no-progress"])
    assert code == 0 and "restored 2" in capsys.readouterr().out
    for name in ("0-1.png", "1-1.png"):
        ours = np.array(Image.open(tmp_path / "out" / name))
        official = official_test_output(net, test / "test_A" / name, test / "test_B" / name)
        assert len(np.unique(official)) > 20  # a non-trivial image, not a saturated one
        assert np.array_equal(ours, official)


def test_restore_test_prints_lab_error_and_region_psnr_ssim(tmp_path, shadow_set, tiny_weights, capsys) -> None:
    weights, _ = tiny_weights
    sets = ("istd_test", "istd_test_native")
    code = main(["test", "-opt", str(ROOT / "options/labnet/test/labnet_istd.yml"), "--weights", str(weights),
                 "--device", "cpu", "--set", "network.channels=8", "--set", "network.down_size=64",
                 "--set", f"path.results_root={tmp_path}",
                 *[arg for s in sets for arg in ("--set", f"datasets.test.{s}.root={shadow_set}")],
                 *[arg for s in sets for arg in ("--set", f"datasets.test.{s}.num_workers=0")]])
    out = capsys.readouterr().out
    assert code == 0, out
    for metric in ("lab_mae_s", "lab_mae_ns", "psnr_s", "ssim_ns"):
        assert metric in out
    assert "shadow_a" in out and "shadow_b" in out


def test_trains_in_lab_space_with_the_official_loss(tmp_path, shadow_set, monkeypatch, capsys) -> None:
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    vgg = tmp_path / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in make_layers(cfgs["D"]).state_dict().items()}, vgg)
    monkeypatch.setenv("RESTORE_VGG_WEIGHTS", str(vgg))
    overrides = [
        "network.channels=8", "network.down_size=32", "device=cpu",
        f"datasets.train.root={shadow_set}", "datasets.train.split=test", "datasets.train.crop_size=66",
        "datasets.train.num_workers=0", f"datasets.val.istd_test.root={shadow_set}",
        "datasets.val.istd_test.num_workers=0",
        "train.total_iter=2", "train.val_every=2", "train.save_every=2", "train.log_every=1",
        f"path.experiments_root={tmp_path}",
    ]
    opt = ROOT / "options/labnet/train/labnet_istd.yml"
    assert main(["train", "-opt", str(opt), *[a for o in overrides for a in ("--set", o)]]) == 0
    assert "val istd_test (shadow_a)" in capsys.readouterr().out  # validated with the masks, in RGB
    assert "lab_mae_pp" in (tmp_path / "labnet_istd/train.log").read_text()
    first = json.loads((tmp_path / "labnet_istd/log.jsonl").read_text().splitlines()[0])
    terms = [first[f"train/loss_{name}"] for name in ("labnet_perceptual", "sobel_gradient", "l2")]
    assert first["train/loss"] == pytest.approx(terms[0] + 10 * terms[1] + 100 * terms[2], rel=1e-5)
    models = tmp_path / "labnet_istd" / "models"
    assert (models / "final.pth").is_file()
    test_options = ROOT / "options/labnet/test/labnet_istd.yml"
    from restore.config import load_options

    assert Path(load_options(test_options).path.pretrained).name in {p.name for p in models.iterdir()}
