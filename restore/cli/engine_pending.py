"""What train/test/infer do until the engine lands: validate everything, then say so."""

from __future__ import annotations

from restore import __version__
from restore.config import Options
from restore.errors import RestoreError


def build_datasets(options: Options, sections: tuple[str, ...]) -> int:
    """Build the datasets of ``sections`` and verify every sample's files (headers and sizes).

    Folder, pairing, empty/corrupt file and size problems show up now, as one line, rather than
    inside a DataLoader worker mid-run. Returns the number of samples checked.
    """
    sets = options.datasets
    specs = [sets.train] if "train" in sections and sets.train is not None else []
    for section in ("val", "test"):
        if section in sections:
            specs.extend(getattr(sets, section).values())
    return sum(spec.dataset.build().verify() for spec in specs)


def engine_missing(command: str) -> RestoreError:
    return RestoreError(
        f"'restore {command}' needs the engine, which is not part of restore {__version__} yet; "
        f"the option file is valid (--check validates options and datasets only)"
    )
