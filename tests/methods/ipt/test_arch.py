"""IPT against the official key listings, parameter counts, an independent transcription of the
official network (nn.MultiheadAttention, sequence-first) and of the official patch-wise test
procedure (spec §4, written as plain loops), and `restore infer` with every IPT option file."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from key_listings import key_listing
from torch import Tensor, nn

from restore.cli.main import main
from restore.config import load_options
from restore.data.image_io import read_image
from restore.engine.checkpoint import load_weights
from restore.engine.inference import Restorer
from restore.engine.network import build_network
from restore.errors import ConfigError
from restore.methods.ipt.arch import IPT, PRETRAIN_TASKS, Attention
from restore.methods.ipt.patches import forward_chop

ROOT = Path(__file__).resolve().parents[3]
LAYOUTS = {  # listing -> constructor arguments
    "ipt.json": {"scale": [2, 3, 4, 1, 1, 1], "num_queries": 6},
    "ipt_x1.json": {"scale": [1]},
    "ipt_x2.json": {"scale": [2]},
    "ipt_x3.json": {"scale": [3]},
    "ipt_x4.json": {"scale": 4},
}
# Measured parameter counts of shared/specs/ipt.md §1 (frozen MeanShift parameters included).
SPEC_COUNTS = {"ipt.json": 118_892_394, "ipt_x1.json": 115_312_731, "ipt_x2.json": 115_460_443,
               "ipt_x3.json": 115_645_083, "ipt_x4.json": 115_608_155}
INFER_FILES = {"ipt_denoise30": "ipt_x1.json", "ipt_denoise50": "ipt_x1.json", "ipt_derain": "ipt_x1.json",
               "ipt_sr_x2": "ipt_x2.json", "ipt_sr_x3": "ipt_x3.json", "ipt_sr_x4": "ipt_x4.json"}
TINY = {"n_feats": 4, "num_heads": 4, "num_layers": 1}  # D = 36, still 48x48 inputs and 256 tokens
TINY_SET = [f"network.{k}={v}" for k, v in TINY.items()]


@pytest.fixture(scope="module", autouse=True)
def _no_onednn():
    """oneDNN builds kernels for every new conv shape (~0.3 s each); the tiny convs here are
    faster on the native path, and both paths compute the same thing."""
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    yield
    torch.backends.mkldnn.enabled = before


def meta_ipt(**kwargs) -> IPT:
    with torch.device("meta"):  # full size without allocating 460 MB
        return IPT(**kwargs)


# --------------------------------------------------------------------------- the official network, transcribed


class RefMeanShift(nn.Conv2d):
    def __init__(self, sign: int, rgb_range: float = 255.0) -> None:
        super().__init__(3, 3, 1)
        self.weight.data = torch.eye(3).view(3, 3, 1, 1)
        self.bias.data = sign * rgb_range * torch.tensor([0.4488, 0.4371, 0.4040])
        for p in self.parameters():
            p.requires_grad = False


class RefResBlock(nn.Module):
    def __init__(self, f: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(f, f, 5, padding=2), nn.ReLU(True), nn.Conv2d(f, f, 5, padding=2))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + x


def ref_tail(s: int, f: int) -> nn.Sequential:
    up: list[nn.Module] = []
    if s == 3:
        up = [nn.Conv2d(f, 9 * f, 3, padding=1), nn.PixelShuffle(3)]
    for _ in range({1: 0, 2: 1, 4: 2, 3: 0}[s]):
        up += [nn.Conv2d(f, 4 * f, 3, padding=1), nn.PixelShuffle(2)]
    return nn.Sequential(nn.Sequential(*up), nn.Conv2d(f, 3, 3, padding=1))


class RefEncoderLayer(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads, bias=False)
        self.linear1, self.linear2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, src: Tensor) -> Tensor:  # (L, B, D)
        s2 = self.norm1(src)
        src = src + self.self_attn(s2, s2, value=s2)[0]
        s2 = self.norm2(src)
        return src + self.linear2(F.relu(self.linear1(s2)))


class RefDecoderLayer(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads, bias=False)
        self.multihead_attn = nn.MultiheadAttention(d, heads, bias=False)
        self.linear1, self.linear2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, tgt: Tensor, memory: Tensor, query_pos: Tensor) -> Tensor:
        t2 = self.norm1(tgt)
        q = k = t2 + query_pos
        tgt = tgt + self.self_attn(q, k, value=t2)[0]
        t2 = self.norm2(tgt)
        tgt = tgt + self.multihead_attn(query=t2 + query_pos, key=memory, value=memory)[0]
        t2 = self.norm3(tgt)
        return tgt + self.linear2(F.relu(self.linear1(t2)))


class RefStack(nn.Module):
    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)


class RefPosition(nn.Module):
    def __init__(self, length: int, d: int) -> None:
        super().__init__()
        self.pe = nn.Embedding(length, d)
        self.register_buffer("position_ids", torch.arange(length).expand((1, -1)))


class RefBody(nn.Module):
    def __init__(self, f: int, heads: int, layers: int, queries: int, patch: int = 48, p: int = 3) -> None:
        super().__init__()
        d, length = f * p * p, (patch // p) ** 2
        self.p, self.patch, self.d, self.length = p, patch, d, length
        self.linear_encoding = nn.Linear(d, d)
        self.mlp_head = nn.Sequential(nn.Linear(d, 4 * d), nn.Dropout(0.0), nn.ReLU(), nn.Linear(4 * d, d), nn.Dropout(0.0))
        self.query_embed = nn.Embedding(queries, d * length)
        self.encoder = RefStack([RefEncoderLayer(d, heads) for _ in range(layers)])
        self.decoder = RefStack([RefDecoderLayer(d, heads) for _ in range(layers)])
        self.position_encoding = RefPosition(length, d)

    def forward(self, x: Tensor, query_idx: int) -> Tensor:
        b = x.shape[0]
        x = F.unfold(x, self.p, stride=self.p).transpose(1, 2).transpose(0, 1).contiguous()  # (L, B, D)
        x = self.linear_encoding(x) + x
        query = self.query_embed.weight[query_idx].view(-1, 1, self.d).repeat(1, b, 1)
        pos = self.position_encoding.pe(self.position_encoding.position_ids[:, : self.length]).transpose(0, 1)
        x = x + pos
        for layer in self.encoder.layers:
            x = layer(x)
        memory = x
        for layer in self.decoder.layers:
            x = layer(x, memory, query)
        x = self.mlp_head(x) + x
        x = x.transpose(0, 1).contiguous().view(b, -1, self.d)
        return F.fold(x.transpose(1, 2).contiguous(), self.patch, self.p, stride=self.p)


class RefIPT(nn.Module):
    """The official ``ipt`` module; input/output in [0, 255]; ``idx`` = the official ``set_scale``."""

    def __init__(self, scales: list[int], queries: int = 1, n_feats: int = 4, heads: int = 4, layers: int = 1) -> None:
        super().__init__()
        self.sub_mean, self.add_mean = RefMeanShift(-1), RefMeanShift(1)
        self.head = nn.ModuleList(
            nn.Sequential(nn.Conv2d(3, n_feats, 3, padding=1), RefResBlock(n_feats), RefResBlock(n_feats)) for _ in scales
        )
        self.body = RefBody(n_feats, heads, layers, queries)
        self.tail = nn.ModuleList(ref_tail(s, n_feats) for s in scales)
        self.idx = 0

    def forward(self, x: Tensor) -> Tensor:
        x = self.head[self.idx](self.sub_mean(x))
        res = self.body(x, self.idx) + x
        return self.add_mean(self.tail[self.idx](res))


def reference_weights(scales: list[int], queries: int = 1, seed: int = 0) -> RefIPT:
    """A tiny official-layout model with random weights whose outputs mostly stay inside [0, 255]."""
    torch.manual_seed(seed)
    ref = RefIPT(scales, queries).eval()
    with torch.no_grad():
        for tail in ref.tail:
            tail[1].weight.mul_(0.05)
    return ref


# --------------------------------------------------------------------------- the official test procedure, transcribed


def ref_chop(net, x: Tensor, s: int, patch: int = 48) -> Tensor:
    """Spec §4 step by step, one tile at a time: x (1, C, h, w) -> (1, C', s*h, s*w)."""
    _, _, h, w = x.shape
    shave, step = patch // 2, patch // 4  # 24 and 12
    hc, wc = (h - patch) % step, (w - patch) % step
    H, W = h - hc, w - wc
    m, P = step * s, patch * s

    def starts(n: int) -> list[int]:
        return [step * k for k in range((n - patch) // step + 1)]

    @functools.cache  # the same tile is used by several regions; the network is deterministic
    def tile(y0: int, x0: int) -> Tensor:
        return net(x[..., y0 : y0 + patch, x0 : x0 + patch])[0]

    def strip(tiles: list[Tensor], dim: int, length: int) -> Tensor:
        """Tiles laid along ``dim`` (1 rows, 2 cols), centres averaged, ends from the end tiles."""
        shape = list(tiles[0].shape)
        shape[dim] = length
        total, count = torch.zeros(shape, dtype=torch.float64), torch.zeros(length, dtype=torch.float64)
        for k, t in enumerate(tiles):
            o = k * m
            total.narrow(dim, o + m, P - 2 * m).add_(t.double().narrow(dim, m, P - 2 * m))
            count[o + m : o + P - m] += 1
        view = [1, 1, 1]
        view[dim] = length
        out = total / count.clamp(min=1).view(view)
        out.narrow(dim, 0, m).copy_(tiles[0].narrow(dim, 0, m))
        out.narrow(dim, length - m, m).copy_(tiles[-1].narrow(dim, P - m, m))
        return out

    canvas = torch.full((3, H * s, W * s), float("nan"), dtype=torch.float64)  # raw fold sums never survive
    canvas[:, :P, :] = strip([tile(0, x0) for x0 in starts(w)], 2, W * s)  # top strip
    canvas[:, :, :P] = strip([tile(y0, 0) for y0 in starts(h)], 1, H * s)  # left strip (wins on the corner)
    total = torch.zeros(3, (H - shave) * s, (W - shave) * s, dtype=torch.float64)
    count = torch.zeros((H - shave) * s, (W - shave) * s, dtype=torch.float64)
    for y0 in starts(h):
        for x0 in starts(w):
            centre = tile(y0, x0)[:, m : P - m, m : P - m].double()
            total[:, y0 * s : y0 * s + P - 2 * m, x0 * s : x0 * s + P - 2 * m] += centre
            count[y0 * s : y0 * s + P - 2 * m, x0 * s : x0 * s + P - 2 * m] += 1
    canvas[:, m : H * s - m, m : W * s - m] = total / count
    bottom = strip([tile(h - patch, x0) for x0 in starts(w)], 2, W * s)
    right = strip([tile(y0, w - patch) for y0 in starts(h)], 1, H * s)
    corner = tile(h - patch, w - patch).double()
    a, b = (patch - hc) / 2 * s, (patch - wc) / 2 * s
    rows = torch.cat([canvas[:, : H * s - math.floor(a)], bottom[:, math.floor(a + 0.5) :]], 1)
    side = torch.cat([right[:, : H * s - math.floor(a)], corner[:, math.floor(a + 0.5) :]], 1)
    out = torch.cat([rows[..., : W * s - math.floor(b)], side[..., math.floor(b + 0.5) :]], 2)
    assert out.shape == (3, h * s, w * s) and not out.isnan().any()
    return out[None].float()


# --------------------------------------------------------------------------- keys, counts, loading


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_state_dict_matches_the_official_listing(name):
    spec = key_listing(name)
    model = meta_ipt(**LAYOUTS[name])
    state = model.state_dict()
    assert list(state) == list(spec["state_dict"]) and len(state) == spec["num_keys"]
    assert {k: list(v.shape) for k, v in state.items()} == spec["state_dict"]
    buffers = {k: {"shape": list(v.shape), "dtype": str(v.dtype).removeprefix("torch."), "persistent": True}
               for k, v in model.named_buffers()}
    assert buffers == spec["buffers"]
    assert [k for k, p in model.named_parameters() if not p.requires_grad] == spec["frozen_params"]
    assert IPT.layout_of(state) == {**{"num_queries": 1}, **LAYOUTS[name],
                                    "scale": spec["meta"]["scale"], "n_feats": 64, "attn_out_bias": False}


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_parameter_counts_are_the_specs(name):
    model = meta_ipt(**LAYOUTS[name])
    assert sum(p.numel() for p in model.parameters()) == SPEC_COUNTS[name]
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == key_listing(name)["num_trainable_params"]


def test_pretraining_layout_names_its_tasks():
    spec = key_listing("ipt.json")
    assert [t for t, _ in spec["meta"]["tasks"]] == list(PRETRAIN_TASKS)
    model = meta_ipt(scale=[2, 3, 4, 1, 1, 1], num_queries=6, task="derain")
    assert model.task == 5 and model.scale == 1
    model.set_task("sr_x3")
    assert model.task == 1 and model.scale == 3
    with pytest.raises(ConfigError, match="unknown IPT task 'sr_x8'"):
        model.set_task("sr_x8")
    with pytest.raises(ConfigError, match="num_queries is 1"):
        meta_ipt(scale=[2, 3], task=1)
    with pytest.raises(ConfigError, match="out of range"):
        meta_ipt(scale=[1], task=1)


@pytest.mark.parametrize("scales,queries", [([1], 1), ([2], 1), ([3], 1), ([4], 1), ([2, 3, 4, 1, 1, 1], 6)])
def test_official_layout_files_load_strictly_and_match_the_official_forward(tmp_path, scales, queries):
    ref = reference_weights(scales, queries)
    path = tmp_path / "IPT.pt"
    torch.save(ref.state_dict(), path)  # released files: bare state_dicts, no prefix
    model = IPT(scale=scales, num_queries=queries, **TINY).eval()
    load_weights(model, path, strict=True)
    x = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for t, s in enumerate(scales):
            ref.idx = t
            expected = ref(x * 255) / 255
            out = model(x, task=t)
            assert out.shape == (2, 3, 48 * s, 48 * s)
            torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_a_file_of_another_layout_is_refused_in_one_line(tmp_path):
    path = tmp_path / "IPT_sr2.pt"
    torch.save(reference_weights([2]).state_dict(), path)
    with pytest.raises(ConfigError, match=r"missing keys: tail\.0\.0\.2\.bias, tail\.0\.0\.2\.weight") as err:
        load_weights(IPT(scale=4, **TINY), path)  # the official non-strict load kept these random
    assert "\n" not in str(err.value)
    pretrain = tmp_path / "IPT_pretrain.pt"
    torch.save(reference_weights([2, 3, 4, 1, 1, 1], 6).state_dict(), pretrain)
    with pytest.raises(ConfigError, match=r"body\.query_embed\.weight \(6, 9216\) vs model \(1, 9216\)"):
        load_weights(IPT(scale=1, **TINY), pretrain)


def test_extract_task_gives_a_single_task_file_with_the_same_outputs():
    six = IPT(scale=[2, 3, 4, 1, 1, 1], num_queries=6, **TINY).eval()
    x = torch.rand(1, 3, 48, 48)
    for t, s in ((2, 4), (4, 1)):
        single = IPT(scale=s, **TINY).eval()
        single.load_state_dict(IPT.extract_task(six.state_dict(), t), strict=True)
        with torch.no_grad():
            torch.testing.assert_close(single(x), six(x, task=t), atol=0, rtol=0)


# --------------------------------------------------------------------------- attention, forward/backward


def test_attention_equals_nn_multiheadattention_for_every_input_sharing():
    torch.manual_seed(0)
    ours, theirs = Attention(24, 4), nn.MultiheadAttention(24, 4, bias=False, batch_first=True)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    a, b, c = torch.randn(3, 2, 10, 24).unbind(0)
    for q, k, v in ((a, a, a), (a, a, b), (a, b, b), (a, b, c)):
        torch.testing.assert_close(ours(q, k, v), theirs(q, k, v, need_weights=False)[0], atol=1e-6, rtol=1e-5)


def test_attention_output_bias_option_for_files_saved_by_old_pytorch():
    model = IPT(scale=1, attn_out_bias=True, **TINY)
    biases = [k for k in model.state_dict() if k.endswith("out_proj.bias")]
    assert len(biases) == 3 and IPT.layout_of(model.state_dict())["attn_out_bias"] is True
    torch.manual_seed(0)
    plain, biased = Attention(24, 4), Attention(24, 4, out_bias=True)
    biased.load_state_dict({**plain.state_dict(), "out_proj.bias": torch.arange(24.0)})
    a, b = torch.randn(2, 2, 10, 24).unbind(0)
    torch.testing.assert_close(biased(a, b, b), plain(a, b, b) + torch.arange(24.0))


def test_tiny_forward_backward_trains_only_the_task_in_use():
    model = IPT(scale=[2, 1], num_queries=2, task=1, **TINY)
    x = torch.rand(2, 3, 48, 48)
    out, tokens = model.forward_features(x)
    assert out.shape == (2, 3, 48, 48) and tokens.shape == (2, 256, 36)
    out.sub(x).abs().mean().backward()
    assert model.head[1][0].weight.grad is not None and model.tail[1][1].weight.grad.abs().sum() > 0
    assert model.body.encoder.layers[0].self_attn.in_proj_weight.grad.abs().sum() > 0
    assert model.head[0][0].weight.grad is None and model.sub_mean.weight.grad is None
    assert model.body.query_embed.weight.grad[0].abs().sum() == 0 < model.body.query_embed.weight.grad[1].abs().sum()
    frozen = IPT(scale=[2, 1], num_queries=2, task=1, freeze_other_tasks=True, **TINY)
    assert not any(p.requires_grad for p in [*frozen.head[0].parameters(), *frozen.tail[0].parameters()])
    assert all(p.requires_grad for p in [*frozen.head[1].parameters(), *frozen.body.parameters()])


@pytest.mark.parametrize("switch", ["no_mlp", "pos_every", "no_pos", "no_norm"])
def test_ablation_switches_build_and_run(switch):
    model = IPT(scale=1, **TINY, **{switch: True})
    keys = model.state_dict().keys()
    assert ("body.query_embed.weight" in keys) == (switch != "no_mlp")
    assert ("body.position_encoding.pe.weight" in keys) == (switch != "no_pos")
    assert ("body.encoder.layers.0.norm1.weight" in keys) == (switch != "no_norm")
    assert model(torch.rand(1, 3, 48, 48)).isfinite().all()


def test_forward_takes_48x48_only():
    with pytest.raises(ConfigError, match="takes 48x48 inputs, got 64x48.*crop_size: 48"):
        IPT(scale=1, **TINY)(torch.rand(1, 3, 64, 48))


# --------------------------------------------------------------------------- patch-wise inference


class TileNet(nn.Module):
    """A stand-in for the network that sees where each tile is: zero-padded conv (different
    borders per tile), a per-tile offset (so overlapping tiles disagree), x s nearest up-sampling."""

    def __init__(self, s: int) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.s, self.conv = s, nn.Conv2d(3, 3, 5, padding=2)

    def forward(self, t: Tensor) -> Tensor:
        y = self.conv(t) + t.mean(dim=(1, 2, 3), keepdim=True) * 3
        return y.repeat_interleave(self.s, -2).repeat_interleave(self.s, -1)


@pytest.mark.parametrize("h,w,s", [(48, 48, 1), (61, 75, 1), (60, 83, 2), (50, 97, 3), (73, 49, 4), (95, 66, 1)])
@torch.no_grad()
def test_stitching_equals_the_spec_procedure(h, w, s):
    net = TileNet(s)
    x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(h * w))
    seen = []

    def run(t: Tensor) -> Tensor:
        seen.append(t.shape[0])
        return net(t)

    out = forward_chop(run, x, 48, s, batch=8)
    assert out.shape == (2, 3, s * h, s * w)
    for i in range(2):
        torch.testing.assert_close(out[i : i + 1], ref_chop(net, x[i : i + 1], s), atol=1e-5, rtol=0)
    # Every distinct tile runs once: n_h*n_w core tiles, plus the bottom/right strips and the
    # corner unless they coincide with the core (official: (n_h + 2)(n_w + 2) - 3 forwards).
    n_h, n_w = (h - 48) // 12 + 1, (w - 48) // 12 + 1
    cut_h, cut_w = (h - 48) % 12 > 0, (w - 48) % 12 > 0
    assert sum(seen) == 2 * (n_h * n_w + cut_h * n_w + cut_w * n_h + (cut_h and cut_w))
    assert max(seen) <= 8


@pytest.mark.parametrize("h,w,s", [(48, 48, 1), (61, 75, 1), (59, 50, 2), (30, 70, 3), (20, 9, 1)])
@torch.no_grad()
def test_pointwise_models_give_the_whole_image_back(h, w, s):
    """Averages of identical values are those values: exact for dyadic pixels (k / 64)."""
    x = torch.randint(0, 64, (1, 3, h, w)).float() / 64

    def nearest(t: Tensor) -> Tensor:
        return t.repeat_interleave(s, -2).repeat_interleave(s, -1)

    assert torch.equal(forward_chop(nearest, x, 48, s), nearest(x))


@torch.no_grad()
def test_restorer_uses_the_patch_rule_with_every_task():
    model = IPT(scale=[2, 3, 4, 1, 1, 1], num_queries=6, task="sr_x3", **TINY)
    x = torch.rand(1, 3, 50, 53)
    out = Restorer(model)(x)
    assert out.shape == (1, 3, 150, 159)
    torch.testing.assert_close(out, forward_chop(model, x, 48, 3), atol=0, rtol=0)


# --------------------------------------------------------------------------- option files and `restore infer`


@pytest.mark.parametrize("stem", list(INFER_FILES))
def test_infer_option_files_build_the_released_layouts(stem):
    opt = load_options(ROOT / "options" / "ipt" / "infer" / f"{stem}.yml")
    assert opt.network.type == "ipt" and opt.infer.tile is None
    with torch.device("meta"):
        model = build_network(opt)
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == key_listing(INFER_FILES[stem])["state_dict"]


IMAGE_SIZE = {1: (61, 63), 2: (50, 62), 3: (50, 62), 4: (50, 62)}  # cuts (h - 48) % 12 != 0 on both axes


def _image(path: Path | None, h: int, w: int, seed: int) -> np.ndarray:
    """A smooth-ish random RGB uint8 image (so that outputs land mid-range), written as PNG if ``path``."""
    rng = np.random.default_rng(seed)
    smooth = cv2.GaussianBlur(rng.uniform(0, 255, (h, w, 3)), (0, 0), 2)  # not all noise: mid-range outputs
    rgb = np.clip(smooth * 2 - 128 + rng.normal(0, 20, (h, w, 3)), 0, 255).round().astype(np.uint8)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), rgb[..., ::-1])
    return rgb


