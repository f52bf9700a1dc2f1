"""The lazy registry: every name resolves; user code can add entries."""

from __future__ import annotations

import sys
import types

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


def test_metric_and_protocol_names_are_the_metric_packages_tables():
    from restore.metrics.protocols import DEFAULT_PROTOCOL, PROTOCOLS
    from restore.metrics.table import metric_names, registered_metric

    assert registry.names("metric") == sorted(metric_names()) == ["lab_mae", "lpips", "psnr", "ssim"]
    assert registry.names("protocol") == sorted(PROTOCOLS) and registry.default("protocol") == DEFAULT_PROTOCOL
    assert registry.get("protocol", "n2n") is PROTOCOLS["n2n"]
    with registered_metric("reg_mae", f"{__name__}:_mae", better="lower"):  # the table is the registry's
        assert "reg_mae" in registry.names("metric") and registry.get("metric", "reg_mae") is _mae
        assert registry.target("metric", "reg_mae") == f"{__name__}:_mae"
    assert "reg_mae" not in registry.names("metric")
    with pytest.raises(ConfigError, match=r"unknown protocol 'basicsrr'; did you mean 'basicsr'\?"):
        registry.target("protocol", "basicsrr")
    with pytest.raises(ValueError, match="has no default"):
        registry.default("loss")


def _mae(pred, target):
    return (pred - target).abs().flatten(1).mean(1)


def test_metrics_are_not_added_behind_the_tables_back(monkeypatch):
    with pytest.raises(ValueError, match=r"kept in restore\.metrics\.table; add one with restore\.metrics\.register_metric"):
        registry.register("metric", "mae", f"{__name__}:_mae")
    with pytest.raises(ValueError, match="kept in restore.metrics.protocols"), \
            registry.registered("protocol", "mine", f"{__name__}:_mae"):
        pass
    plugin = types.ModuleType("plugin_with_metric")
    plugin.REGISTRY = {"metric": {"mae": f"{__name__}:_mae"}}
    monkeypatch.setitem(sys.modules, "plugin_with_metric", plugin)
    with pytest.raises(ConfigError, match=r"plugin_with_metric.REGISTRY: metric entries are kept in restore.metrics.table; add one with restore.metrics.register_metric"):  # noqa: E501
        registry.add_method("plugin_with_metric")
    assert "mae" not in registry.names("metric")


def test_registered_restores_the_previous_entry() -> None:
    before = registry.target("loss", "l1")
    with registry.registered("loss", "l1", "restore.losses.pixel:L2Loss"):
        assert registry.get("loss", "l1").__name__ == "L2Loss"
    assert registry.target("loss", "l1") == before
    with registry.registered("loss", "brand_new", "restore.losses.pixel:L2Loss"):
        assert "brand_new" in registry.names("loss")
    assert "brand_new" not in registry.names("loss")
