"""What one click of the demo does, without gradio: load (or reuse) a model, restore, write, measure.

The page (:mod:`restore.demo.app`) hands over file paths (an upload keeps its original bytes,
so 16-bit files, EXIF orientation and the pixel limit behave as in ``restore infer``) and shows
what :meth:`DemoSession.restore` returns. Every user fault is a one-line
:class:`~restore.errors.RestoreError`, the CLI's where the CLI has the same fault.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import restore.api as api
from restore.data.image_io import quantize, read_image, to_channels, write_image
from restore.data.noise import parse_noise
from restore.errors import ConfigError, DataError

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Restored:
    """One result: the input as the network saw it and the result (PNG files), and a summary line."""

    before: Path
    after: Path
    text: str


def add_noise(clean: np.ndarray, noise: str, seed: int = 0) -> np.ndarray:
    """``clean`` (H, W, C) uint8 with a synthetic noise of :mod:`restore.data.noise`, clipped and
    rounded to 8 bits (seeded: the same image gets the same noise)."""
    model = parse_noise(noise, quantize=True)
    x = torch.from_numpy(clean.transpose(2, 0, 1).astype(np.float32) / np.float32(255))
    noisy = model(x, torch.Generator().manual_seed(seed))
    return quantize(noisy.permute(1, 2, 0).numpy(), 8)


class DemoSession:
    """The demo's state: the last model loaded (reused while its settings stay), and a folder for results.

    ``device``: where models run (the demo defaults to the CPU); ``folder``: where results are
    written (a new subfolder per click, so two browser tabs never overwrite each other).
    """

    def __init__(self, device: str, folder: Path) -> None:
        self.device, self.folder = device, folder
        self._lock = threading.Lock()
        self._key: tuple[str, str, int] | None = None
        self._model: api.Model | None = None

    def model(self, option_file: str, weights: str, tile: int) -> api.Model:
        """The model of these settings (``tile`` 0: the option file's own tiling), loaded once."""
        if not (option_file or "").strip():
            raise ConfigError("pick an option file")
        if not (weights or "").strip():
            raise ConfigError(f"{option_file}: no weights file given (the option file expects its released weights; "
                              "or run `restore quickstart` and use its model)")
        if tile < 0:
            raise ConfigError(f"tile must be 0 (the option file's setting) or a positive size, got {tile}")
        key = (option_file.strip(), weights.strip(), int(tile))
        if key != self._key or self._model is None:
            overrides = {"tile": int(tile)} if tile else {}
            self._model, self._key = None, None
            self._model = api.load(key[0], weights=key[1], device=self.device, **overrides)
            self._key = key
        return self._model

    def restore(self, option_file: str, weights: str, tile: int, noise: str, image: str | None,
                mask: str | None = None, progress: Progress | None = None) -> Restored:
        """Restore the image file ``image`` (with ``mask`` for shadow removal); with ``noise`` (not
        ``none``) the image is the clean reference: the noise is added first and PSNR/SSIM are shown."""
        say = progress or (lambda fraction, text: None)
        if not image:
            raise DataError("drop an image first")
        with self._lock:
            say(0.0, "loading the model")
            model = self.model(option_file, weights, tile)
            if not model.needs_mask:
                mask = None
            elif not mask:
                raise ConfigError(f"{option_file}: this network removes shadows and needs a shadow mask (white = shadow)")
            say(0.05, "reading the image")
            source = read_image(image)  # the CLI's reader: pixel limit, orientation, bit depth
            out = Path(tempfile.mkdtemp(prefix="result-", dir=self.folder))
            stem = Path(image).stem[:80] or "image"
            clean = None
            if noise and noise != "none":
                clean = quantize(to_channels(source, 1 if source.shape[2] in (1, 2) else 3), 8)
                given: np.ndarray | str = add_noise(clean, noise)
                before = write_image(out / f"{stem}_{noise}.png", given)
            else:
                given = image
                before = write_image(out / f"{stem}.png", source, bit_depth=16 if source.dtype == np.uint16 else 8)
            result = self._run(model, given, mask, source.shape[:2], say)
            after = write_image(out / f"{stem}_restored.png", result, bit_depth=16 if result.dtype == np.uint16 else 8)
        h, w = result.shape[:2]
        net = model.options.network.type if model.options.network is not None else "network"
        text = (f"restored {source.shape[1]}x{source.shape[0]} -> {w}x{h}: {net} with `{model.weights.name}` on {model.device}"
                f"{f', tiles of {model.options.infer.tile} px' if model.options.infer.tile else ''}")
        if clean is not None:
            text += " | " + self._gain(model, given, result, clean, noise)  # type: ignore[arg-type]
        say(1.0, "done")
        return Restored(before, after, text)

    @staticmethod
    def _run(model: api.Model, given: np.ndarray | str, mask: str | None, size: tuple[int, int], say: Progress) -> np.ndarray:
        """``model(given)`` (``size``: its H, W) with a forward hook reporting the fraction of forwards done."""
        h, w = size
        total = max(1, model.forwards(h, w))
        done = [0]

        def count(*_: object) -> None:
            done[0] += 1
            say(0.1 + 0.85 * min(1.0, done[0] / total), f"restoring {w}x{h}: forward {done[0]} of about {total}")

        handle = model.network.register_forward_hook(count)
        try:
            say(0.1, f"restoring {w}x{h}")
            return model(given, mask=mask)
        finally:
            handle.remove()

    @staticmethod
    def _gain(model: api.Model, noisy: np.ndarray, result: np.ndarray, clean: np.ndarray, noise: str) -> str:
        if model.scale != 1:
            return "no PSNR: the network changes the image size"
        before = api.score(noisy, clean, protocol="basicsr")
        after = api.score(result, clean, protocol="basicsr")
        return (f"{noise} noise added: PSNR {before['psnr']:.2f} dB -> {after['psnr']:.2f} dB "
                f"({after['psnr'] - before['psnr']:+.2f} dB), SSIM {before['ssim']:.3f} -> {after['ssim']:.3f} (protocol basicsr)")
