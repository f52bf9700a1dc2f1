"""The moiré prior of DDA (shared/specs/dda.md §2): a cheap score of how much moiré a patch holds.

Moiré on a photographed screen is colourful and high-frequency, so DDA scores a patch by the
product of the two::

    score = colourfulness(patch) * frequency(patch)

* :func:`colourfulness` -- Hasler and Süsstrunk's measure on the patch resized to 256x256
  (OpenCV bilinear): ``rg = R - G``, ``yb = (R + G) / 2 - B``;
  ``M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)`` (population std).
  The reference reads patches with OpenCV, whose plane 2 is red; here the input is RGB, so R, G,
  B are the true channels, as the reference's are.
* :func:`frequency` -- the OpenCV BGR->GRAY grey image (8-bit, as ``cv2.cvtColor`` rounds it),
  its 2-D FFT centre-shifted and multiplied by the Gaussian high-pass
  ``H = 1 - exp(-D^2 / (2 D0^2))`` (``D`` the distance to the centre, ``D0 = 5``), the inverse
  FFT, its magnitude saturated to 8 bits (rounded, clipped to 255), and the mean. ``H`` is built
  at the patch's own size (the reference builds it for its 512x512 patches; spec [R]); the centre
  is the DC bin after the shift, ``(h // 2, w // 2)``, which is the reference's ``(h / 2, w / 2)``
  for the even sizes it uses.

A grey patch (one channel) has no colour: its colourfulness, and so its score, is 0.
All functions take one ``(H, W, 3)`` RGB (or ``(H, W)`` / ``(H, W, 1)`` grey) uint8 array.
"""

from __future__ import annotations

import numpy as np

#: Side the colourfulness is measured at (the reference resizes every patch to it).
COLOUR_SIZE = 256
#: Cut-off of the Gaussian high-pass, in frequency bins.
D0 = 5.0


def _check(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        raise ValueError(f"the moiré prior reads 8-bit images, got dtype {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"expected an (H, W, 3) RGB or (H, W) grey image, got shape {image.shape}")
    return image


def colourfulness(image: np.ndarray) -> float:
    """Hasler-Süsstrunk colourfulness of ``(H, W, 3)`` uint8 RGB at 256x256 (0 for a grey image)."""
    import cv2

    image = _check(image)
    if image.ndim == 2:
        return 0.0
    if image.shape[:2] != (COLOUR_SIZE, COLOUR_SIZE):
        image = cv2.resize(image, (COLOUR_SIZE, COLOUR_SIZE), interpolation=cv2.INTER_LINEAR)
    r, g, b = (image[..., k].astype(np.float64) for k in range(3))
    rg = r - g
    yb = 0.5 * (r + g) - b
    spread = np.sqrt(rg.std() ** 2 + yb.std() ** 2)
    offset = np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float(spread + 0.3 * offset)


def grey(image: np.ndarray) -> np.ndarray:
    """The 8-bit grey image OpenCV makes of an RGB image (``cv2.COLOR_RGB2GRAY`` on true RGB is
    the reference's ``COLOR_BGR2GRAY`` on its BGR array); a grey image is returned as it is."""
    import cv2

    image = _check(image)
    return image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)


def gaussian_high_pass(height: int, width: int, d0: float = D0) -> np.ndarray:
    """``H = 1 - exp(-D^2 / (2 d0^2))`` on a centre-shifted ``(height, width)`` spectrum (float64)."""
    u = np.arange(height, dtype=np.float64)[:, None] - height // 2
    v = np.arange(width, dtype=np.float64)[None, :] - width // 2
    return 1.0 - np.exp(-(u**2 + v**2) / (2.0 * d0**2))


def high_pass_magnitude(grey_image: np.ndarray, d0: float = D0) -> np.ndarray:
    """``|IFFT(H * FFT(g))|`` of a 2-D grey image, saturated to uint8 (rounded, clipped to 255)."""
    g = np.asarray(grey_image, dtype=np.float64)
    if g.ndim != 2:
        raise ValueError(f"expected a 2-D grey image, got shape {g.shape}")
    spectrum = np.fft.fftshift(np.fft.fft2(g)) * gaussian_high_pass(*g.shape, d0)
    magnitude = np.abs(np.fft.ifft2(np.fft.ifftshift(spectrum)))
    return np.clip(np.rint(magnitude), 0, 255).astype(np.uint8)


def frequency(image: np.ndarray, d0: float = D0) -> float:
    """Mean of the saturated high-pass magnitude of the patch's grey image (0..255)."""
    return float(high_pass_magnitude(grey(image), d0).mean())


def moire_score(image: np.ndarray) -> float:
    """DDA's moiré prior of one ``(H, W, 3)`` uint8 RGB patch: colourfulness x frequency."""
    return colourfulness(image) * frequency(image)
