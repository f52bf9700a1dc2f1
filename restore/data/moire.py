"""Synthetic moiré: a photograph of the clean image shown on a screen (spec ``dda.md`` §6).

Demoireing is the one task whose data normally has to be downloaded; this simulation makes
training pairs from any clean image, in the spirit of the synthetic set of Liu et al. (2018).
It is a reconstruction [R]: the steps are the literature's, every number below is ours.

Steps, for a clean ``(C, H, W)`` image (coordinates in CLEAN pixels, x right, y down):

1. **Screen.** The image is shown on a display of pitch ``p_s`` clean pixels per screen pixel
   (``screen_pitch``; 1 = one screen pixel per image pixel, otherwise the image is first
   resized to the screen's pixel count). Each screen pixel is rendered as ``F x F`` canvas
   samples (``render_scale``): three vertical stripes, red | green | blue, each a third of the
   pixel wide, and a dark row gap (black matrix) over the bottom ``gap`` fraction of its
   height. The stripes are scaled by ``3 / (1 - gap)`` so that a pixel's mean is its value.
2. **Lens blur.** A Gaussian of std ``blur`` screen pixels on the canvas. It sets the moiré
   strength: the stripes' fundamental (1 cycle per screen pixel) keeps ``exp(-2 pi^2 blur^2)``
   of its amplitude.
3. **Camera pose.** A projective map ``M`` from clean to camera pixels: rotation by
   ``rotation`` degrees about the image centre (counter-clockwise as displayed, y down), a
   perspective jitter (each corner moved by up to ``perspective`` x the image size per axis),
   then scaling by ``1 / p_c`` with the camera pitch ``p_c = pitch_ratio * p_s`` (clean pixels
   per camera pixel). Then radial lens distortion about the image centre's projection ``c``:
   an ideal position ``p`` lands on the sensor at ``c + (p - c)(1 + k rho^2)``, ``k =
   distortion`` (< 0 barrel, > 0 pincushion), ``rho`` the radius over that of the image's
   farthest pixel.
4. **Sensor.** Every camera pixel samples the blurred canvas (bilinear, mirrored beyond the
   screen) at its centre, keeps one colour of an RGGB Bayer mosaic, gets Gaussian noise of std
   ``noise`` and is quantised to 8 bits. The camera frame is the bounding box of the imaged
   screen plus a margin, so the whole image is seen.
5. **Camera processing.** OpenCV Bayer demosaicing (``demosaic``: ``bilinear``, ``ea`` edge
   aware, ``vng``), then with probability ``jpeg_prob`` JPEG at quality ``~ U{jpeg_quality}``.
6. **Alignment.** The photo is warped back with the inverse of steps 3 (bilinear, mirrored
   borders), so the output has the clean image's size and stays aligned to it pixel for pixel.

The camera samples the screen's stripe pattern on a lattice of a slightly different pitch; the
difference frequency is the moiré. With no rotation it is ``|1/p_s - 1/p_c|`` cycles per clean
pixel across the stripes; rotation and perspective make it a 2-D vector that varies over the
image, radial distortion bends the bands.

Grey images are simulated as RGB and returned as luma (BT.601 weights). Parameters are drawn
per image from the ``torch.Generator`` passed in (then the sensor noise), so the same
generator state gives the same image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from restore.data.degradation_base import Degradation, Range, parse_range, uniform
from restore.errors import ConfigError

DEMOSAIC = ("bilinear", "ea", "vng")
#: Camera pixels kept around the imaged screen (room for the demosaicing filter at the edges).
MARGIN = 4
#: Newton steps that invert the radial distortion (|k| <= 0.2: below 1e-9 px after 6).
DISTORTION_STEPS = 6


def subpixel_weights(scale: int, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights of one screen pixel's ``scale x scale`` canvas samples: rows ``(F,)``, columns ``(F, 3)``.

    Column ``c`` gets, for each colour ``k``, the fraction of its width inside stripe ``k``
    (``[k/3, (k+1)/3)`` of the pixel); row ``r`` the fraction of its height above the dark gap
    (``[1 - gap, 1)``). Sample ``(r, c)`` of colour ``k`` weighs ``rows[r] * cols[c, k]``; the
    scaling makes each colour average 1 over the pixel.
    """
    edges = np.arange(scale + 1, dtype=np.float64) / scale
    lo, hi = edges[:-1], edges[1:]
    cols = np.stack([np.clip(np.minimum(hi, (k + 1) / 3) - np.maximum(lo, k / 3), 0, None) for k in range(3)], 1)
    rows = np.clip(np.minimum(hi, 1.0 - gap) - lo, 0, None)
    return (rows * scale / (1.0 - gap)).astype(np.float32), (cols * scale * 3.0).astype(np.float32)


