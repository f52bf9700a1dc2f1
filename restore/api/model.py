"""A restoration model in three lines: :func:`load`, then call it on images.

::

    import restore
    model = restore.load("options/neighbor2neighbor/infer/n2n_gauss25.yml", weights="model_gauss25_b4e100r02.pth")
    clean = model(noisy)        # numpy / PIL / tensor / path in, the same kind out

Nothing here computes on pixels itself: an image goes through the functions ``restore infer``
uses (:mod:`restore.engine.batch_image`: channel rule, scaling to [0, 1], the network through
the :class:`~restore.engine.inference.Restorer` the option file's ``infer`` section configures,
the non-finite check, quantisation), so a file restored here equals the file ``restore infer``
writes, bit for bit. Errors are the CLI's one-line :class:`~restore.errors.RestoreError` s.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from restore.api.convert import Returned, as_arrays, give_back
from restore.api.options import with_infer_overrides
from restore.archs.contract import scale_of
from restore.config import Options, load_options
from restore.data.image_header import max_pixels
from restore.data.image_io import read_image
from restore.data.shadow_folder import mask_from_array, read_mask
from restore.engine import batch_image
from restore.engine.backends import resolve_backend
from restore.engine.batch_image import Loaded
from restore.engine.batch_plan import Job
from restore.engine.batch_restore import (
    BatchSummary,
    inference_restorer,
    network_input_channels,
    network_name,
    restore_folder,
    takes_mask,
)
from restore.engine.checkpoint import load_weights
from restore.engine.distributed import resolve_device
from restore.engine.network import build_network
from restore.engine.weights_meta import match_network
from restore.errors import ConfigError, DataError

ImageLike = Any  # numpy array, PIL image, torch tensor, str or os.PathLike (see restore.api.convert)


class Model:
    """A network with its weights, ready to restore images as ``restore infer`` would.

    Built by :func:`load`. Attributes: ``options`` (the resolved :class:`~restore.config.Options`,
    overrides applied), ``weights`` (the file loaded), ``device``, ``network`` (the module),
    ``needs_mask`` (shadow removal), ``scale`` (output size / input size; 2..4 for IPT's SR).
    """

    def __init__(self, options: Options, weights: Path, network: nn.Module, in_nc: int | None, needs_mask: bool,
                 device: torch.device) -> None:
        self.options, self.weights, self.device = options, weights, device
        self.network, self.needs_mask = network, needs_mask
        self.scale = scale_of(network)
        self._in_nc = in_nc
        self._restorer = inference_restorer(network, options, device)

    def __repr__(self) -> str:
        return (f"Model({network_name(self.network, self.options)!r}, weights='{self.weights}', device={str(self.device)!r}, "
                f"tile={self.options.infer.tile}, backend={self._restorer.backend!r})")

    def __call__(self, image: ImageLike, mask: ImageLike | None = None) -> Any:
        """Restore ``image``; the result has the input's kind, dtype, range and layout.

        ``image``: numpy ``(H, W)`` / ``(H, W, C)`` uint8, uint16 or float in [0, 1]; a PIL image;
        a tensor ``(C, H, W)`` or ``(N, C, H, W)`` float in [0, 1] (or uint8), on any device; or a
        path (str / Path), read as ``restore infer`` reads files, giving numpy ``(H, W, C)`` at
        the file's bit depth. Output ``(scale*H, scale*W)`` with the network's channel count:
        uint8/uint16 quantised exactly as ``restore infer`` writes them, floats clamped to [0, 1].
        ``mask`` (networks that take one, e.g. shadow removal): the same kinds, ``(H, W)``,
        non-zero (white) = shadow; for a batch, one mask per image or one for all.
        """
        name = network_name(self.network, self.options)
        if self.needs_mask and mask is None:
            raise ConfigError(f"network '{name}' needs a shadow mask: call model(image, mask=mask) (white = shadow)")
        if not self.needs_mask and mask is not None:
            raise ConfigError(f"network '{name}' takes no mask; call model(image)")
        if isinstance(image, (str, os.PathLike)):
            loads, returned = self._file_loads(Path(image), mask)
        else:
            arrays, returned = as_arrays(image, "image")
            masks = self._masks(mask, len(arrays))
            loads = [batch_image.from_arrays(_job("<image>", m), a, m, self._in_nc) for a, m in zip(arrays, masks)]
        outputs = [_as_output(out, _bit_depth(returned, item)) for out, item in zip(self._forward(loads), loads)]
        return outputs[0] if returned.kind == "path" else give_back(outputs, returned)

    def forwards(self, height: int, width: int) -> int:
        """How many network forwards ``model(image)`` makes on an ``height x width`` image (tiles,
        self-ensemble): what a progress bar counts, with a forward hook on ``model.network``."""
        return self._restorer.forwards(height, width)

    def restore_folder(self, input: str | os.PathLike[str], output: str | os.PathLike[str], *,
                       mask_dir: str | os.PathLike[str] | None = None, overwrite: bool = False, fmt: str | None = None,
                       progress: bool | None = None) -> BatchSummary:
        """``restore infer`` on a folder with this model's options and weights (the same engine call).

        Outputs keep relative paths, names and bit depths (``fmt``: png/jpg/tif/bmp changes the
        format); existing outputs are skipped unless ``overwrite``. Returns the run's summary
        (``.restored``, ``.skipped``, ``.failed``, ``.line()``); failures are also printed to stderr.
        """
        return restore_folder(self.options, input, output, weights=self.weights, mask_dir=mask_dir,
                              overwrite=overwrite, fmt=fmt, progress=progress)

    # ------------------------------------------------------------------ internals
    def _file_loads(self, path: Path, mask: ImageLike | None) -> tuple[list[Loaded], Returned]:
        """A file read as restore infer's loader reads it (mask: a file, or any accepted kind)."""
        if mask is None or isinstance(mask, (str, os.PathLike)):  # exactly restore infer's loader
            loaded = batch_image.load(Job(path, path, Path(mask) if mask is not None else None), self._in_nc)
        else:
            [mask_array] = self._masks(mask, 1)
            loaded = batch_image.from_arrays(Job(path, path, Path("<mask>")), read_image(path), mask_array, self._in_nc)
        return [loaded], Returned("path", np.uint16 if loaded.bit_depth == 16 else np.uint8)

    def _masks(self, mask: ImageLike | None, count: int) -> list[np.ndarray | None]:
        if mask is None:
            return [None] * count
        if isinstance(mask, (str, os.PathLike)):
            masks = [read_mask(Path(mask))]
        else:
            masks = [mask_from_array(m) for m in as_arrays(mask, "mask")[0]]
        if len(masks) == 1:
            return masks * count
        if len(masks) != count:
            raise DataError(f"mask: {len(masks)} masks for {count} images (give one per image, or one for all)")
        return list(masks)

    def _forward(self, loads: list[Loaded]) -> list[Tensor]:
        outputs = batch_image.run(self._restorer, loads, self.device)
        for out in outputs:
            if isinstance(out, DataError):
                raise out
        return outputs  # type: ignore[return-value]


def _job(label: str, mask: np.ndarray | None) -> Job:
    """A job that only names in-memory inputs in error messages."""
    return Job(Path(label), Path(label), Path("<mask>") if mask is not None else None)


def _bit_depth(returned: Returned, item: Loaded) -> int | None:
    """8 or 16 for integer results (a file: its own depth), None for float ones."""
    if returned.kind == "path":
        return item.bit_depth
    if returned.kind == "tensor":
        return 8 if returned.dtype == torch.uint8 else None
    return {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(np.dtype(returned.dtype))


def _as_output(output: Tensor, bit_depth: int | None) -> np.ndarray:
    """``(C, H, W)`` float -> ``(H, W, C)``: quantised by the writer's rule, or float32 clamped to [0, 1]."""
    if bit_depth is None:
        return output.clamp(0, 1).permute(1, 2, 0).numpy()
    return batch_image.to_array(output, bit_depth)


def load(options: str | os.PathLike[str] | Options, weights: str | os.PathLike[str] | None = None,
         device: str | None = None, *, network_from_weights: bool = False, **overrides: Any) -> Model:
    """A :class:`Model` from an option file (or loaded options) and a weights file.

    ``weights``: any layout ``restore infer --weights`` reads (default: the option file's
    ``path.pretrained``). ``device``: ``auto`` (CUDA when available), ``cpu``, ``cuda``,
    ``cuda:N`` (default: the option file's ``device``, normally auto). ``overrides``: keys of
    the ``infer`` section (``tile=256``, ``tile_overlap=``, ``self_ensemble=True``,
    ``backend="onnxruntime"``, ``precision=``, ``channels_last=``, ``compile=``...), validated
    as option-file values. ``network_from_weights``: build the network the (restore-written)
    weights record, as ``--network-from-weights``. Raises the CLI's one-line errors.
    """
    opts = copy.deepcopy(options) if isinstance(options, Options) else load_options(options)
    opts = with_infer_overrides(opts, overrides)
    if device is not None:
        opts.device = device
    source = weights if weights is not None else opts.path.pretrained
    if source is None:
        raise ConfigError(f"{opts.source}: no weights to restore with: give weights=FILE or set path.pretrained")
    opts = match_network(opts, source, network_from_weights=network_from_weights)
    max_pixels()  # a bad RESTORE_MAX_PIXELS is one line now, not at the first image
    dev = resolve_device(opts.device)
    resolve_backend(opts.infer.backend, opts.infer.precision, dev)
    network = build_network(opts)
    needs_mask = takes_mask(network, opts)
    load_weights(network, source, strict=opts.path.strict_load)
    return Model(opts, Path(source), network, network_input_channels(network, opts), needs_mask, dev)
