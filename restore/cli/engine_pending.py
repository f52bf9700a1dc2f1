"""What train/test/infer do until the engine lands: validate everything, then say so."""

from __future__ import annotations

from restore import __version__
from restore.config import Options
from restore.errors import RestoreError


def build_datasets(options: Options, sections: tuple[str, ...]) -> None:
    """Instantiate the datasets named in ``sections`` so folder/pairing errors show up now."""
    sets = options.datasets
    if "train" in sections and sets.train is not None:
        sets.train.dataset.build()
    for section in ("val", "test"):
        if section in sections:
            for spec in getattr(sets, section).values():
                spec.dataset.build()


def engine_missing(command: str) -> RestoreError:
    return RestoreError(
        f"'restore {command}' needs the engine, which is not part of restore {__version__} yet; "
        f"the option file is valid (--check validates options and datasets only)"
    )
