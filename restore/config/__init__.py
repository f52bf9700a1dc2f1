"""Option files: load (with ``base:`` and ``--set``), validate against the schema, save.

Typical use::

    from restore.config import load_options
    opt = load_options("options/unet/train/denoise_gauss25_unet.yml", ["train.total_iter=1000"])
    opt.train.optimizer.build(params=model.parameters())
"""

from __future__ import annotations

from pathlib import Path

import yaml

from restore.config.loader import apply_overrides, one_line, read_option_file
from restore.config.schema import Component, Options, to_plain
from restore.config.sets import resolve_sets, set_names
from restore.config.validate import validate

__all__ = ["Component", "Options", "load_options", "save_options", "options_to_yaml"]


def load_options(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    renames: list[str] | tuple[str, ...] = (),
    test_sets: list[str] | tuple[str, ...] = (),
) -> Options:
    """Read, merge, override and validate an option file; raise ConfigError on any problem.

    Order: ``base:`` files, the file itself, ``--set`` overrides (``overrides``), then the
    evaluation sets: null sets removed, ``label:`` and ``--rename-set OLD=NEW`` (``renames``)
    applied, and ``--test-set`` (``test_sets``) kept (:mod:`restore.config.sets`).
    """
    tree, origin = read_option_file(path)
    before = set_names(tree)
    tree, origin = apply_overrides(tree, origin, overrides)
    tree, origin = resolve_sets(
        tree, origin, before_overrides=before, renames=renames, test_sets=test_sets, default_source=one_line(str(path))
    )
    options = validate(tree, origin, Options, default_source=one_line(str(path)))
    options.source = str(path)
    return options


def options_to_yaml(options: Options) -> str:
    """The fully resolved options (defaults filled in) as YAML text."""
    header = f"# resolved options (from {one_line(options.source) or 'memory'}); load again with -opt\n"
    return header + yaml.safe_dump(to_plain(options), sort_keys=False, default_flow_style=None, allow_unicode=True)


def save_options(options: Options, path: str | Path) -> Path:
    """Write the resolved options (atomically: temporary file, then rename)."""
    from restore.utils.files import atomic_write

    return atomic_write(path, options_to_yaml(options))