def camera_homography(width: int, height: int, params: dict[str, float]) -> np.ndarray:
    """``M``, float64 ``(3, 3)``: clean pixel coordinates -> camera pixel coordinates (step 3)."""
    import cv2

    cx, cy = width / 2.0, height / 2.0
    t = math.radians(params["rotation"])
    # counter-clockwise as displayed: with y down that is the matrix of angle -t
    rot = np.array([[math.cos(t), math.sin(t), 0.0], [-math.sin(t), math.cos(t), 0.0], [0.0, 0.0, 1.0]])
    centre = np.array([[1.0, 0.0, cx], [0.0, 1.0, cy], [0.0, 0.0, 1.0]])
    rot = centre @ rot @ np.linalg.inv(centre)
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)
    shift = np.array([params[f"corner{i}"] for i in range(8)]).reshape(4, 2) * params["perspective"] * [width, height]
    persp = cv2.getPerspectiveTransform(corners.astype(np.float32), (corners + shift).astype(np.float32))
    pitch = params["pitch_ratio"] * params["screen_pitch"]
    scale = np.diag([1.0 / pitch, 1.0 / pitch, 1.0])
    return scale @ persp.astype(np.float64) @ rot


def _apply_h(h: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = h[2, 0] * x + h[2, 1] * y + h[2, 2]
    return (h[0, 0] * x + h[0, 1] * y + h[0, 2]) / w, (h[1, 0] * x + h[1, 1] * y + h[1, 2]) / w


@dataclass
class RadialDistortion:
    """Lens distortion, ideal (pinhole) camera position -> sensor position:
    ``u = c + (p - c)(1 + k |p - c|^2 / r^2)`` (one-term Brown model; ``r``: the radius of the
    image's farthest pixel, so ``|k| <= 0.2`` stays monotone over the image)."""

    k: float
    cx: float
    cy: float
    radius: float

    def forward(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = x - self.cx, y - self.cy
        f = 1.0 + self.k * (dx * dx + dy * dy) / self.radius**2
        return self.cx + dx * f, self.cy + dy * f

    def inverse(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ideal position a sensor position ``(x, y)`` sees: ``p = c + t (u - c)`` with
        ``t + b t^3 = 1``, ``b = k |u - c|^2 / r^2``, by Newton from ``t = 1`` (monotone for
        both signs of ``k``). Where ``b < -4/27`` no ideal point maps there (beyond the fold of
        a strong barrel): ``b`` is clamped, so such margin pixels see the fold's circle."""
        dx, dy = x - self.cx, y - self.cy
        b = np.maximum(self.k * (dx * dx + dy * dy) / self.radius**2, -4.0 / 27.0 + 1e-9)
        t = np.ones_like(b)
        for _ in range(DISTORTION_STEPS):
            t -= (t + b * t**3 - 1.0) / (1.0 + 3.0 * b * t * t)
        return self.cx + t * dx, self.cy + t * dy


@dataclass
class Moire(Degradation):
    """Screen-to-camera moiré (module docstring); every range is ``[low, high]`` or a number.

    Ranges (drawn uniformly per image): ``screen_pitch`` clean px per screen px,
    ``pitch_ratio`` camera pitch / screen pitch, ``rotation`` degrees, ``perspective`` corner
    jitter as a fraction of the image size, ``distortion`` radial ``k``, ``blur`` screen px,
    ``gap`` fraction of a screen pixel's height, ``noise`` std on [0, 1], ``jpeg_quality``
    integer. ``jpeg_prob``: probability of JPEG; ``demosaic``: OpenCV's method;
    ``render_scale``: canvas samples per screen pixel and axis.
    """

    screen_pitch: Range = (1.0, 1.0)
    pitch_ratio: Range = (0.9, 1.1)
    rotation: Range = (-6.0, 6.0)
    perspective: Range = (0.0, 0.05)
    distortion: Range = (-0.1, 0.1)
    blur: Range = (0.22, 0.45)
    gap: Range = (0.0, 0.25)
    noise: Range = (0.0, 0.02)
    jpeg_prob: float = 0.5
    jpeg_quality: Range = (70, 95)
    demosaic: str = "bilinear"
    render_scale: int = 3
    name: str = "moire"

    RANGES: ClassVar[tuple[str, ...]] = ("screen_pitch", "pitch_ratio", "rotation", "perspective", "distortion", "blur", "gap", "noise")

    def __post_init__(self) -> None:
        for key in (*self.RANGES, "jpeg_quality"):
            setattr(self, key, parse_range(key, getattr(self, key)))
        limits = {
            "screen_pitch": (0.25, 4.0, "clean pixels per screen pixel"),
            "pitch_ratio": (0.25, 4.0, "camera pitch / screen pitch"),
            "rotation": (-45.0, 45.0, "degrees"),
            "perspective": (0.0, 0.25, "fraction of the image size"),
            "distortion": (-0.2, 0.2, "radial coefficient k"),
            "blur": (0.0, 5.0, "screen pixels"),
            "gap": (0.0, 0.9, "fraction of a screen pixel's height"),
            "noise": (0.0, 0.5, "std on [0, 1]"),
            "jpeg_quality": (1, 100, "JPEG quality"),
        }
        for key, (lo, hi, unit) in limits.items():
            low, high = getattr(self, key)
            if low < lo or high > hi:
                raise ConfigError(f"moire option {key!r} must lie in [{lo:g}, {hi:g}] ({unit}), got {[low, high]}")
        if isinstance(self.jpeg_prob, bool) or not isinstance(self.jpeg_prob, (int, float)) or not 0 <= self.jpeg_prob <= 1:
            raise ConfigError(f"moire option 'jpeg_prob' must be a probability in [0, 1], got {self.jpeg_prob!r}")
        if self.demosaic not in DEMOSAIC:
            raise ConfigError(f"moire option 'demosaic' must be one of {', '.join(DEMOSAIC)}, got {self.demosaic!r}")
        if isinstance(self.render_scale, bool) or not isinstance(self.render_scale, int) or not 3 <= self.render_scale <= 12:
            raise ConfigError(f"moire option 'render_scale' must be an integer in 3..12, got {self.render_scale!r}")

    def draw(self, generator: torch.Generator) -> dict[str, float]:
        params = {key: uniform(generator, *getattr(self, key)) for key in self.RANGES}
        params.update({f"corner{i}": uniform(generator, -1.0, 1.0) for i in range(8)})
        params["jpeg"] = float(uniform(generator, 0.0, 1.0) < self.jpeg_prob)
        lo, hi = int(self.jpeg_quality[0]), int(self.jpeg_quality[1])
        params["jpeg_quality"] = float(torch.randint(lo, hi + 1, (), generator=generator))
        return params

    def apply(self, clean: Tensor, params: dict[str, float], generator: torch.Generator) -> Tensor:
        c, h, w = clean.shape
        if c not in (1, 3):
            raise ValueError(f"moire takes grey or RGB images, got {c} channels")
        rgb = np.clip(clean.detach().cpu().float().permute(1, 2, 0).numpy(), 0.0, 1.0)
        if c == 1:
            rgb = np.repeat(rgb, 3, axis=2)
        out = simulate(np.ascontiguousarray(rgb), params, self.render_scale, self.demosaic, generator)
        if c == 1:
            out = out @ np.array([[0.299], [0.587], [0.114]], dtype=np.float32)
        out = np.clip(out, 0.0, 1.0).transpose(2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(out)).to(clean.device, clean.dtype)


def _render_screen(rgb: np.ndarray, params: dict[str, float], scale: int) -> tuple[np.ndarray, float, float]:
    """The blurred canvas (steps 1-2) and the screen pitch per axis in clean pixels."""
    import cv2

    h, w = rgb.shape[:2]
    ws, hs = max(1, round(w / params["screen_pitch"])), max(1, round(h / params["screen_pitch"]))
    screen = rgb
    if (ws, hs) != (w, h):
        shrink = ws < w or hs < h
        screen = cv2.resize(rgb, (ws, hs), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    # each screen pixel -> scale x scale equal samples, times the sub-pixel weights (rows x cols)
    canvas = cv2.resize(screen, (ws * scale, hs * scale), interpolation=cv2.INTER_NEAREST)  # exact repeats
    rows, cols = subpixel_weights(scale, params["gap"])
    canvas *= np.tile(cols, (ws, 1))[None]
    if params["gap"] > 0:
        canvas *= np.tile(rows, hs)[:, None, None]
    sigma = params["blur"] * scale
    if sigma > 0:
        k = 2 * math.ceil(3 * sigma) + 1
        canvas = cv2.GaussianBlur(canvas, (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
    return canvas, w / ws, h / hs


def simulate(
    rgb: np.ndarray, params: dict[str, float], scale: int, demosaic: str, generator: torch.Generator
) -> np.ndarray:
    """Steps 1-6 on an RGB float32 ``(H, W, 3)`` image in [0, 1]; returns float32 ``(H, W, 3)``."""
    import cv2

    h, w = rgb.shape[:2]
    canvas, psx, psy = _render_screen(rgb, params, scale)
    hom = camera_homography(w, h, params)
    cx, cy = _apply_h(hom, np.array(w / 2.0), np.array(h / 2.0))

    # where every output pixel centre lies on the sensor (step 6's map, before the frame shift)
    oy, ox = np.arange(h, dtype=np.float64)[:, None] + 0.5, np.arange(w, dtype=np.float64)[None, :] + 0.5
    bx, by = _apply_h(hom, ox, oy)
    kx, ky = _apply_h(hom, np.array([0.5, w - 0.5, w - 0.5, 0.5]), np.array([0.5, 0.5, h - 0.5, h - 0.5]))
    radius = max(float(np.hypot(kx - cx, ky - cy).max()), 1.0)  # a quad's farthest point is a corner
    lens = RadialDistortion(params["distortion"], float(cx), float(cy), radius)
    if params["distortion"] != 0:
        bx, by = lens.forward(bx, by)
    x0, y0 = math.floor(bx.min()) - MARGIN, math.floor(by.min()) - MARGIN
    wc, hc = math.ceil(bx.max()) - x0 + MARGIN, math.ceil(by.max()) - y0 + MARGIN
    wc, hc = wc + wc % 2, hc + hc % 2

    # steps 3-4: the screen point each sensor pixel centre sees, as canvas sample coordinates
    sy, sx = np.arange(hc, dtype=np.float64)[:, None] + 0.5 + y0, np.arange(wc, dtype=np.float64)[None, :] + 0.5 + x0
    if params["distortion"] != 0:
        sx, sy = lens.inverse(sx, sy)
    qx, qy = _apply_h(np.linalg.inv(hom), sx, sy)
    map_x = (qx / psx * scale - 0.5).astype(np.float32)
    map_y = (qy / psy * scale - 0.5).astype(np.float32)
    seen = cv2.remap(canvas, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    raw = np.empty((hc, wc), np.float32)
    raw[0::2, 0::2] = seen[0::2, 0::2, 0]  # R G
    raw[0::2, 1::2] = seen[0::2, 1::2, 1]  # G B
    raw[1::2, 0::2] = seen[1::2, 0::2, 1]
    raw[1::2, 1::2] = seen[1::2, 1::2, 2]
    if params["noise"] > 0:
        raw += params["noise"] * torch.randn(hc, wc, generator=generator).numpy()
    raw8 = np.clip(np.rint(raw * 255.0), 0, 255).astype(np.uint8)

    # step 5: OpenCV names the pattern by its second row: R at (0, 0) is "BayerBG"
    code = {"bilinear": cv2.COLOR_BayerBG2RGB, "ea": cv2.COLOR_BayerBG2RGB_EA, "vng": cv2.COLOR_BayerBG2RGB_VNG}
    photo = cv2.cvtColor(raw8, code[demosaic])
    if params["jpeg"]:
        ok, data = cv2.imencode(".jpg", photo[:, :, ::-1].copy(), [cv2.IMWRITE_JPEG_QUALITY, int(params["jpeg_quality"])])
        if not ok:
            raise RuntimeError("OpenCV failed to encode a JPEG")
        photo = cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1]

    # step 6: back onto the clean image's pixel grid
    photo = np.ascontiguousarray(photo, dtype=np.float32) / 255.0
    back_x, back_y = (bx - x0 - 0.5).astype(np.float32), (by - y0 - 0.5).astype(np.float32)
    return cv2.remap(photo, back_x, back_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)

