"""The lazy registry: every name resolves; user code can add entries."""

from __future__ import annotations

import pytest

from restore import registry
from restore.errors import ConfigError


def test_every_registered_name_resolves():
    for kind in registry.KINDS:
        for name in registry.names(kind):
            assert callable(registry.get(kind, name)), (kind, name)


def test_register_adds_a_lazy_entry(monkeypatch):
    monkeypatch.setattr(registry, "_TABLE", {k: dict(v) for k, v in registry._TABLE.items()})
    registry.register("loss", "my_l1", "restore.losses.pixel:L1Loss")
    assert "my_l1" in registry.names("loss")
    assert registry.get("loss", "my_l1").__name__ == "L1Loss"


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"unknown dataset 'paired_fodler'; did you mean 'paired_folder'\?"):
        registry.target("dataset", "paired_fodler")


def test_metric_names_are_the_evaluators():
    from restore.metrics.protocols import METRICS

    assert set(registry.names("metric")) == set(METRICS)


def test_registered_restores_the_previous_entry() -> None:
    before = registry.target("loss", "l1")
    with registry.registered("loss", "l1", "restore.losses.pixel:L2Loss"):
        assert registry.get("loss", "l1").__name__ == "L2Loss"
    assert registry.target("loss", "l1") == before
    with registry.registered("loss", "brand_new", "restore.losses.pixel:L2Loss"):
        assert "brand_new" in registry.names("loss")
    assert "brand_new" not in registry.names("loss")
