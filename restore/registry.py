"""Name -> component lookup, lazy by construction.

Option files pick architectures, datasets, losses, metrics, optimizers and schedulers by
name. The table below maps each name to ``"module:attribute"``; the module is imported only
when the name is first resolved, so ``import restore`` stays cheap and importing one
architecture never drags in the others. Adding a component is one new file plus one line here
(or a call to :func:`register` from user code).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from restore.errors import ConfigError
from restore.utils.suggest import closest

KINDS = ("arch", "dataset", "loss", "metric", "optimizer", "scheduler", "train_step")

_TABLE: dict[str, dict[str, str]] = {
    "arch": {
        "n2n_unet": "restore.archs.n2n_unet:N2NUNet",
        "tape_r": "restore.archs.tape:TAPER",
        "tape_r_base": "restore.archs.tape:TAPERBase",
        "uformer": "restore.archs.uformer:Uformer",
        "uformer_t": "restore.archs.uformer:UformerT",
        "uformer_s": "restore.archs.uformer:UformerS",
        "uformer_b": "restore.archs.uformer:UformerB",
        "labnet": "restore.archs.labnet:LABNet",
        "with_mask": "restore.archs.mask_input:WithMask",
        "ipt": "restore.archs.ipt:IPT",
        "wdnet": "restore.archs.wdnet:WDNet",
    },
    "dataset": {
        "paired_folder": "restore.data.paired_folder:PairedFolderDataset",
        "synthetic_noise": "restore.data.synthetic_noise:SyntheticNoiseDataset",
        "noisy_folder": "restore.data.noisy_folder:NoisyFolderDataset",
        "shadow_folder": "restore.data.shadow_folder:ShadowDataset",
        "sidd_blocks": "restore.data.sidd_blocks:SIDDBlocksDataset",
        "degraded_folder": "restore.data.degraded_folder:DegradedFolderDataset",
        "mixture": "restore.data.mixture:MixtureDataset",
    },
    "loss": {
        "l1": "restore.losses.pixel:L1Loss",
        "l2": "restore.losses.pixel:L2Loss",
        "charbonnier": "restore.losses.pixel:CharbonnierLoss",
        "labnet_perceptual": "restore.losses.lab_space:LabNetPerceptualLoss",
        "sobel_gradient": "restore.losses.lab_space:SobelGradientLoss",
        "perceptual": "restore.losses.perceptual:PerceptualLoss",
        "wavelet_l1": "restore.losses.wavelet:WaveletL1Loss",
        "wavelet_texture": "restore.losses.wavelet:WaveletTextureLoss",
    },
    "metric": {
        "psnr": "restore.metrics.psnr:psnr",
        "ssim": "restore.metrics.ssim:ssim",
        "lpips": "restore.metrics.lpips_metric:LPIPSMetric",
        "lab_mae": "restore.metrics.shadow:lab_mae",
    },
    "optimizer": {
        "adam": "torch.optim:Adam",
        "adamw": "torch.optim:AdamW",
    },
    "scheduler": {
        "cosine": "restore.optim.schedulers:WarmupCosine",
        "multistep": "restore.optim.schedulers:WarmupMultiStep",
        "constant": "restore.optim.schedulers:WarmupConstant",
        "exponential": "restore.optim.schedulers:WarmupExponential",
        "linear": "restore.optim.schedulers:WarmupLinear",
    },
    "train_step": {
        "supervised": "restore.engine.train_step:SupervisedStep",
        "labnet": "restore.engine.labnet_step:LabSpaceStep",
        "neighbor2neighbor": "restore.engine.neighbor2neighbor_step:Neighbor2NeighborStep",
        "tape_prior": "restore.engine.tape_step:TapePriorStep",
        "ipt_pretrain": "restore.engine.ipt_pretrain_step:IPTPretrainStep",
    },
}


def _check_kind(kind: str) -> None:
    if kind not in _TABLE:
        raise ValueError(f"unknown registry kind {kind!r}; kinds are {', '.join(KINDS)}")


def names(kind: str) -> list[str]:
    """Sorted names registered for ``kind``, without importing anything."""
    _check_kind(kind)
    return sorted(_TABLE[kind])


def target(kind: str, name: str) -> str:
    """The ``"module:attribute"`` string behind a name (no import)."""
    _check_kind(kind)
    try:
        return _TABLE[kind][name]
    except KeyError:
        raise ConfigError(unknown_name_message(kind, name)) from None


def unknown_name_message(kind: str, name: str) -> str:
    known = names(kind)
    match = closest(str(name), known)
    hint = f"; did you mean {match!r}?" if match else ""
    listing = ", ".join(known) if known else "none registered"
    return f"unknown {kind} {name!r}{hint} (known: {listing})"


def get(kind: str, name: str) -> Any:
    """Import and return the component registered as ``name`` under ``kind``."""
    module_name, _, attr = target(kind, name).partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def register(kind: str, name: str, where: str) -> None:
    """Add (or replace) an entry, e.g. ``register("arch", "mynet", "mypkg.mynet:MyNet")``.

    Called explicitly by user code; nothing registers itself at import time.
    """
    _check_kind(kind)
    if ":" not in where:
        raise ValueError(f"registry target must look like 'module:attribute', got {where!r}")
    _TABLE[kind][name] = where


@contextmanager
def registered(kind: str, name: str, where: str) -> Iterator[None]:
    """``register`` for the duration of a ``with`` block, then put back what was there (tests,
    notebooks, plug-ins tried out without touching the global table for good)."""
    _check_kind(kind)
    previous = _TABLE[kind].get(name)
    register(kind, name, where)
    try:
        yield
    finally:
        if previous is None:
            _TABLE[kind].pop(name, None)
        else:
            _TABLE[kind][name] = previous
