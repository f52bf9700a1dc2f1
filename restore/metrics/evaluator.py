"""The evaluator: score batches under one named protocol and aggregate them.

Usage (the engine and the CLI do this)::

    ev = Evaluator("basicsr")                   # or "sidd_matlab", "shadow_a", ...
    rows = ev.update(pred, target, names=names)  # per-image dicts, also kept in ev.rows
    ...
    t = ev.sums(device); all_reduce(t); ev.load_sums(t)  # multi-GPU: pool the running sums
    print(ev.format_table())                     # markdown, protocol label in the header

``pred``/``target`` are ``(B, C, H, W)`` RGB: float in [0, 1] (network output; the protocol
quantises it), uint8 in [0, 255] (already quantised; never re-quantised) or uint16 (16-bit PNGs:
converted to float64 ``/ 65535``, then quantised like a float image). Dataset values are the mean
of per-image values; shadow LAB MAE is reported both per-image ("_pi") and pooled ("_pp").
Which metrics exist, their keys and user metrics come from :mod:`restore.metrics.table`.
A per-image PSNR of ``inf`` (identical images) makes the mean ``inf``, as in BasicSR.

A region value (``*_s``, ``*_ns``) of an image whose region is empty (no shadow pixels, no mask)
has no value: ``None`` in its row, left out of that mean, and the summary then says how many
images the mean is over (``n_images_s`` / ``n_images_ns``). That is decided from the pixel
counts, never from NaN: a prediction or target containing NaN/inf raises :class:`DataError`
naming the image instead of silently shrinking the mean. Every input problem (sizes, dtypes,
masks, images smaller than the SSIM window or the LPIPS backbone) is a one-line DataError naming
the images, raised before anything is recorded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from restore.errors import ConfigError, DataError
from restore.metrics.color import rgb_to_y, rgb_to_y_edsr
from restore.metrics.lpips_metric import MIN_SIZE as LPIPS_MIN_SIZE
from restore.metrics.protocols import DEFAULT_PROTOCOL, Protocol, get_protocol, quantize
from restore.metrics.psnr import crop, psnr
from restore.metrics.shadow import SUM_KEYS, lab_mae, prepare_family_a, prepare_family_b, region_psnr_ssim
from restore.metrics.ssim import ssim
from restore.metrics.table import Metric, get_metric, metric_names

LAB_REGIONS = (("", "all"), ("_s", "s"), ("_ns", "ns"))
SSIM_WINDOW = {"gaussian": 11, "skimage_uniform": 7}  # 'matlab3d' pads: any size works
MAX_NAMES = 4  # images named in one error line


def _wh(t: Tensor) -> str:
    """``WxH`` of an image tensor, the order the CLI prints sizes in."""
    return f"{t.shape[-1]}x{t.shape[-2]}"


class Evaluator:
    """Accumulates per-image metrics of one protocol (see the module docstring).

    Distributed evaluation: ``rows`` holds only the images this process scored (gathering them
    is the engine's job), and the pooled numbers come from all-reducing :meth:`sums`. A
    ``DistributedSampler`` pads the last batches with duplicates of earlier images; the engine
    knows the dataset length and must drop those before :meth:`update`, or they are counted twice.
    """

    def __init__(
        self,
        protocol: str = DEFAULT_PROTOCOL,
        metrics: list[str] | None = None,
        crop_border: int | None = None,
        device: torch.device | str | None = None,
        *,
        lpips_backbone: str | None = None,
    ) -> None:
        """``protocol``: a name in :data:`PROTOCOLS`; ``metrics``: subset of the protocol's available
        metrics, user metrics of :mod:`restore.metrics.table` included (default: its own list);
        ``crop_border``: override of the protocol's default;
        ``device``: where inputs are moved before scoring (default: the prediction's device; the
        target and mask follow it);
        ``lpips_backbone``: explicit LPIPS backbone checkpoint (else env var / torch hub cache).
        Raises ConfigError for unknown names and MissingWeightsError if LPIPS weights are absent."""
        self.protocol: Protocol = get_protocol(protocol)
        p = self.protocol
        available = p.available_metrics()
        if isinstance(metrics, str):
            metrics = [metrics]
        chosen = list(p.metrics if metrics is None else metrics)
        for m in chosen:
            get_metric(m)  # ConfigError with a did-you-mean when unknown
            if m not in available:
                raise ConfigError(f"metric {m!r} is not defined for protocol {p.name!r} (available: {', '.join(available)})")
        self.metrics: tuple[str, ...] = tuple(m for m in metric_names() if m in chosen)
        if crop_border is not None and crop_border < 0:
            raise ConfigError(f"crop_border must be >= 0, got {crop_border}")
        self.crop_border: int = p.crop_border if crop_border is None else int(crop_border)
        if p.shadow is not None and self.crop_border:
            raise ConfigError(f"protocol {p.name!r} does not crop borders (got crop_border={self.crop_border})")
        self.device = torch.device(device) if device is not None else None
        self._lpips = None
        if "lpips" in self.metrics:  # fail now (missing backbone file), not at the first validation
            from restore.metrics.lpips_metric import LPIPSMetric

            self._lpips = LPIPSMetric(p.lpips_net, backbone_path=lpips_backbone, device=self.device)
        # user metrics: loaded now, so a target that cannot be imported fails before any scoring
        self._user = {m: _user_metric(get_metric(m)) for m in self.metrics if not get_metric(m).builtin}
        # row key -> (its metric, region suffix)
        self._owner: dict[str, tuple[Metric, str]] = {}
        for m in self.metrics:
            metric = get_metric(m)
            for key in metric.row_keys(p.shadow):
                self._owner[key] = (metric, key[len(m):])
        self.keys: tuple[str, ...] = tuple(self._owner)
        self.reset()

    # ----------------------------------------------------------------- layout
    def reset(self) -> None:
        """Forget all rows and sums."""
        self.rows: list[dict[str, float | str | None]] = []
        self._n = 0.0
        self._sum = {k: 0.0 for k in self.keys}
        self._cnt = {k: 0.0 for k in self.keys}
        self._pool = {k: 0.0 for k in SUM_KEYS} if "lab_mae" in self.metrics else {}

    def sum_names(self) -> list[str]:
        """Names of the entries of :meth:`sums`, in order."""
        names = ["n_images"]
        for k in self.keys:
            names += [f"sum:{k}", f"count:{k}"]
        names += [f"pool:{k}" for k in self._pool]
        return names

    def sums(self, device: torch.device | str | None = None) -> Tensor:
        """Running sums and counts as a 1-D float64 tensor (all-reduce it across ranks with SUM).

        On ``device``, else the Evaluator's ``device``, else the CPU. NCCL reduces CUDA tensors
        only, so the engine passes its device: ``t = ev.sums(device); all_reduce(t); ev.load_sums(t)``.
        """
        vals = [self._n]
        for k in self.keys:
            vals += [self._sum[k], self._cnt[k]]
        vals += list(self._pool.values())
        return torch.tensor(vals, dtype=torch.float64, device=device if device is not None else self.device)

    def load_sums(self, t: Tensor) -> None:
        """Replace the running sums by ``t`` (layout of :meth:`sums`, e.g. after an all-reduce)."""
        vals = t.detach().to("cpu", torch.float64).flatten().tolist()
        if len(vals) != len(self.sum_names()):
            raise ValueError(f"expected {len(self.sum_names())} sums ({', '.join(self.sum_names())}), got {len(vals)}")
        self._n = vals[0]
        i = 1
        for k in self.keys:
            self._sum[k], self._cnt[k] = vals[i], vals[i + 1]
            i += 2
        for k in self._pool:
            self._pool[k] = vals[i]
            i += 1

    # ----------------------------------------------------------------- scoring
    @torch.no_grad()
    def update(
        self,
        pred: Tensor,
        target: Tensor,
        mask: Tensor | None = None,
        names: Sequence[str] | None = None,
    ) -> list[dict[str, float | str | None]]:
        """Score a batch; returns (and stores in ``.rows``) one dict per image with 'name'.

        ``mask`` (shadow protocols): ``(B, 1, H, W)`` (or ``(B, 3, H, W)``, ``(B, H, W)``) raw mask,
        uint8 0..255, uint16, bool or float in [0, 1]; the protocol resizes/binarises it
        (non-zero = shadow). Family A needs it at the ground truth's size; family B takes it at
        the ground truth's or the result's size and nearest-resizes it to the result's, as
        ``evaluate_recovery.m``. Ignored by other protocols. Raises :class:`DataError` (one line
        naming the images from ``names``) for any input it cannot score; nothing is recorded then.
        """
        p = self.protocol
        if pred.ndim == 3:
            pred, target = pred[None], target[None]
            if mask is not None and mask.ndim in (2, 3):
                mask = mask.reshape(1, -1, *mask.shape[-2:])
        if mask is not None and p.shadow is None:
            mask = None
        elif mask is not None and mask.ndim == 3:
            mask = mask[:, None]
        dev = self.device if self.device is not None else pred.device
        pred, target = pred.to(dev), target.to(dev)
        mask = mask.to(dev) if mask is not None else None
        self._check(pred, target, mask, names)
        x = quantize(_as_float(pred), p.quantize, scale=p.scale)
        y = quantize(_as_float(target), p.quantize, scale=p.scale, is_target=True)
        values: dict[str, Tensor] = {}
        valid: dict[str, Tensor] = {}  # keys absent here have a value for every image
        pool: dict[str, float] = {}
        if p.shadow is not None:
            pool = self._shadow(x, y, _as_float(mask) if mask is not None else None, values, valid)
        else:
            x, y = crop(x, self.crop_border), crop(y, self.crop_border)
            xc, yc = self._color(x), self._color(y)
            if "psnr" in self.metrics:
                values["psnr"] = psnr(xc, yc, data_range=p.psnr_peak)
            if "ssim" in self.metrics:
                values["ssim"] = ssim(xc, yc, data_range=p.ssim_range, variant=p.ssim)
            if "lpips" in self.metrics:
                values["lpips"] = self._lpips_values(x / p.scale, y / p.scale)
            self._user_values(x / p.scale, y / p.scale, values)
        return self._record(values, valid, pool, pred.shape[0], names)

    # ----------------------------------------------------------------- validation
    def _labels(self, names: Sequence[str] | None, b: int) -> list[str]:
        """Display names of a batch: ``'name'``, or ``#<running index>`` without names."""
        if names is not None:
            return [repr(str(n)) for n in names]
        return [f"#{len(self.rows) + i}" for i in range(b)]

    @staticmethod
    def _names(labels: list[str], idx: list[int] | None = None) -> str:
        """``'a', 'b' (and 3 more)`` for the images at ``idx`` (default all)."""
        chosen = [labels[i] for i in idx] if idx is not None else labels
        more = f" (and {len(chosen) - MAX_NAMES} more)" if len(chosen) > MAX_NAMES else ""
        return ", ".join(chosen[:MAX_NAMES]) + more

    @classmethod
    def _images(cls, labels: list[str], idx: list[int] | None = None) -> str:
        """``image 'a'`` / ``images 'a', 'b'``."""
        n = len(labels) if idx is None else len(idx)
        return ("image " if n == 1 else "images ") + cls._names(labels, idx)

    def _check(self, pred: Tensor, target: Tensor, mask: Tensor | None, names: Sequence[str] | None) -> None:
        """Reject every input the metrics cannot score, before anything is computed or recorded."""
        p = self.protocol
        b = pred.shape[0] if pred.ndim == 4 else 1
        if names is not None and len(names) != b:
            raise ValueError(f"{len(names)} names for a batch of {b}")  # caller bug
        labels = self._labels(names, b)
        imgs = self._images(labels)
        is_are = "is" if b == 1 else "are"
        if pred.ndim != 4 or target.ndim != 4:
            raise DataError(
                f"{imgs}: expected (B, C, H, W) or (C, H, W) tensors, got prediction {tuple(pred.shape)} "
                f"and ground truth {tuple(target.shape)}"
            )
        for role, t in (("prediction", pred), ("ground truth", target)):
            if t.dtype not in (torch.uint8, torch.uint16) and not t.is_floating_point():
                raise DataError(f"{imgs}: {role} has dtype {t.dtype}; expected uint8, uint16 or floating point")
        if pred.shape[0] != target.shape[0] or pred.shape[1] != target.shape[1]:
            raise DataError(f"{imgs}: prediction {tuple(pred.shape)} and ground truth {tuple(target.shape)} do not match")
        if pred.shape[-2:] != target.shape[-2:] and p.shadow is None:  # shadow protocols resize (§4.4)
            raise DataError(f"{imgs}: sizes differ: prediction is {_wh(pred)} but ground truth is {_wh(target)}")
        if min(pred.shape[-2:]) == 0 or min(target.shape[-2:]) == 0:
            raise DataError(f"{imgs}: empty image (prediction {_wh(pred)}, ground truth {_wh(target)})")
        c = pred.shape[1]
        if c not in (1, 3):
            raise DataError(f"{imgs}: expected 1 or 3 channels, got {c}")
        if p.shadow is not None and c != 3:
            raise DataError(f"{imgs}: protocol {p.name!r} needs RGB images, got {c} channel(s)")
        if "lpips" in self.metrics and c != 3:
            raise DataError(f"{imgs}: LPIPS needs RGB images, got {c} channel(s)")
        # sizes the metrics see: cropped (non-shadow), result size (family B), 256x256 (family A)
        h, w = pred.shape[-2:]
        cb = self.crop_border
        if cb and 2 * cb >= min(h, w):
            raise DataError(f"{imgs} {is_are} {w}x{h}: crop_border {cb} leaves no pixels")
        seen = f"{w}x{h}" + (f" ({w - 2 * cb}x{h - 2 * cb} after crop_border {cb})" if cb else "")
        side = min(h, w) - 2 * cb
        n = SSIM_WINDOW.get(p.ssim or "", 0) if "ssim" in self.metrics else 0
        if side < n:
            raise DataError(f"{imgs} {is_are} {seen}, smaller than the {n}x{n} SSIM window of protocol {p.name}")
        if "lpips" in self.metrics and p.shadow != "a" and side < LPIPS_MIN_SIZE[p.lpips_net]:
            m = LPIPS_MIN_SIZE[p.lpips_net]
            raise DataError(f"{imgs} {is_are} {seen}, smaller than the {m}x{m} LPIPS {p.lpips_net} needs")
        if mask is not None:
            self._check_mask(mask, pred, target, labels)
        for role, t in (("prediction", pred), ("ground truth", target), ("mask", mask)):
            if t is None or not t.is_floating_point():
                continue
            bad = (~torch.isfinite(t).flatten(1).all(dim=1)).nonzero().flatten().tolist()
            if bad:
                subject, verb = (role, "contains") if len(bad) == 1 else (role + "s", "contain")
                raise DataError(f"{subject} for {self._names(labels, bad)} {verb} NaN/inf values")

    def _check_mask(self, mask: Tensor, pred: Tensor, target: Tensor, labels: list[str]) -> None:
        imgs = self._images(labels)
        b = pred.shape[0]
        if mask.ndim != 4 or mask.shape[0] != b or mask.shape[1] not in (1, 3):
            raise DataError(f"{imgs}: mask has shape {tuple(mask.shape)}; expected ({b}, 1, H, W) or ({b}, 3, H, W)")
        if mask.dtype not in (torch.bool, torch.uint8, torch.uint16) and not mask.is_floating_point():
            raise DataError(f"{imgs}: mask has dtype {mask.dtype}; expected uint8, uint16, bool or floating point")
        size = mask.shape[-2:]
        if self.protocol.shadow == "a" and size != target.shape[-2:]:
            raise DataError(f"{imgs}: mask is {_wh(mask)} but the ground truth is {_wh(target)}")
        if self.protocol.shadow == "b" and size not in (target.shape[-2:], pred.shape[-2:]):
            raise DataError(
                f"{imgs}: mask is {_wh(mask)} but the ground truth is {_wh(target)} and the result {_wh(pred)}"
            )

    # ----------------------------------------------------------------- metrics
    def _color(self, x: Tensor) -> Tensor:
        c = self.protocol.color
        if c == "rgb" or x.shape[1] == 1:  # grey images are their own luma (BasicSR to_y_channel)
            return x
        if c == "y_edsr":
            return rgb_to_y_edsr(x)
        return rgb_to_y(x, data_range=self.protocol.scale, round_uint8=(c == "y_round"))

    def _lpips_values(self, x: Tensor, y: Tensor) -> Tensor:
        assert self._lpips is not None
        return self._lpips(x, y)

    def _user_values(self, x: Tensor, y: Tensor, values: dict[str, Tensor]) -> None:
        """User metrics on ``(B, C, H, W)`` float64 images in [0, 1]; each must give ``(B,)`` values."""
        for name, fn in self._user.items():
            out = torch.as_tensor(fn(x, y)).to(x.device, torch.float64)
            if tuple(out.shape) != (x.shape[0],):
                raise ConfigError(
                    f"metric {name!r} ({get_metric(name).target}) returned shape {tuple(out.shape)}; "
                    f"expected one value per image, ({x.shape[0]},)"
                )
            values[name] = out

    def _shadow(
        self, x: Tensor, y: Tensor, mask: Tensor | None, values: dict[str, Tensor], valid: dict[str, Tensor]
    ) -> dict[str, float]:
        """Fill ``values``/``valid`` for a shadow family; returns the batch's LAB pool sums."""
        p = self.protocol
        prepare = prepare_family_a if p.shadow == "a" else prepare_family_b
        xs, ys, shadow = prepare(x, y, mask)
        if "lpips" in self.metrics:  # on the images the protocol measures (clamped to [0, 1])
            values["lpips"] = self._lpips_values(xs, ys)
        self._user_values(xs, ys, values)
        b = x.shape[0]
        # a region value exists iff the region has pixels (no mask: no shadow region at all)
        n_all = float(xs[0, 0].numel())
        n_s = shadow.flatten(1).sum(1).to(torch.float64) if shadow is not None else xs.new_zeros(b)
        has = {"_s": n_s > 0, "_ns": (n_all - n_s) > 0}
        zero = xs.new_zeros(b)
        if p.shadow == "a" and ("psnr" in self.metrics or "ssim" in self.metrics):
            r = region_psnr_ssim(xs, ys, shadow)
            for m in ("psnr", "ssim"):
                if m in self.metrics:
                    values[m] = r[m]
                    for suffix in ("_s", "_ns"):
                        values[m + suffix] = r.get(m + suffix, zero)
                        valid[m + suffix] = has[suffix]
        elif "psnr" in self.metrics:
            values["psnr"] = psnr(xs, ys, data_range=1.0)
        if "lab_mae" in self.metrics:
            sums = lab_mae(xs, ys, shadow)
            for suffix, region in LAB_REGIONS:
                n = sums[f"n_{region}"]
                values["lab_mae" + suffix] = sums[f"sum_{region}"] / n.clamp(min=1)
                if suffix:
                    valid["lab_mae" + suffix] = has[suffix]
            return {k: float(sums[k].sum()) for k in SUM_KEYS}
        return {}

    def _record(
        self,
        values: dict[str, Tensor],
        valid: dict[str, Tensor],
        pool: dict[str, float],
        b: int,
        names: Sequence[str] | None,
    ) -> list[dict[str, float | str | None]]:
        """Add a scored batch to rows and sums; ``valid[k]`` False = image has no value for ``k``."""
        cols = {k: values[k].detach().to("cpu", torch.float64).tolist() for k in self.keys}
        ok = {k: valid[k].detach().cpu().tolist() if k in valid else [True] * b for k in self.keys}
        labels = self._labels(names, b)
        for k in self.keys:  # finite inputs never give NaN; if one does, refuse rather than skew the mean
            bad = [i for i in range(b) if ok[k][i] and math.isnan(cols[k][i])]
            if bad:
                raise RuntimeError(f"{k} is NaN for {self._images(labels, bad)} although the inputs are finite")
        rows = []
        for i in range(b):
            row: dict[str, float | str | None] = {"name": str(names[i]) if names is not None else str(len(self.rows) + i)}
            for k in self.keys:
                if ok[k][i]:
                    row[k] = cols[k][i]
                    self._sum[k] += cols[k][i]
                    self._cnt[k] += 1.0
                else:
                    row[k] = None
            rows.append(row)
        for k, v in pool.items():
            self._pool[k] += v
        self._n += b
        self.rows.extend(rows)
        return rows

    # ----------------------------------------------------------------- results
    def summary(self) -> dict[str, float]:
        """Dataset values: 'n_images', per-image means, and LAB MAE as '_pp' (pooled) / '_pi'.

        When a per-image mean is over fewer images than ``n_images`` (region values of images
        with an empty region), its count follows ``n_images`` as ``n_images_s`` / ``n_images_ns``.
        """
        out: dict[str, float] = {"n_images": self._n}
        for k in self.keys:
            if self._cnt[k] != self._n:  # only region keys can miss values; all of a region agree
                out.setdefault(_count_name(k), self._cnt[k])
        for k in self.keys:
            mean = self._sum[k] / self._cnt[k] if self._cnt[k] else math.nan
            metric, suffix = self._owner[k]
            if metric.pooled:  # LAB MAE: the pixel sums of the shadow module
                region = {"": "all", "_s": "s", "_ns": "ns"}[suffix]
                n = self._pool[f"n_{region}"]
                out[f"{k}_pp"] = self._pool[f"sum_{region}"] / n if n else math.nan
                out[f"{k}_pi"] = mean
            else:
                out[k] = mean
        return out

    def format_table(self, summary: dict[str, float] | None = None, *, title: str | None = None) -> str:
        """Markdown table of a summary (default: :meth:`summary`), protocol name and label in the header."""
        return format_table(self.summary() if summary is None else summary, self.protocol, title=title)


def _user_metric(metric: Metric) -> Callable[[Tensor, Tensor], object]:
    """The callable of a user metric: its target, instantiated once when it is a class."""
    fn = metric.load()
    return fn() if isinstance(fn, type) else fn


def _count_name(key: str) -> str:
    """Summary name of the image count behind the mean of ``key`` ('n_images_s' for '*_s')."""
    for suffix in ("_ns", "_s"):
        if key.endswith(suffix):
            return "n_images" + suffix
    return f"n_images_{key}"


def _as_float(x: Tensor) -> Tensor:
    """uint16 (16-bit PNGs) -> float64 in [0, 1], scored like a float image; others unchanged."""
    return x.to(torch.float64) / 65535.0 if x.dtype == torch.uint16 else x


def format_table(summary: dict[str, float], protocol: Protocol | str, *, title: str | None = None) -> str:
    """Two-column markdown table ``| metric | <name> (<label>) |``; counts (``n_images*``) as integers,
    values to 4 d.p.

    ``title`` (optional) is printed on its own line above the table.
    """
    p = get_protocol(protocol) if isinstance(protocol, str) else protocol
    lines = [title, ""] if title else []
    lines += [f"| metric | {p.name} ({p.label}) |", "|---|---:|"]
    for k, v in summary.items():
        if k.startswith("n_images"):
            text = str(int(v))
        elif k == "lpips":
            text = f"{v:.4f} ({p.lpips_net})"
        else:
            text = f"{v:.4f}"
        lines.append(f"| {k} | {text} |")
    return "\n".join(lines)
