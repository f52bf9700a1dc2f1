"""Where third-party weight files (ImageNet backbones for LPIPS and perceptual losses) are found.

One rule everywhere, since nothing is ever downloaded: an explicit path from the options wins,
then an environment variable, then the torch hub cache
(``<torch.hub.get_dir()>/checkpoints/<torchvision file name>``), where torchvision itself would
have put the file. Messages for a missing file name the file and both ways to provide it.
"""

from __future__ import annotations

import os
from pathlib import Path


def hub_checkpoint(file_name: str) -> Path:
    """``<torch hub dir>/checkpoints/<file_name>`` (``$TORCH_HOME`` respected)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / file_name


def find_weights_file(file_name: str, explicit: str | os.PathLike | None = None, env_var: str | None = None) -> Path:
    """The path to read ``file_name`` from: ``explicit`` > ``$env_var`` > the torch hub cache."""
    if explicit is not None:
        return Path(explicit)
    if env_var and os.environ.get(env_var):
        return Path(os.environ[env_var])
    return hub_checkpoint(file_name)


def missing_message(what: str, file_name: str, path: Path, env_var: str | None = None) -> str:
    """One line: what is missing, where it was looked for, and how to provide it."""
    via = f" (or set {env_var}=/path/to/{file_name})" if env_var else ""
    return f"{what} not found: put torchvision's {file_name} at {path}{via}; nothing is downloaded"
