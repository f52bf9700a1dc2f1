"""What the demo offers to pick: the package's infer option files, the quickstart's model, a noise.

Nothing here imports gradio, so the choices are tested without the extra.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from restore.api import load_options
from restore.errors import RestoreError

#: The package's option files (the ``options/`` folder beside ``restore/``).
OPTIONS_ROOT = Path(__file__).resolve().parents[2] / "options"
#: Where ``restore quickstart`` writes its run by default (``--workdir quickstart``).
QUICKSTART_DIR = Path("quickstart")
#: Noises the demo can add to a clean image (restore.data.noise names).
NOISES = ("none", "gauss15", "gauss25", "gauss50", "poisson30")
_NOISE_IN_NAME = re.compile(r"(gauss|poisson)(\d+(?:\.\d+)?)(?![\d.]|[_-]\d)")  # not gauss5 of gauss5_50


def infer_option_files(root: Path = OPTIONS_ROOT) -> list[str]:
    """``options/<method>/infer/*.yml``, sorted (relative to the working folder when inside it)."""
    return [_shown(p) for p in sorted(root.glob("*/infer/*.yml"))]


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


#: The option file ``restore quickstart`` trains with (its default ``-opt``).
QUICKSTART_OPTIONS = OPTIONS_ROOT / "quickstart" / "denoise_skimage.yml"


@dataclass(frozen=True)
class QuickstartModel:
    """A finished quickstart run's final weights, and the option file to load them with."""

    options: str
    weights: str


def find_quickstart(folder: Path = QUICKSTART_DIR) -> QuickstartModel | None:
    """The newest finished run under ``folder/experiments`` (one with ``models/final.pth``), if any.

    Loaded with the package's quickstart option file: the weights record the network they were
    trained with, so a run from another option file is refused in one line when it is used.
    """
    runs = list((folder / "experiments").glob("*/models/final.pth"))
    if not runs:
        return None
    final = max(runs, key=lambda p: p.stat().st_mtime)
    return QuickstartModel(_shown(QUICKSTART_OPTIONS), str(final))


def default_weights(option_file: str) -> str:
    """The option file's ``path.pretrained`` (where its released weights are expected), or ''."""
    try:
        return load_options(option_file).path.pretrained or ""
    except RestoreError:
        return ""


def task_noise(option_file: str) -> str:
    """The synthetic noise a denoising option file is about (its noise datasets, else its name), or 'none'."""
    try:
        options = load_options(option_file)
    except RestoreError:
        return "none"
    if options.task != "denoise":
        return "none"
    sets = list(options.datasets.val.values()) + list(options.datasets.test.values())
    for spec in sets:
        noise = spec.dataset.args.get("noise")
        if isinstance(noise, str) and noise in NOISES:
            return noise
    match = _NOISE_IN_NAME.search(f"{options.name} {Path(option_file).stem}")
    name = f"{match.group(1)}{match.group(2)}" if match else "none"
    return name if name in NOISES else "none"


def takes_mask(option_file: str) -> bool:
    """Whether an option file's task is shadow removal (its network then needs a mask)."""
    try:
        return load_options(option_file).task == "shadow"
    except RestoreError:
        return False
