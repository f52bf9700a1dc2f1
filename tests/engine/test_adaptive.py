"""Adaptive inference (infer.adaptive): routing by rank or threshold, width groups through the one
tiler, counted FLOPs, and what `restore infer` / `restore test` report; bad settings through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny_run import make_images, one_error_line
from torch import nn

from restore.archs.n2n_unet_slim import SlimN2NUNet
from restore.archs.slimmable import SlimConv2d, Slimmable
from restore.cli.main import main
from restore.config.schema import Adaptive
from restore.engine.adaptive import count_flops, route
from restore.engine.inference import Restorer, forward_padded
from restore.errors import ConfigError


def slim_unet(seed: int = 0) -> SlimN2NUNet:
    net = SlimN2NUNet(n_feature=8)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return net.eval()


class SlimStack(Slimmable, nn.Module):
    """3 -> 8 (3x3) -> 8 (3x3) -> 3 (1x1): image channels stay whole."""

    def __init__(self) -> None:
        super().__init__()
        self.a = SlimConv2d(3, 8, 3, padding=1, in_groups=[(3, False)])
        self.b = SlimConv2d(8, 8, 3, padding=1)
        self.c = SlimConv2d(8, 3, 1, slim_out=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(torch.relu(self.b(torch.relu(self.a(x)))))


def half_flat_half_striped(h: int = 64, w: int = 128) -> torch.Tensor:
    """Left half mid grey; right half red/green stripes of period 4 (colourful and high-frequency)."""
    x = torch.full((1, 3, h, w), 0.5)
    cols = torch.arange(w // 2, w)
    on = ((cols // 2) % 2 == 0).float()
    x[0, 0, :, w // 2 :] = 0.1 + 0.8 * on
    x[0, 1, :, w // 2 :] = 0.9 - 0.8 * on
    x[0, 2, :, w // 2 :] = 0.2
    return x


# ----------------------------------------------------------------------------- routing


def test_route_by_rank_gives_the_reference_split():
    # 6 tiles, 3 widths, equal shares: the 2 lowest scores narrowest, the next 2 middle, top 2 widest
    scores = [5.0, 0.0, 9.0, 3.0, 7.0, 1.0]
    assert route(scores, 3).tolist() == [1, 0, 2, 1, 2, 0]
    # shares 1/2, 1/4, 1/4 of 8 tiles: 4, 2, 2 by rank
    assert route(list(range(8)), 3, fractions=[0.5, 0.25, 0.25]).tolist() == [0, 0, 0, 0, 1, 1, 2, 2]
    # ties keep tile order: the later tiles rank higher
    assert route([2.0, 2.0, 2.0, 2.0], 2).tolist() == [0, 0, 1, 1]


def test_route_by_threshold():
    assert route([0.0, 10.0, 10.5, 99.0], 3, thresholds=[10.0, 50.0]).tolist() == [0, 1, 1, 2]


def tiles_by_width(restorer: Restorer, x: torch.Tensor) -> dict[float, set[tuple[int, int]]]:
    """Which grid cells ran at which width (from the router's groups)."""
    from restore.engine.inference import tile_starts

    tile = restorer._tile_size()
    ys, xs = tile_starts(x.shape[-2], tile, restorer.tile_overlap), tile_starts(x.shape[-1], tile, restorer.tile_overlap)
    cells = [(i, j) for i in range(len(ys)) for j in range(len(xs))]

    def crop(t, i, j):
        return t[..., ys[i] : ys[i] + tile, xs[j] : xs[j] + tile]

    out: dict[float, set[tuple[int, int]]] = {}
    for items, width in restorer.adaptive.groups(x, (), cells, crop, 100):
        out.setdefault(width, set()).update((i, j) for _, i, j in items)
    return out


@pytest.mark.parametrize("rule", [{"fractions": [0.5, 0.5]}, {"thresholds": [1.0]}])
def test_striped_half_runs_wide_and_flat_half_narrow(rule):
    x = half_flat_half_striped()  # 2 x 4 tiles of 32: columns 0-1 flat, 2-3 striped
    restorer = Restorer(slim_unet(), tile=32, tile_overlap=0, adaptive=Adaptive("moire", [0.25, 1.0], **rule))
    groups = tiles_by_width(restorer, x)
    assert groups[1.0] == {(i, j) for i in range(2) for j in (2, 3)}
    assert groups[0.25] == {(i, j) for i in range(2) for j in (0, 1)}
    restorer(x)
    assert restorer.adaptive.tally.tiles == {0.25: 4, 1.0: 4}


def test_fractions_pick_the_top_scoring_share():
    x = half_flat_half_striped()
    restorer = Restorer(slim_unet(), tile=32, tile_overlap=0, adaptive=Adaptive("moire", [0.5, 1.0], [0.75, 0.25]))
    groups = tiles_by_width(restorer, x)
    assert len(groups[1.0]) == 2 and groups[1.0] <= {(i, j) for i in range(2) for j in (2, 3)}


# ------------------------------------------------------------------------ same pixels


@pytest.mark.parametrize("adaptive", [Adaptive("moire", [1.0]), Adaptive("texture", [0.5, 1.0], thresholds=[-1.0])])
def test_every_tile_at_full_width_is_the_non_adaptive_output(adaptive):
    net = slim_unet()
    x = torch.rand(2, 3, 100, 90, generator=torch.Generator().manual_seed(1))
    plain = Restorer(net, tile=64, tile_overlap=16, tile_batch=3)(x)
    routed = Restorer(net, tile=64, tile_overlap=16, tile_batch=3, adaptive=adaptive)
    assert torch.equal(routed(x), plain)
    assert routed.adaptive.tally.tiles == {1.0: 2 * 4} and routed.adaptive.tally.ratio == 1.0
    assert net.width == 1.0


def test_narrow_tiles_change_only_their_region():
    net = slim_unet()
    x = half_flat_half_striped(64, 256)
    full = Restorer(net, tile=64, tile_overlap=32)(x)
    mixed = Restorer(net, tile=64, tile_overlap=32, adaptive=Adaptive("moire", [0.25, 1.0], thresholds=[1.0]))(x)
    # the striped half (well inside it, past the blend ramps) ran at full width in both
    assert torch.equal(mixed[..., 176:], full[..., 176:])
    assert not torch.allclose(mixed[..., :64], full[..., :64], atol=1e-3)
    assert net.width == 1.0


# ---------------------------------------------------------------------------- FLOPs


def test_flop_count_of_a_small_stack_by_hand():
    net = SlimStack()
    # 16x16 tile, multiply-adds per pixel at width 0.5: 3*4*9 + 4*4*9 + 4*3*1 = 264; at 1.0: 216+576+24 = 816
    # FlopCounterMode counts 2 FLOPs per multiply-add (biases not counted)
    assert count_flops(net, forward_padded, [(1, 3, 16, 16)], torch.device("cpu"), 0.5) == 2 * 256 * 264
    assert count_flops(net, forward_padded, [(1, 3, 16, 16)], torch.device("cpu"), 1.0) == 2 * 256 * 816
    restorer = Restorer(net, tile=16, tile_overlap=0, adaptive=Adaptive("texture", [0.5, 1.0], [0.75, 0.25]))
    restorer(torch.rand(1, 3, 32, 32))  # 4 tiles: 3 at 0.5, 1 at 1.0
    tally = restorer.adaptive.tally
    assert tally.tiles == {0.5: 3, 1.0: 1}
    assert tally.spent == 2 * 256 * (3 * 264 + 816) and tally.full == 2 * 256 * 4 * 816
    ensembled = Restorer(net, tile=16, tile_overlap=0, self_ensemble=True, adaptive=Adaptive("texture", [1.0]))
    ensembled(torch.rand(1, 3, 16, 16))
    assert ensembled.adaptive.tally.spent == 8 * 2 * 256 * 816


def test_adaptive_needs_a_slimmable_network_tiles_and_torch():
    with pytest.raises(ConfigError, match="needs a slimmable network"):
        Restorer(nn.Conv2d(3, 3, 3), tile=64, adaptive=Adaptive())
    with pytest.raises(ConfigError, match="routes tiles"):
        Restorer(slim_unet(), tile=None, adaptive=Adaptive())
    with pytest.raises(ConfigError, match="backend torch only"):
        Restorer(slim_unet(), tile=64, backend="onnxruntime", adaptive=Adaptive())
    assert Restorer(slim_unet(), tile=64, backend="auto", adaptive=Adaptive()).backend == "torch"
    with pytest.raises(ConfigError, match="takes no mask input"):
        Restorer(slim_unet(), tile=64, adaptive=Adaptive("mask"))


# -------------------------------------------------------------------------- the CLI

INFER = """\
name: routed
task: demoire
network: {{type: {network}, n_feature: 8}}
infer: {{tile: 32, tile_overlap: 8{infer}}}
path: {{results_root: {root}/results}}
datasets:
  test:
    rainy: {{type: degraded_folder, root: {images}, degradation: rain, phase: test}}
"""


def setup_cli(tmp_path: Path, infer: str = ", adaptive: {score: moire, widths: [0.5, 1.0]}",
              network: str = "n2n_unet_slim") -> tuple[Path, Path, Path]:
    images = make_images(tmp_path / "images", n=3)  # 36x40: 2 x 2 tiles of 32 each
    weights = tmp_path / "w.pth"
    torch.save({"params": slim_unet().state_dict()}, weights)
    opt = tmp_path / "routed.yml"
    opt.write_text(INFER.format(network=network, infer=infer, root=tmp_path, images=images))
    return opt, weights, images


def test_restore_infer_reports_the_flops_spent(tmp_path, capsys):
    opt, weights, images = setup_cli(tmp_path)
    rc = main(["infer", "-opt", str(opt), "--weights", str(weights), "--input", str(images),
               "--output", str(tmp_path / "out"), "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert len(list((tmp_path / "out").glob("*.png"))) == 3
    line = next(text for text in out.splitlines() if "adaptive" in text)
    assert "score moire, widths 0.5/1, equal shares" in line and "tiles per width 0.5/1: 6/6" in line
    per_tile = [count_flops(slim_unet(), forward_padded, [(1, 3, 32, 32)], torch.device("cpu"), w) for w in (0.5, 1.0)]
    spent, full = 6 * per_tile[0] + 6 * per_tile[1], 12 * per_tile[1]
    assert f"{spent / 1e9:.4g} GFLOPs of {full / 1e9:.4g} GFLOPs at full width ({100 * spent / full:.1f}%)" in line


def test_restore_test_names_the_adaptive_settings_and_flops(tmp_path, capsys):
    opt, weights, _ = setup_cli(tmp_path, infer=", adaptive: {score: moire, widths: [0.5, 1.0], thresholds: [0.0]}")
    rc = main(["test", "-opt", str(opt), "--weights", str(weights), "--progress", "off"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    folder = tmp_path / "results" / "routed"
    summary = json.loads((folder / "rainy" / "summary.json").read_text())
    assert summary["adaptive"] == "score moire, widths 0.5/1, thresholds 0"
    flops = summary["adaptive_flops"]
    assert sum(flops["tiles_per_width"].values()) == 12 and 0 < flops["flops_ratio"] <= 1
    assert flops["flops"] == pytest.approx(flops["flops_ratio"] * flops["flops_full_width"])
    assert "adaptive (score moire" in (folder / "rainy" / "summary.md").read_text()
    assert "adaptive: score moire" in (folder / "summary.md").read_text()
    assert json.loads((folder / "results.json").read_text())["adaptive"] == summary["adaptive"]


@pytest.mark.parametrize(
    ("infer", "extra", "expected"),
    [
        (", adaptive: {widths: [1.0, 0.5]}", [], "key 'infer.adaptive.widths' must be a non-empty, strictly ascending"),
        (", adaptive: {widths: [0.5, 1.0], fractions: [0.9, 0.2]}", [], "key 'infer.adaptive.fractions' must give one share"),
        (", adaptive: {widths: [0.5, 1.0], thresholds: [1, 2]}", [], "key 'infer.adaptive.thresholds' must give 1 ascending"),
        (", adaptive: {widths: [0.5, 1.0], fractions: [0.5, 0.5], thresholds: [1]}", [],
         "key 'infer.adaptive.fractions' and 'thresholds' are two ways to route"),
        (", adaptive: {score: moiree}", [], "key 'infer.adaptive.score': unknown tile score 'moiree'"),
        (", adaptive: {score: moire}, backend: openvino", [], "key 'infer.adaptive' runs on backend torch only"),
        (", adaptive: {score: moire}", ["--tile", "0"], "key 'infer.adaptive' routes tiles"),
        (", adaptive: {score: moire}", ["--backend", "onnxruntime"], "key 'infer.adaptive' runs on backend torch only"),
    ],
)
def test_bad_adaptive_settings_are_one_line_naming_file_and_key(tmp_path, capsys, infer, extra, expected):
    opt, weights, images = setup_cli(tmp_path, infer=infer)
    rc = main(["infer", "-opt", str(opt), "--weights", str(weights), "--input", str(images),
               "--output", str(tmp_path / "out"), *extra])
    assert rc == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(opt) in line and expected in line
    assert not (tmp_path / "out").exists()


def test_a_network_that_cannot_route_is_refused_before_any_output(tmp_path, capsys):
    opt, weights, images = setup_cli(tmp_path, network="n2n_unet")
    rc = main(["infer", "-opt", str(opt), "--weights", str(weights), "--input", str(images),
               "--output", str(tmp_path / "out")])
    assert rc == 2
    assert "needs a slimmable network" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()
