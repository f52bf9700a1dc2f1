"""Uformer against the official key listings and parameter counts, a loop-by-loop reference of
the LeWin block, the official test-time padding, and `restore infer` parity with the official
test procedure (random weights saved in the official checkpoint layout)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from key_listings import key_listing
from lewin_blocks import small_lewin_block

from restore.archs.window_attention import LeWinBlock
from restore.cli.main import main
from restore.config import load_options
from restore.engine.checkpoint import load_weights
from restore.engine.inference import Restorer
from restore.engine.network import build_network
from restore.errors import ConfigError
from restore.methods.uformer.arch import Uformer, UformerB, UformerS, UformerT

from .official import official_test

ROOT = Path(__file__).resolve().parents[3]
# Spec uformer.md section 1, measured on the official class.
PARAMS = {"T": 5_291_853, "S": 20_751_197, "B": 50_880_946}
VARIANTS = {"T": UformerT, "S": UformerS, "B": UformerB}
TINY = dict(embed_dim=8, depths=[1, 1, 1, 1, 1, 1, 1, 1, 1], modulator=True, drop_path_rate=0.0)
SHRINK = ["network.embed_dim=8", "network.depths=[1,1,1,1,1,1,1,1,1]"]  # --set overrides


def listing(variant: str) -> dict:
    return key_listing(f"uformer_{variant}.json")


@pytest.mark.parametrize("variant", ["T", "S", "B"])
def test_state_dict_and_parameter_count_match_the_official_listing(variant: str) -> None:
    official = listing(variant)
    with torch.device("meta"):  # shapes only: no time spent initialising 50 M weights
        model = VARIANTS[variant]()
    state = model.state_dict()
    assert list(state) == list(official["state_dict"])
    assert {k: list(v.shape) for k, v in state.items()} == official["state_dict"]
    buffers = {name for name, _ in model.named_buffers()}
    assert buffers == set(official["buffers"])
    assert all(state[k].dtype == torch.int64 for k in buffers)
    assert len(state) == official["num_keys"]
    count = sum(p.numel() for p in model.parameters())
    assert count == official["num_params"] == PARAMS[variant]


def test_variant_classes_fix_their_preset() -> None:
    with pytest.raises(ConfigError, match="fixes embed_dim"):
        UformerT(embed_dim=8)
    with pytest.raises(ConfigError, match="token_mlp"):
        Uformer(**TINY, token_mlp="fastleff")
    with pytest.raises(ConfigError, match="divisible"):
        Uformer(embed_dim=8, depths=[1] * 9, num_heads=[3] * 9)


def test_relative_position_index_is_the_specs_formula() -> None:
    m = 8
    expected = torch.tensor([
        [(ri - rj + m - 1) * (2 * m - 1) + (ci - cj + m - 1) for rj in range(m) for cj in range(m)]
        for ri in range(m) for ci in range(m)
    ])
    index = Uformer(**TINY).conv.blocks[0].attn.relative_position_index
    assert index.dtype == torch.int64 and torch.equal(index, expected)


def test_img_size_sets_shift_and_window_as_the_official_build() -> None:
    # 128: bottleneck resolution 8 <= window 8 -> no shift there; every other odd block shifts.
    net = Uformer(**{**TINY, "depths": [2] * 9}, img_size=128)
    assert [b.shift_size for b in net.conv.blocks] == [0, 0]
    assert [b.shift_size for b in net.encoderlayer_3.blocks] == [0, 4]
    assert [b.shift_size for b in net.decoderlayer_3.blocks] == [0, 4]
    net256 = Uformer(**{**TINY, "depths": [2] * 9}, img_size=256)
    assert [b.shift_size for b in net256.conv.blocks] == [0, 4]
    with torch.device("meta"):  # 64 shrinks the bottleneck window to 4: bias table 49 x 16 (spec 4.3)
        b64 = UformerB(img_size=64)
    assert b64.conv.blocks[0].attn.relative_position_bias_table.shape == (49, 16)
    assert b64.size_multiple == 64
    # Uformer-B: single blocks at full resolution -> no shifted attention there (spec 4.1).
    with torch.device("meta"):
        b = UformerB()
    assert b.encoderlayer_0.blocks[0].shift_size == b.decoderlayer_3.blocks[0].shift_size == 0

    torch.manual_seed(0)
    small = {**TINY, "depths": [1, 1, 1, 1, 2, 1, 1, 1, 1]}
    net, net256 = Uformer(**small, img_size=128).eval(), Uformer(**small, img_size=256).eval()
    net256.load_state_dict(net.state_dict())
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        assert (net(x) - net256(x)).abs().max() > 1e-6  # same weights, different forward


# --------------------------------------------------------------------------- LeWin block reference


def reference_block(blk: LeWinBlock, x: torch.Tensor) -> torch.Tensor:
    """The LeWin block of spec section 4, token by token, window by window, head by head."""
    b_, h_, w_, c = x.shape
    m, s = blk.win_size, blk.shift_size
    heads = blk.attn.heads
    d = c // heads
    table = blk.attn.relative_position_bias_table
    wq, bq = blk.attn.qkv.to_q.weight, blk.attn.qkv.to_q.bias
    wkv, bkv = blk.attn.qkv.to_kv.weight, blk.attn.qkv.to_kv.bias

    def band(p: int, size: int) -> int:
        return 0 if p < size - m else (1 if p < size - s else 2)

    t = F.layer_norm(x, (c,), blk.norm1.weight, blk.norm1.bias, 1e-5)
    t = torch.roll(t, (-s, -s), (1, 2)) if s else t
    attended = torch.zeros_like(t)
    for b in range(b_):
        for wy in range(h_ // m):
            for wx in range(w_ // m):
                coords = [(wy * m + i, wx * m + j) for i in range(m) for j in range(m)]
                tokens = torch.stack([t[b, r, q] for r, q in coords])
                if blk.modulator is not None:
                    tokens = tokens + blk.modulator.weight
                q, kv = tokens @ wq.T + bq, tokens @ wkv.T + bkv
                k, v = kv[:, :c], kv[:, c:]
                idx = torch.tensor([[(ri - rj + m - 1) * (2 * m - 1) + (ci - cj + m - 1) for rj, cj in coords]
                                    for ri, ci in coords])
                labels = [3 * band(r, h_) + band(q_, w_) for r, q_ in coords]
                mask = torch.tensor([[0.0 if li == lj or not s else -100.0 for lj in labels] for li in labels])
                outs = []
                for h in range(heads):
                    sl = slice(h * d, (h + 1) * d)
                    logits = (q[:, sl] * d**-0.5) @ k[:, sl].T + table[idx, h] + mask
                    outs.append(logits.softmax(-1) @ v[:, sl])
                out = torch.cat(outs, 1) @ blk.attn.proj.weight.T + blk.attn.proj.bias
                for n, (r, q_) in enumerate(coords):
                    attended[b, r, q_] = out[n]
    attended = torch.roll(attended, (s, s), (1, 2)) if s else attended
    x = x + attended
    y = F.layer_norm(x, (c,), blk.norm2.weight, blk.norm2.bias, 1e-5)
    lin1, dw, lin2 = blk.mlp.linear1[0], blk.mlp.dwconv[0], blk.mlp.linear2[0]
    y = F.gelu(y @ lin1.weight.T + lin1.bias).permute(0, 3, 1, 2)
    y = F.gelu(F.conv2d(y, dw.weight, dw.bias, padding=1, groups=y.shape[1])).permute(0, 2, 3, 1)
    return x + y @ lin2.weight.T + lin2.bias


@pytest.mark.parametrize("shift", [False, True])
def test_lewin_block_equals_the_loop_reference(shift: bool) -> None:
    blk = small_lewin_block(shift, seed=1)
    x = torch.randn(2, 8, 12, 8)  # rectangular, 2 x 3 windows
    assert blk.shift_size == (2 if shift else 0)
    with torch.no_grad():
        torch.testing.assert_close(blk(x), reference_block(blk, x), atol=1e-5, rtol=1e-5)


def test_network_wiring_follows_the_spec_data_flow() -> None:
    """Input conv + LeakyReLU(0.01), concat [upsampled, skip], output conv, global residual."""
    torch.manual_seed(2)
    net = Uformer(**TINY).eval()
    x = torch.rand(1, 3, 128, 128)

    def stage(layer, t):  # (B, C, H, W) through the stage's blocks
        t = t.permute(0, 2, 3, 1)
        for blk in layer.blocks:
            t = blk(t)
        return t.permute(0, 3, 1, 2)

    with torch.no_grad():
        conv = net.input_proj.proj[0]
        y = F.leaky_relu(F.conv2d(x, conv.weight, conv.bias, padding=1), 0.01)
        skips = []
        for i in range(4):
            y = stage(getattr(net, f"encoderlayer_{i}"), y)
            skips.append(y)
            down = getattr(net, f"dowsample_{i}").conv[0]
            y = F.conv2d(y, down.weight, down.bias, stride=2, padding=1)
        y = stage(net.conv, y)
        for i in range(4):
            up = getattr(net, f"upsample_{i}").deconv[0]
            y = torch.cat([F.conv_transpose2d(y, up.weight, up.bias, stride=2), skips[3 - i]], 1)
            y = stage(getattr(net, f"decoderlayer_{i}"), y)
        out = net.output_proj.proj[0]
        expected = x + F.conv2d(y, out.weight, out.bias, padding=1)
        torch.testing.assert_close(net(x), expected, atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- options, training


@pytest.mark.parametrize("options", [dict(token_projection="conv"), dict(token_mlp="ffn")])
def test_tiny_forward_backward(options: dict) -> None:
    torch.manual_seed(3)
    net = Uformer(**TINY, **options).train()
    x = torch.rand(1, 3, 128, 128)
    out = net(x)
    assert out.shape == x.shape
    (out - x.flip(-1)).abs().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    assert net.conv.blocks[0].attn.relative_position_bias_table.grad.abs().sum() > 0
    assert net.decoderlayer_0.blocks[0].modulator.weight.grad.abs().sum() > 0
    keys = net.state_dict()
    if options.get("token_projection") == "conv":
        assert {"conv.blocks.0.attn.qkv.to_q.depthwise.weight", "conv.blocks.0.attn.qkv.to_v.pointwise.bias"} <= set(keys)
    if options.get("token_mlp") == "ffn":
        assert "conv.blocks.0.mlp.fc1.weight" in keys


def test_checkpointing_gives_the_same_gradients() -> None:
    torch.manual_seed(4)
    plain, ckpt = Uformer(**TINY).train(), Uformer(**TINY, use_checkpoint=True).train()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.rand(1, 3, 128, 128)
    for net in (plain, ckpt):
        net(x).square().mean().backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-6, rtol=1e-4, msg=name)


def test_mask_input_concatenates_the_mask_as_dd_in_4() -> None:
    torch.manual_seed(5)
    masked = Uformer(**TINY, dd_in=4, mask_input=True).eval()
    plain4 = Uformer(**TINY, dd_in=4).eval()
    plain4.load_state_dict(masked.state_dict())
    x, mask = torch.rand(1, 3, 128, 128), (torch.rand(1, 1, 128, 128) > 0.5).float()
    assert masked.input_keys == ("input", "mask") and plain4.input_keys == ("input",)
    with torch.no_grad():
        y = masked(x, mask)
        torch.testing.assert_close(y, plain4(torch.cat([x, mask], 1)))  # official dd_in != 3: no residual
        with_residual = Uformer(**TINY, dd_in=4, mask_input=True, residual=True).eval()
        with_residual.load_state_dict(masked.state_dict())
        torch.testing.assert_close(with_residual(x, mask), x + y)
        out = masked.forward_any_size(x[..., :50, :90], mask[..., :50, :90])
    assert out.shape == (1, 3, 50, 90)
    with pytest.raises(ConfigError, match="dd_in == in_chans \\+ 1"):
        Uformer(**TINY, mask_input=True)


def test_forward_rejects_sizes_off_the_multiple() -> None:
    with pytest.raises(ValueError, match="divisible by 128"):
        Uformer(**TINY)(torch.rand(1, 3, 128, 96))


# --------------------------------------------------------------------------- size rule and parity


@pytest.fixture(scope="module")
def official_file(tmp_path_factory) -> tuple[Path, Uformer]:
    """Random tiny weights saved the way the official training code saves them."""
    torch.manual_seed(6)
    model = Uformer(**TINY).eval()
    with torch.no_grad():
        model.output_proj.proj[0].weight.mul_(20)  # a visible residual, so padding errors show
    path = tmp_path_factory.mktemp("uformer") / "Uformer_B.pth"
    state = {"module." + k: v for k, v in model.state_dict().items()}
    torch.save({"epoch": 250, "state_dict": state, "optimizer": {"state": {}, "param_groups": []}}, path)
    return path, model


def test_official_file_loads_strictly_and_misfits_are_named(official_file, tmp_path) -> None:
    path, model = official_file
    loaded = Uformer(**TINY).eval()
    load_weights(loaded, path, strict=True)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    no_mod = {k: v for k, v in model.state_dict().items() if "modulator" not in k}
    bare = tmp_path / "bare.pth"
    torch.save(no_mod, bare)  # a bare state_dict is accepted too
    with pytest.raises(ConfigError, match=r"missing keys: decoderlayer_0\.blocks\.0\.modulator\.weight"):
        load_weights(Uformer(**TINY), bare)
    with pytest.raises(ConfigError, match="unexpected keys: decoderlayer_0.blocks.0.modulator.weight"):
        load_weights(Uformer(**{**TINY, "modulator": False}), path)


@pytest.mark.parametrize("size", [(37, 70), (128, 128)])
def test_square_rule_is_the_official_padding(official_file, size: tuple[int, int]) -> None:
    _, model = official_file
    torch.manual_seed(7)
    x = torch.rand(1, 3, *size)
    with torch.no_grad():
        out = model.forward_any_size(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out.clamp(0, 1), official_test(model, x), atol=1e-5, rtol=0)


def test_multiple_rule_pads_each_side_to_the_window_multiple(official_file) -> None:
    _, official = official_file
    model = Uformer(**TINY, pad="multiple").eval()
    model.load_state_dict(official.state_dict())
    x = torch.rand(1, 3, 100, 120)
    padded = F.pad(x, (0, 128 - 120, 0, 128 - 100), mode="reflect")  # bottom/right, reflect
    with torch.no_grad():
        out = model.forward_any_size(x)
        torch.testing.assert_close(out, model(padded)[..., :100, :120])
        assert (out - official.forward_any_size(x)).abs().max() > 1e-3  # not the official rule


@pytest.mark.parametrize("option_file", ["uformer_b_sidd.yml", "uformer_b_gopro.yml"])
def test_engine_float_output_equals_the_official_procedure(official_file, option_file: str) -> None:
    path, model = official_file
    options = load_options(ROOT / "options" / "uformer" / "infer" / option_file, SHRINK)
    net = build_network(options)
    load_weights(net, path)
    restorer = Restorer.from_options(net.eval(), options.infer, "cpu")
    x = torch.rand(1, 3, 131, 45)
    torch.testing.assert_close(restorer(x).clamp(0, 1), official_test(model, x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("option_file", ["uformer_b_sidd.yml", "uformer_b_gopro.yml"])
def test_restore_infer_matches_the_official_test_script(official_file, tmp_path, option_file: str) -> None:
    path, model = official_file
    rng = np.random.default_rng(8)
    sizes = {"a.png": (45, 70), "sub/b.png": (97, 33)}  # the >128 case is in the float test above
    for name, (h, w) in sizes.items():
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / "in" / name), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    code = main(["infer", "-opt", str(ROOT / "options" / "uformer" / "infer" / option_file),
                 *(arg for item in SHRINK for arg in ("--set", item)), "--weights", str(path),
                 "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--device", "cpu",
                 "--no-progress"])
    assert code == 0
    for name in sizes:
        rgb = cv2.cvtColor(cv2.imread(str(tmp_path / "in" / name)), cv2.COLOR_BGR2RGB)
        x = torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        ref = (official_test(model, x)[0].permute(1, 2, 0).numpy() * 255.0).astype(np.float64)
        got = cv2.cvtColor(cv2.imread(str(tmp_path / "out" / name)), cv2.COLOR_BGR2RGB)
        tie = np.abs(ref - np.floor(ref) - 0.5) < 1e-3
        assert np.all((got == np.round(ref)) | tie), name
        assert np.abs(got.astype(int) - rgb.astype(int)).max() > 10  # the network did change the image
