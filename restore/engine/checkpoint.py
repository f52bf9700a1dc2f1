"""Reading and writing checkpoints and weight files, safely.

* Writes are atomic: the file is written next to its destination under a temporary name,
  flushed to disk, then renamed over it, so a crash or a full disk never leaves a truncated
  checkpoint where a good one was.
* Reads never execute code from the file: ``torch.load(weights_only=True)`` (tensors, numbers,
  strings, lists, tuples, dicts only) or safetensors. Anything a checkpoint needs (RNG states,
  sampler position, options) is stored in those types.

Weight files come in many layouts. :func:`extract_state_dict` accepts a plain state_dict (the
official Neighbor2Neighbor release), ``{"state_dict": ...}`` (Uformer), ``{"model": ...}``,
BasicSR's ``{"params": ..., "params_ema": ...}`` and restore's own checkpoints, and strips the
``module.`` prefix that ``DataParallel``/``DistributedDataParallel`` adds.
"""

from __future__ import annotations

import errno
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from restore.errors import ConfigError, DataError
from restore.utils.files import atomic_write
from restore.utils.shorten import shorten_list

FORMAT = "restore-checkpoint-v1"
# Looked up in this order when a file is a dict of several state_dicts (EMA weights first:
# they are the ones to evaluate when a run kept them).
_STATE_KEYS = ("ema", "params_ema", "model", "params", "state_dict", "net", "model_state_dict")
_LIST_MAX = 6  # key names shown in one error line


def atomic_save(obj: Any, path: str | os.PathLike, inside: str | os.PathLike | None = None) -> None:
    """``torch.save`` through :func:`restore.utils.files.atomic_write` (temporary file, fsync, rename).

    ``inside``: the folder the resolved destination must lie in. A full disk or a read-only
    folder is one :class:`~restore.errors.OutputError` line, and no temporary file remains.
    """
    atomic_write(path, lambda handle: torch.save(obj, handle), inside=inside)


