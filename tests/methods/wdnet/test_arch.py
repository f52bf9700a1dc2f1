"""WDNet against the official key listing and parameter counts, an independent re-implementation
of the spec's forward, and the official prediction scripts run through `restore infer`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from key_listings import key_listing
from PIL import Image

from restore.cli.main import main
from restore.engine.checkpoint import load_weights
from restore.errors import ConfigError
from restore.methods.wdnet.arch import OFFICIAL_DILATIONS, WDNet

ROOT = Path(__file__).resolve().parents[3]
TINY = dict(channels=16, growth=8, dilations=[1, 3])
TINY_SET = ["--set", "network.channels=16", "--set", "network.growth=8", "--set", "network.dilations=[1, 3]"]


@pytest.fixture(scope="module")
def official_keys() -> dict[str, list[int]]:
    return key_listing("wdnet.json")


def randomized(net: WDNet, seed: int = 0, std: float = 0.05) -> WDNet:
    """Random weights and biases (the official init is nearly an identity, which would hide wiring bugs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return net.eval()


# ------------------------------------------------------------------ an independent reference (spec §1-3)


def haar1(x):
    a, b, c, d = x[..., 0::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    return [(a + b + c + d) / 2, (a - b + c - d) / 2, (a + b - c - d) / 2, (a - b - c + d) / 2]


def haar1_inverse(ll, dw, dh, dd):
    out = ll.new_zeros(*ll.shape[:-2], 2 * ll.shape[-2], 2 * ll.shape[-1])
    out[..., 0::2, 0::2] = (ll + dw + dh + dd) / 2
    out[..., 0::2, 1::2] = (ll - dw + dh - dd) / 2
    out[..., 1::2, 0::2] = (ll + dw - dh - dd) / 2
    out[..., 1::2, 1::2] = (ll - dw - dh + dd) / 2
    return out


def ref_wavelet(x):
    return torch.stack([child for band in haar1(x) for child in haar1(band)], 1).flatten(1, 2)


def ref_wavelet_inverse(y):
    y = y.unflatten(1, (16, 3))
    return haar1_inverse(*(haar1_inverse(*(y[:, 4 * f + c] for c in range(4))) for f in range(4)))


def ref_shift(x):
    src = torch.tensor([105.648186, 95.4836, 86.4105]).view(1, 3, 1, 1)
    tgt = torch.tensor([121.2556, 114.89969, 102.02478]).view(1, 3, 1, 1)
    x = (x * 255 - src) / 255 + 0.5
    return ((x - 0.5) * 255 + tgt) / 255


def tf_same_conv(x, sd, key, dilation=1):
    """The official custom Conv2d: TF 'same' padding computed in forward (stride 1)."""
    w = sd[key + ".weight"]
    total = (w.shape[-1] - 1) * dilation
    x = F.pad(x, (total // 2, total - total // 2, total // 2, total - total // 2))
    return F.conv2d(x, w, sd[key + ".bias"], dilation=dilation)


def ref_generator(z, sd, dilations, deli_twice=False):
    """``deli_twice``: evaluate each block's dilated conv a second time for ``deli2``'s input, as
    the official ``DMDB2.forward`` does (spec 3.2): same values, the official amount of work."""
    act = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731

    def conv(t, key):  # conv_block's nn.Conv2d, padding 1
        return F.conv2d(t, sd[key + ".weight"], sd[key + ".bias"], padding=1)

    def rdb(x, p):
        x1 = act(conv(x, p + "conv1.0"))
        x2 = act(conv(torch.cat((x, x1), 1), p + "conv2.0"))
        x3 = act(conv(torch.cat((x, x1, x2), 1), p + "conv3.0"))
        x4 = act(conv(torch.cat((x, x1, x2, x3), 1), p + "conv4.0"))
        return 0.2 * conv(torch.cat((x, x1, x2, x3, x4), 1), p + "conv5.0")

    h = act(tf_same_conv(act(tf_same_conv(z, sd, "cascade1.0")), sd, "cascade1.2"))
    for i, d in enumerate(dilations):
        p = f"cascade2.{i}."
        b = rdb(rdb(h, p + "RDB1.") + h, p + "RDB2.")
        q = act(tf_same_conv(h, sd, p + "deli.0", d))
        q2 = act(tf_same_conv(h, sd, p + "deli.0", d)) if deli_twice else q
        h = 0.2 * b + q + 0.2 * act(tf_same_conv(q2, sd, p + "deli2.0"))
    return F.conv2d(h, sd["final.0.0.weight"], sd["final.0.0.bias"])


def ref_wdnet(x, sd, dilations=OFFICIAL_DILATIONS, deli_twice=False):
    """Spec §1 for H, W multiples of 4, and predict_ldbuilding's nearest-resize rule otherwise."""
    xs = ref_shift(x)
    h, w = x.shape[-2:]
    core = xs[..., : h - h % 4, : w - w % 4]
    out = ref_wavelet_inverse(ref_generator(ref_wavelet(core), sd, dilations, deli_twice))
    if out.shape[-2:] != (h, w):
        out = F.interpolate(out, size=(h, w))
    return out + xs


# ------------------------------------------------------------------ keys, sizes, loading


def test_state_dict_matches_the_official_listing(official_keys):
    state = WDNet().state_dict()
    assert list(state) == list(official_keys)  # also: no buffers (filters, means) in it
    assert {k: list(v.shape) for k, v in state.items()} == official_keys


def test_parameter_counts_are_the_specs():
    net = WDNet()
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(net) == 3_919_280
    assert count(net) - count(net.xbranch) == 3_917_488
    assert count(net.cascade1) == 40_064 and count(net.final) == 3_120
    block = net.cascade2[0]
    assert count(block) == 553_472 and count(block.RDB1) == 239_808 and count(block.deli) == 36_928
    assert [m.deli[0].dilation[0] for m in net.cascade2] == list(OFFICIAL_DILATIONS)


def test_official_checkpoints_load_strictly_with_or_without_module_prefix(tmp_path):
    source = randomized(WDNet(**TINY))
    x = torch.rand(1, 3, 16, 20)
    for name, state in (("lastest.pth", source.state_dict()),
                        ("dp.pth", {"module." + k: v for k, v in source.state_dict().items()})):
        torch.save(state, tmp_path / name)
        target = WDNet(**TINY)
        load_weights(target, tmp_path / name, strict=True)
        assert torch.equal(target.eval()(x), source(x))
    with pytest.raises(ConfigError, match="shape mismatch"):
        load_weights(WDNet(channels=8, growth=8, dilations=[1, 3]), tmp_path / "dp.pth")
    with pytest.raises(ConfigError, match="unexpected keys: cascade2.1"):
        load_weights(WDNet(channels=16, growth=8, dilations=[1]), tmp_path / "dp.pth")


def test_official_init_is_a_centre_identity():
    net = WDNet(**TINY)
    w = net.cascade1[0].weight  # 48 -> 16, 1x1
    assert torch.equal(w[:, :, 0, 0], torch.eye(16, 48))
    w = net.cascade2[1].deli[0].weight
    centre = torch.zeros_like(w)
    centre[:, :, 1, 1] = torch.eye(16)
    assert torch.equal(w, centre)


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="size_rule"):
        WDNet(size_rule="crop")
    with pytest.raises(ConfigError, match="input_crop"):
        WDNet(input_crop="center")
    with pytest.raises(ConfigError, match="dilations"):
        WDNet(dilations=[1, 0])


# ------------------------------------------------------------------ forward


def test_mean_shift_is_the_official_one():
    x = torch.rand(2, 3, 8, 8)
    shifted = WDNet(**TINY).shift(x)
    per_channel = (shifted - x).mean((0, 2, 3)) * 255
    torch.testing.assert_close(per_channel, torch.tensor([15.6074, 19.4161, 15.6143]), rtol=0, atol=1e-4)
    assert torch.equal(shifted, ref_shift(x))  # the two float32 steps, bit for bit


def test_full_size_forward_equals_the_reference():
    net = randomized(WDNet(), seed=1, std=0.02)
    x = torch.rand(1, 3, 32, 36)
    with torch.no_grad():
        torch.testing.assert_close(net(x), ref_wdnet(x, net.state_dict()), rtol=0, atol=2e-5)
        # the official double evaluation of the dilated conv (timed by benchmarks/) changes nothing
        assert torch.equal(ref_wdnet(x, net.state_dict(), deli_twice=True), ref_wdnet(x, net.state_dict()))


def test_sizes_that_are_not_multiples_of_4():
    net = randomized(WDNet(**TINY))
    x = torch.rand(1, 3, 23, 30)
    with torch.no_grad():
        out = net(x)
        torch.testing.assert_close(out, ref_wdnet(x, net.state_dict(), TINY["dilations"]), rtol=0, atol=1e-5)
        net.size_rule = "pad"
        padded = F.pad(x, (0, 2, 0, 1), mode="reflect")
        torch.testing.assert_close(net(x), net(padded)[..., :23, :30], rtol=0, atol=0)


def test_tiny_forward_backward_on_cpu():
    net = randomized(WDNet(**TINY)).train()  # (the official init's zero weights pass no gradient)
    x, target = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    out = net(x)
    assert out.shape == x.shape
    F.l1_loss(out, target).backward()
    grads = {n: p.grad for n, p in net.named_parameters()}
    assert all(g is None for n, g in grads.items() if n.startswith("xbranch"))  # never called
    used = [g for n, g in grads.items() if not n.startswith("xbranch")]
    assert all(g is not None and torch.isfinite(g).all() for g in used)
    assert sum(int(g.abs().sum() > 0) for g in used) == len(used)


# ------------------------------------------------------------------ the official prediction scripts


def official_tip2018_prediction(path: Path, sd, dilations) -> tuple[np.ndarray, np.ndarray]:
    """predict_TIP2018.py: crop (w/6, h/6, 5w/6, 5h/6), PIL bilinear 256x256, ToTensor, WDNet,
    x255, clamp, np.uint8 (truncation). Also returns the float 255*y for the tie check."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    img = img.crop((int(w / 6), int(h / 6), int(5 * w / 6), int(5 * h / 6))).resize((256, 256), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None].float().div(255)
    with torch.no_grad():
        y = torch.clamp(ref_wdnet(x, sd, dilations) * 255, 0, 255)[0].permute(1, 2, 0).numpy()
    return np.uint8(y), y


def official_fullres_prediction(path: Path, sd, dilations) -> tuple[np.ndarray, np.ndarray]:
    """predict_ldbuilding.py: the whole image, nearest-resize rule, x255, clamp, np.uint8."""
    x = torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).copy()).permute(2, 0, 1)[None].float().div(255)
    with torch.no_grad():
        y = torch.clamp(ref_wdnet(x, sd, dilations) * 255, 0, 255)[0].permute(1, 2, 0).numpy()
    return np.uint8(y), y


def write_inputs(folder: Path) -> list[Path]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    paths = []
    for i, (h, w) in enumerate([(97, 130), (120, 90), (64, 64)]):
        smooth = np.kron(rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3)), np.ones((8, 8, 1)))[:h, :w]
        noisy = np.clip(smooth + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
        paths.append(folder / f"{i}.png")
        Image.fromarray(noisy).save(paths[-1])
    return paths


def assert_same_except_ties(ours: np.ndarray, official: np.ndarray, official_float: np.ndarray) -> None:
    diff = ours.astype(int) - official.astype(int)
    near_integer = np.abs(official_float - np.round(official_float)) < 1e-3
    assert np.abs(diff).max() <= 1
    assert not (diff != 0)[~near_integer].any(), "differences away from quantisation ties"
    assert (diff == 0).mean() > 0.999


@pytest.mark.parametrize(
    "option_file, official",
    [("wdnet_tip2018.yml", official_tip2018_prediction), ("wdnet_fullres.yml", official_fullres_prediction)],
)
def test_restore_infer_reproduces_the_official_prediction(tmp_path, option_file, official):
    net = randomized(WDNet(**TINY), seed=2, std=0.04)
    sd = net.state_dict()
    weights = tmp_path / "generator_59.pth"
    torch.save({"module." + k: v for k, v in sd.items()}, weights)  # DataParallel, as the GPU script loads
    inputs = write_inputs(tmp_path / "in")
    code = main(["infer", "-opt", str(ROOT / "options" / "wdnet" / "infer" / option_file), *TINY_SET, "--device", "cpu",
                 "--weights", str(weights), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                 "--no-progress"])
    assert code == 0
    for path in inputs:
        ours = np.asarray(Image.open(tmp_path / "out" / path.name))
        expected, expected_float = official(path, sd, TINY["dilations"])
        assert ours.shape == expected.shape
        assert_same_except_ties(ours, expected, expected_float)


def test_emulated_truncation_and_crop_act_only_at_inference():
    net = randomized(WDNet(**TINY, input_crop="tip2018", emulate_truncation=True))
    pixels = np.random.default_rng(0).integers(0, 256, (40, 44, 3), dtype=np.uint8)
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 255
    cropped = Image.fromarray(pixels).crop((7, 6, 36, 33)).resize((256, 256), Image.BILINEAR)
    xc = torch.from_numpy(np.asarray(cropped).copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        assert net(x).shape == x.shape  # plain forward (training, restore test): neither applies
        torch.testing.assert_close(net.forward_any_size(x), net(xc) - 0.5 / 255, rtol=0, atol=0)


# ------------------------------------------------------------------ the training recipe


def test_the_training_option_file_runs_with_its_losses(tmp_path, monkeypatch):
    """One iteration of options/wdnet/train/wdnet_lcdmoire.yml (tiny net, 32-px crops) with the full
    official loss: L1, VGG19 perceptual (weights at the documented default place, the torch hub cache), wavelet terms."""
    from torchvision.models.vgg import cfgs, make_layers

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # the default place: the torch hub cache
    monkeypatch.delenv("RESTORE_VGG_WEIGHTS", raising=False)
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    features = make_layers(cfgs["E"][:5])  # up to relu2_2, all the loss reads
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, hub / "vgg19-dcbb9e9d.pth")
    rng = np.random.default_rng(0)
    for folder in ("moire", "clear"):
        Path(folder).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (40, 44, 3), dtype=np.uint8)).save(f"{folder}/{i:06d}.png")
    sets = [f"datasets.{s}.{k}={v}" for s in ("train", "val.lcdmoire_val")
            for k, v in (("input_dir", "moire"), ("target_dir", "clear"))]
    code = main(["train", "-opt", str(ROOT / "options" / "wdnet" / "train" / "wdnet_lcdmoire.yml"), *TINY_SET,
                 *[arg for s in sets for arg in ("--set", s)],
                 "--set", "datasets.train.crop_size=32", "--set", "datasets.train.batch_size=2",
                 "--set", "datasets.train.num_workers=0", "--set", "train.total_iter=1",
                 "--set", "train.log_every=1", "--set", "path.experiments_root=exp"])
    assert code == 0
    logs = [json.loads(line) for line in Path("exp/wdnet_lcdmoire/log.jsonl").read_text().splitlines()]
    terms = {f"train/loss_{t}" for t in ("l1", "perceptual", "wavelet_l1", "wavelet_l1_1", "wavelet_texture")}
    assert any(terms <= set(entry) for entry in logs), logs[-1]
    assert Path("exp/wdnet_lcdmoire/models/final.pth").is_file()
