"""restore.data.base: stable seeds, key parsing, and the typed-constructor contract."""

from __future__ import annotations

import dataclasses
import inspect
import os
import subprocess
import sys
import types
import typing

import pytest
import torch

from restore import registry
from restore.component import Component, Kind
from restore.config.typecheck import matches
from restore.data.base import make_generator, parse_key, stable_seed

PROBE = "from restore.data.base import stable_seed; print(stable_seed(0, 'kodim01#3'))"


def test_stable_seed_is_not_pythons_salted_hash():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    # a child with another hash salt derives the same seed as this process
    env = dict(os.environ, PYTHONHASHSEED="12345", PYTHONPATH=root)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(stable_seed(0, "kodim01#3"))
    assert 0 <= stable_seed(0, "a") < 2**63
    assert stable_seed(0, "a") != stable_seed(1, "a") != stable_seed(0, "b")


def test_streams_are_independent():
    a = torch.rand(4, generator=make_generator(5, "geometry"))
    b = torch.rand(4, generator=make_generator(5, "noise"))
    c = torch.rand(4, generator=make_generator(5, "noise"))
    assert not torch.equal(a, b) and torch.equal(b, c)


def test_parse_key():
    assert parse_key(3, 10) == (3, None)
    assert parse_key(-1, 10) == (9, None)
    assert parse_key((2, 77), 10) == (2, 77)
    assert parse_key((torch.tensor(2), torch.tensor(5)), 10) == (2, 5)
    with pytest.raises(IndexError):
        parse_key(10, 10)
    with pytest.raises(TypeError):
        parse_key("1", 10)
    with pytest.raises(TypeError):
        parse_key((1, 2, 3), 10)
    with pytest.raises(TypeError):
        parse_key((1, 2.5), 10)


YAML_LEAVES = (str, int, float, bool, type(None))


def yaml_friendly(hint) -> bool:
    origin = typing.get_origin(hint)
    if hint in YAML_LEAVES:
        return True
    if origin is typing.Literal:
        return all(isinstance(a, YAML_LEAVES) for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType, list):
        return all(yaml_friendly(a) for a in typing.get_args(hint))
    if origin is dict:  # a mapping of option values (a degradation's args)
        key, value = typing.get_args(hint)
        return key is str and (value is typing.Any or yaml_friendly(value))
    if origin is typing.Annotated:  # a nested component section (Annotated[Component, Kind(...)])
        base, *meta = typing.get_args(hint)
        return base is Component and any(isinstance(m, Kind) for m in meta)
    if dataclasses.is_dataclass(hint):  # a section of YAML-friendly keys (a mixture's sources)
        fields = typing.get_type_hints(hint, include_extras=True)
        return all(yaml_friendly(fields[f.name]) for f in dataclasses.fields(hint))
    return False


@pytest.mark.parametrize("name", registry.names("dataset"))
def test_constructor_is_a_typed_option_schema(name):
    cls = registry.get("dataset", name)
    sig = inspect.signature(cls.__init__)
    hints = typing.get_type_hints(cls.__init__)
    params = [p for p in sig.parameters.values() if p.name != "self"]
    for p in params:
        assert p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY), p
        assert p.name in hints, f"{name}.{p.name} has no type hint"
        assert yaml_friendly(hints[p.name]), (p.name, hints[p.name])
        if p.default is not p.empty:
            assert matches(p.default, hints[p.name]), (p.name, p.default)
    by_name = {p.name: p for p in params}
    assert by_name["phase"].default == "train" and by_name["seed"].default == 0
    # keys owned by the evaluation-set section must not be shadowed by dataset arguments
    assert not set(by_name) & {"type", "protocol", "metrics", "crop_border", "batch_size", "num_workers",
                               "save_images"}


def fake_rank(monkeypatch, rank: int | None) -> None:
    """Pretend torch.distributed is initialised with this rank (None: not distributed)."""
    monkeypatch.setattr(torch.distributed, "is_available", lambda: True)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: rank is not None)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda *a, **k: rank)


def train_draws(monkeypatch, ds, rank):
    """What one rank sees after the engine seeds torch identically on every rank."""
    fake_rank(monkeypatch, rank)
    torch.manual_seed(1234)
    seeds = [ds.sample_seed(0) for _ in range(3)]
    torch.manual_seed(1234)
    noisy = ds[0]["input"]
    return seeds, noisy


def test_train_seeds_differ_across_ddp_ranks(tmp_path, monkeypatch):
    from data_helpers import save_rgb

    from restore.data.synthetic_noise import SyntheticNoiseDataset

    save_rgb(tmp_path / "a.png", torch.zeros(8, 8, 3, dtype=torch.uint8).numpy())
    ds = SyntheticNoiseDataset(str(tmp_path), noise="gauss25", phase="train")
    seeds0, noisy0 = train_draws(monkeypatch, ds, 0)
    seeds1, noisy1 = train_draws(monkeypatch, ds, 1)
    assert not set(seeds0) & set(seeds1)
    assert not torch.equal(noisy0, noisy1)
    again0, noisy0_again = train_draws(monkeypatch, ds, 0)
    assert again0 == seeds0 and torch.equal(noisy0, noisy0_again)
    # without torch.distributed the draw is used as is; val/test seeds never depend on the rank
    plain, _ = train_draws(monkeypatch, ds, None)
    torch.manual_seed(1234)
    assert plain[0] == int(torch.randint(0, 2**63 - 1, (), dtype=torch.int64).item())
    val = SyntheticNoiseDataset(str(tmp_path), noise="gauss25", phase="val")
    fake_rank(monkeypatch, 1)
    assert val.sample_seed(0) == stable_seed(0, "a")