def load_file(path: str | os.PathLike, device: str = "cpu") -> Any:
    """Load a ``.pth``/``.pt``/``.ckpt`` (weights only) or ``.safetensors`` file onto ``device``.

    ``device="meta"`` reads names, shapes and dtypes without the tensor data (a zip-format
    ``.pth`` or a ``.safetensors`` file is not read beyond its index). Every way a file can be
    unreadable (empty, truncated, a plain Python pickle, objects a weights-only load refuses, not
    a weights file at all) is one :class:`DataError` line naming the file; torch's own warnings
    about the file are not shown.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"weights file '{path}' is a folder, not a file")
    if not path.is_file():
        raise DataError(f"weights file '{path}' does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file as load_safetensors

        try:
            return _safetensors_on_meta(path) if device == "meta" else load_safetensors(str(path), device=device)
        except Exception as exc:
            raise DataError(f"'{path}' is not a readable safetensors file ({_first_line(exc)})") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols before failing anyway
            return torch.load(path, map_location=device, weights_only=True)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EIO, errno.ENOENT):
            raise DataError(f"cannot read weights file '{path}': {exc.strerror or exc}") from None
        raise DataError(f"'{path}' {_load_problem(path, exc)}") from None  # torch's seek on a cut archive
    except Exception as exc:
        raise DataError(f"'{path}' {_load_problem(path, exc)}") from None


def _safetensors_on_meta(path: Path) -> dict[str, torch.Tensor]:
    """A ``.safetensors`` file's tensors as meta tensors of the stored shapes and dtypes (its
    header only: no data read)."""
    from safetensors import safe_open

    out = {}
    with safe_open(str(path), framework="pt") as handle:
        for name in handle.keys():
            piece = handle.get_slice(name)
            dtype = getattr(torch, _SAFETENSORS_DTYPES.get(piece.get_dtype(), "float32"))
            out[name] = torch.empty(piece.get_shape(), dtype=dtype, device="meta")
    return out


_SAFETENSORS_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64", "I32": "int32",
    "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool",
}


# torch's legacy (non-zip) format starts with the pickled magic number 0x1950a86a20f9469cfc6c
_LEGACY_MAGIC = bytes.fromhex("8a0a6cfc9c46f9206aa85019")


def _load_problem(path: Path, exc: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` failed on ``path``, in words, without newlines."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        head = b""
    if not head:
        return "is empty (0 bytes): not a weights file"
    text = str(exc)
    if head.startswith(b"PK\x03\x04") and isinstance(exc, (RuntimeError, OSError)):
        return "is truncated or corrupt (an incomplete torch zip archive: was the copy or the save interrupted?)"
    refused = "WeightsUnpickler error:" in text or "Weights only load failed" in text
    if not head.startswith((b"PK", b"\x80")):
        return "is not a torch weights file (.pth/.pt/.ckpt, zip or legacy format) nor a .safetensors file"
    if head[:1] == b"\x80" and _LEGACY_MAGIC not in head:
        return (
            "is a plain Python pickle, not a torch weights file; restore never unpickles code from weight "
            "files: re-save the tensors with torch.save(state_dict, path) or as .safetensors"
        )
    if refused:
        detail = _refusal_detail(text)
        return (
            "holds Python objects that a weights-only load refuses" + (f" ({detail})" if detail else "")
            + "; restore never unpickles code from weight files: re-save the tensors with "
            "torch.save(state_dict, path) or as .safetensors"
        )
    return "is not a torch weights file (.pth/.pt/.ckpt, zip or legacy format) nor a .safetensors file"


def _refusal_detail(text: str) -> str:
    """The one sentence of torch's weights-only refusal that says what was refused (e.g.
    "Unsupported global: GLOBAL posix.system ..."), without its advice to load unsafely."""
    for marker in ("WeightsUnpickler error:", "trusted source."):
        if marker in text:
            text = text.split(marker, 1)[1]
            break
    else:
        return ""
    text = " ".join(text.split("Check the documentation")[0].split())
    sentence = text.split(". ")[0].rstrip(".")
    return sentence if len(sentence) <= 200 else ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return " ".join(text[0].split())[:200] if text else type(exc).__name__


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def extract_state_dict(obj: Any, source: str = "weights", key: str | None = None) -> dict[str, torch.Tensor]:
    """The state_dict inside a loaded weight file (see the module docstring), prefix stripped.

    ``key`` picks one entry explicitly (e.g. ``"model"`` to skip the EMA weights).
    """
    state = obj
    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            found = ", ".join(map(str, obj)) if isinstance(obj, Mapping) else type(obj).__name__
            raise DataError(f"'{source}' has no entry {key!r} (found: {found})")
        state = obj[key]
    elif not _is_state_dict(obj) and isinstance(obj, Mapping):
        for candidate in _STATE_KEYS:
            if _is_state_dict(obj.get(candidate)):
                state = obj[candidate]
                break
    if not _is_state_dict(state):
        raise DataError(f"'{source}' does not contain a state_dict of tensors")
    out = {}
    for name, tensor in state.items():
        while name.startswith("module."):
            name = name[len("module."):]
        out[name] = tensor
    return out


def load_state_dict_checked(model: nn.Module, state: Mapping[str, torch.Tensor], source: str, strict: bool = True) -> None:
    """``model.load_state_dict`` with a one-line error naming missing, unexpected and mis-shaped keys.

    With ``strict=False`` missing/unexpected keys are tolerated but shapes must still agree
    for the keys both sides have.
    """
    own = model.state_dict()
    shapes = [
        f"{k} {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    problems = []
    if shapes:
        problems.append(f"shape mismatch: {shorten_list(shapes, _LIST_MAX)}")
    if strict and missing:
        problems.append(f"missing keys: {shorten_list(missing, _LIST_MAX)}")
    if strict and unexpected:
        problems.append(f"unexpected keys: {shorten_list(unexpected, _LIST_MAX)}")
    if problems:
        raise ConfigError(
            f"weights '{source}' do not fit {type(model).__name__}: " + "; ".join(problems)
            + (" (check the network options, or set path.strict_load: false)" if strict else "")
        )
    bad = nonfinite_tensors(state)
    if bad:
        raise DataError(
            f"weights '{source}' hold NaN/inf values in tensor {shorten_list(bad, _LIST_MAX)}: the run that wrote them diverged; "
            "use an earlier checkpoint or best_*.pth"
        )
    model.load_state_dict(dict(state), strict=False)


def nonfinite_tensors(state: Mapping[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors in ``state`` that hold a NaN or an inf.

    Why: weights that blew up load and run without complaint and give black images; every
    load and every save checks them. One device sync for the whole state.
    """
    names = [k for k, v in state.items() if isinstance(v, torch.Tensor) and (v.is_floating_point() or v.is_complex())]
    if not names:
        return []
    checks = [torch.isfinite(state[k]).all() for k in names]
    if len({c.device for c in checks}) > 1:
        checks = [c.cpu() for c in checks]
    flags = torch.stack(checks).cpu()
    if bool(flags.all()):
        return []
    return [k for k, ok in zip(names, flags.tolist()) if not ok]


def load_weights(model: nn.Module, path: str | os.PathLike, strict: bool = True, key: str | None = None) -> None:
    """Load the weights in ``path`` (any layout :func:`extract_state_dict` accepts) into ``model``."""
    state = extract_state_dict(load_file(path), str(path), key)
    load_state_dict_checked(model, state, str(path), strict)
