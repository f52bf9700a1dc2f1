"""TAPE-R: size against the spec's hand count and target, shapes, size rule, options, stage-1 step."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from restore import registry
from restore.config import load_options
from restore.engine.inference import forward_padded
from restore.errors import ConfigError
from restore.methods.tape.arch import TAPER, TAPERBase

ROOT = Path(__file__).resolve().parents[3]
# A tiny config: two levels, window 4 -> size multiple 16.
TINY = dict(embed_dim=8, depths_enc=[1, 1], depth_mid=1, depths_dec=[1, 1], heads=[1, 2], heads_mid=2, win_size=4,
            prior_tokens=8, pem_heads=2, drop_path_rate=0.0)


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def hand_count(c: int, levels: int = 3, depth: int = 2, depth_mid: int = 2, mid_heads: int = 8, pem: bool = True,
               tokens: int = 64, win: int = 8) -> int:
    """specs/tape.md 4.1's hand count, term by term (heads = width / C at every level)."""
    def block(d: int, heads: int) -> int:  # LN, q/kv/proj, bias table, LN, LeFF (12 d^2 + 53 d + ...)
        return 12 * d * d + 53 * d + (2 * win - 1) ** 2 * heads

    total = (3 * 9 * c + c) + (c * 9 * 3 + 3)  # head and tail convs
    for lvl in range(levels):
        d = c * 2**lvl
        total += 2 * depth * block(d, 2**lvl)  # encoder and decoder blocks
        total += 16 * d * 2 * d + 2 * d  # Conv4x4 stride 2, d -> 2d
        total += 4 * 2 * d * d + d  # ConvT2x2, 2d -> d
        total += 2 * d * d + d  # Linear 2d -> d after the concatenation
    dm = c * 2**levels
    total += depth_mid * block(dm, mid_heads)
    if pem:  # bank, 3 LayerNorms, MHA (in + out projections), FFN ratio 2
        total += tokens * dm + 3 * 2 * dm + (4 * dm * dm + 4 * dm) + (2 * dm * dm + 2 * dm + 2 * dm * dm + dm)
    return total


def test_default_size_is_the_specs_1_07m() -> None:
    net = TAPER()
    count = n_params(net)
    assert count == hand_count(16) == 1_066_527
    assert abs(count - 1.07e6) <= 0.15 * 1.07e6  # the unit-test requirement of specs/tape.md 4.1
    print(f"TAPE-R default: {count:,} parameters")
    assert n_params(TAPER(pem=False)) == hand_count(16, pem=False)  # spec: about 0.92 M without PEM
    assert n_params(TAPER(prior_loss=True)) == count + 128 * 128 + 128  # prior_proj, Linear(d_m, d_m)
    assert TAPER.pad_mode == "reflect" and net.size_multiple == 64


def test_base_variant_is_c32_with_the_same_options() -> None:
    base = TAPERBase(pem=False)
    assert n_params(base) == hand_count(32, pem=False)
    assert n_params(TAPERBase()) == hand_count(32) == n_params(TAPER(embed_dim=32))
    assert registry.get("arch", "tape_r_base") is TAPERBase and registry.get("arch", "tape_r") is TAPER
    from restore.config.validate import component_parameters

    params, _, var_kw = component_parameters("arch", "tape_r_base")
    assert not var_kw and params["embed_dim"].default == 32 and "prior_tokens" in params


def test_tiny_forward_backward_reaches_every_parameter() -> None:
    torch.manual_seed(0)
    net = TAPER(**TINY)
    x = torch.rand(2, 3, 32, 48)
    y = net(x)
    assert y.shape == x.shape
    y.square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert net.pem.prior.grad.abs().sum() > 0  # the prior bank is read


def test_global_residual_and_the_prior_bank_matter() -> None:
    torch.manual_seed(0)
    net = TAPER(**TINY).eval()
    x = torch.rand(1, 3, 16, 32)
    with torch.no_grad():
        torch.nn.init.zeros_(net.tail.weight)
        torch.nn.init.zeros_(net.tail.bias)
        assert torch.equal(net(x), x)  # output = input + tail(features)
        plain = TAPER(**TINY, global_residual=False).eval()
        plain.load_state_dict(net.state_dict())
        assert torch.equal(plain(x), torch.zeros_like(x))
        torch.nn.init.normal_(net.tail.weight, std=0.1)
        before = net(x)
        net.pem.prior.add_(torch.randn_like(net.pem.prior))
        assert not torch.allclose(net(x), before)


