"""Where third-party weight files (ImageNet backbones for LPIPS and perceptual losses) are found,
and the one reader every backbone goes through.

One rule everywhere, since nothing is ever downloaded: an explicit path from the options wins,
then an environment variable, then the torch hub cache
(``<torch.hub.get_dir()>/checkpoints/<torchvision file name>``), where torchvision itself would
have put the file. Every problem is one :class:`~restore.errors.MissingWeightsError` line: a
missing file names the file and both ways to provide it; an unreadable or foreign file names
the path and what is wrong with it (the first bad key and its expected shape).

:func:`read_weights_file` finds, checks and loads a torchvision checkpoint;
:func:`pick_tensors` takes the tensors a module needs out of it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restore.errors import MissingWeightsError

if TYPE_CHECKING:
    from torch import Tensor


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


def read_weights_file(
    what: str, file_name: str, explicit: str | os.PathLike | None = None, env_var: str | None = None
) -> tuple[Path, dict[str, Tensor]]:
    """Find torchvision's ``file_name`` (:func:`find_weights_file`) and load it on the CPU.

    ``what`` names the weights in the missing-file message ("LPIPS alex backbone weights").
    Returns ``(path, state dict)``. Only tensors are read (``weights_only``), never code. A
    missing, empty, unreadable file, or one that holds no state dict, is a one-line
    :class:`MissingWeightsError`.
    """
    import torch

    path = find_weights_file(file_name, explicit, env_var)
    if not path.is_file():
        raise MissingWeightsError(missing_message(what, file_name, path, env_var))
    problem = None
    try:
        if path.stat().st_size == 0:
            problem = "empty file"
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(state, dict):
                problem = f"holds a {type(state).__name__}, not a state dict"
    except Exception as err:  # UnpicklingError, EOFError, RuntimeError (zip reader), OSError, ...
        text = " ".join(str(err).split()).split(". ")[0][:120]  # first sentence: torch's are paragraphs
        problem = f"{type(err).__name__}: {text}" if text else type(err).__name__
    if problem is not None:
        raise MissingWeightsError(f"{path}: not a readable PyTorch checkpoint of torchvision's {file_name} ({problem})")
    return path, state


def pick_tensors(
    state: Mapping[str, Any], wanted: Mapping[str, Tensor], path: Path, prefix: str = "features."
) -> dict[str, Tensor]:
    """``{key: state[prefix + key]}`` for every key of ``wanted`` (a module's ``state_dict()``).

    Each value must be a tensor of the shape of ``wanted[key]``; the first that is not (in
    ``wanted``'s order) is a one-line :class:`MissingWeightsError` naming ``path``, the key,
    what was found and the shape expected.
    """
    from torch import Tensor

    out = {}
    for key, param in wanted.items():
        value = state.get(prefix + key)
        if not isinstance(value, Tensor) or value.shape != param.shape:
            got = "missing" if value is None else tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise MissingWeightsError(
                f"{path}: {prefix}{key} is {got}, expected a tensor of shape {tuple(param.shape)}"
            )
        out[key] = value
    return out