@functools.cache
def official_result(scales: tuple[int, ...], queries: int) -> tuple[RefIPT, np.ndarray]:
    """Reference weights for a layout and the official procedure's float output (H, W, 3) on 0..255
    for the test image of its scale (shared by the three x1 option files)."""
    ref = reference_weights(list(scales), queries, seed=scales[0])
    rgb = _image(None, *IMAGE_SIZE[scales[0]], seed=scales[0])
    with torch.no_grad():
        x255 = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
        return ref, ref_chop(ref, x255, scales[0])[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("stem", list(INFER_FILES))
def test_restore_infer_matches_the_official_test_procedure(tmp_path, stem, capsys):
    """Same weights (official layout, random), same image: `restore infer` output == official chop, rounded."""
    file = ROOT / "options" / "ipt" / "infer" / f"{stem}.yml"
    net = load_options(file).network.args
    scales = net["scale"] if isinstance(net["scale"], list) else [net["scale"]]
    s = scales[0]
    ref, expected = official_result(tuple(scales), net.get("num_queries", 1))
    weights = tmp_path / "official.pt"
    torch.save(ref.state_dict(), weights)
    h, w = IMAGE_SIZE[s]
    rgb = _image(tmp_path / "in" / "a.png", h, w, seed=s)

    args = ["infer", "-opt", str(file), "--weights", str(weights), "--input", str(tmp_path / "in"),
            "--output", str(tmp_path / "out"), "--device", "cpu", "--no-progress"]
    for item in TINY_SET:
        args += ["--set", item]
    assert main(args) == 0, capsys.readouterr().err
    got = read_image(tmp_path / "out" / "a.png").astype(np.int16)

    official = np.round(np.clip(expected, 0, 255))  # the official quantisation
    assert got.shape == official.shape == (s * h, s * w, 3)
    assert 0.05 < ((expected > 0.5) & (expected < 254.5)).mean()  # outputs not all clipped
    diff = np.abs(got - official)
    ties = np.abs(np.abs(expected - np.floor(expected)) - 0.5) < 1e-3
    assert diff.max() <= 1 and (diff[~ties] == 0).all(), f"{(diff[~ties] > 0).sum()} pixels differ"

    # The float output of the engine's inference path is the official one to 1e-5 (on [0, 1]).
    model = build_network(load_options(file, TINY_SET))
    load_weights(model, weights, strict=True)
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    out = Restorer(model, device="cpu")(x)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out, expected / 255, atol=1e-5, rtol=0)