@pytest.mark.parametrize("size", [(37, 53), (16, 16), (5, 70)])
def test_any_size_is_reflect_padded_to_the_multiple_and_cropped(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    net = TAPER(**TINY).eval()
    assert net.size_multiple == 16
    h, w = size
    x = torch.rand(1, 3, h, w)
    with torch.no_grad():
        out = forward_padded(net, x)
        assert out.shape == x.shape
        ph, pw = -h % 16, -w % 16
        if ph < h and pw < w:  # reference: numpy-style reflect pad at the bottom/right, run, crop
            import numpy as np

            padded = np.pad(x[0].numpy(), [[0, 0], [0, ph], [0, pw]], "reflect")
            torch.testing.assert_close(out, net(torch.from_numpy(padded)[None])[..., :h, :w])
    if h % 16:
        with pytest.raises(ValueError, match="divisible by 16"):
            net(x)


def test_options_change_structure_not_just_names() -> None:
    torch.manual_seed(0)
    deeper = {**TINY, "depths_enc": [2, 2]}
    shifted = TAPER(**deeper).eval()
    unshifted = TAPER(**deeper, shift_windows=False).eval()
    unshifted.load_state_dict(shifted.state_dict())  # same keys
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(shifted(x), unshifted(x))
    assert [b.shift_size for b in shifted.encoders[1].blocks] == [0, 2]  # every second block, by win // 2
    assert [b.shift_size for b in unshifted.encoders[1].blocks] == [0, 0]

    no_pem = TAPER(**TINY, pem=False)
    assert no_pem.pem is None and not any(k.startswith("pem.") for k in no_pem.state_dict())
    wide = TAPER(**TINY, decoder_reduce=False)
    assert not any(k.startswith("reduces.") for k in wide.state_dict())
    assert wide.tail.in_channels == 16 and wide(torch.rand(1, 3, 16, 16)).shape == (1, 3, 16, 16)

    frozen = TAPER(**TINY, prior_trainable=False)
    assert not frozen.pem.prior.requires_grad and "pem.prior" in frozen.state_dict()


def test_bad_options_are_one_line_config_errors() -> None:
    for bad in ({"heads": [3, 2]}, {"depths_dec": [1]}, {"heads_mid": 3}, {"pem_heads": 5},
                {"in_nc": 4}, {"embed_dim": 0}):
        with pytest.raises(ConfigError, match="TAPE-R") as err:
            TAPER(**{**TINY, **bad})
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="prior_loss: true"):
        TAPER(**TINY)(torch.rand(1, 3, 16, 16), return_prior=True)


def test_prior_step_is_reconstruction_plus_weighted_token_distance() -> None:
    from restore.losses.pixel import L1Loss
    from restore.losses.weighted import WeightedSum
    from restore.methods.tape.step import TapePriorStep

    torch.manual_seed(0)
    net = TAPER(**{**TINY, "drop_path_rate": 0.2}, prior_loss=True).train()
    trainer = SimpleNamespace(model=net, criterion=WeightedSum([("l1", L1Loss(), 1.0)]))
    batch = {"input": torch.rand(2, 3, 32, 32), "target": torch.rand(2, 3, 32, 32)}
    step = TapePriorStep(prior_weight=0.5)
    step.setup(trainer)
    torch.manual_seed(1)
    loss, logs = step(net, batch, trainer)
    assert net.training  # restored after the clean pass
    # independent reference: same drop-path draws for the degraded pass, deterministic clean pass
    torch.manual_seed(1)
    pred, _ = net(batch["input"], return_prior=True)
    f, _ = net.encode(batch["input"])
    net.eval()
    with torch.no_grad():
        z = net.prior_proj(net.pem(f.flatten(1, 2)))
        target_tokens = net.encode(batch["target"])[0].flatten(1, 2)
    net.train()
    expected_prior = (z - target_tokens).abs().mean()
    assert target_tokens.shape == (2, (32 // 4) ** 2, 32)
    torch.testing.assert_close(logs["loss_prior"], expected_prior)
    torch.testing.assert_close(loss, (pred - batch["target"]).abs().mean() + 0.5 * expected_prior)
    loss.backward()
    assert net.prior_proj.weight.grad is not None and net.pem.prior.grad is not None

    with pytest.raises(ConfigError, match="prior_loss: true"):
        step.setup(SimpleNamespace(model=TAPER(**TINY)))
    with pytest.raises(ConfigError, match="prior_weight"):
        TapePriorStep(prior_weight=0)


def test_stage_files_share_the_network() -> None:
    """Stage 2 of every task builds stage 1's network minus the loss head, from its weights."""
    import yaml

    stage1 = yaml.safe_load((ROOT / "options/tape/train/tape_r_pretrain.yml").read_text())
    assert stage1["network"] == {"type": "tape_r", "prior_loss": True}
    assert stage1["datasets"]["train"]["type"] == "mixture" and stage1["datasets"]["train"]["tag_tasks"] is False
    assert stage1["train"]["step"]["type"] == "tape_prior"
    for task in ("denoise", "derain", "demoire", "shadow"):
        opts = load_options(ROOT / f"options/tape/train/tape_r_{task}.yml")
        assert opts.task == task and opts.network.type == "tape_r" and opts.network.args == {"prior_loss": False}
        assert opts.path.pretrained == f"experiments/{stage1['name']}/models/final.pth"
