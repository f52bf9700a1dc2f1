"""The evaluator: score batches under one named protocol and aggregate them.

Usage (the engine and the CLI do this)::

    ev = Evaluator("basicsr")                   # or "sidd_matlab", "shadow_a", ...
    rows = ev.update(pred, target, names=names)  # per-image dicts, also kept in ev.rows
    ...
    t = ev.sums(); all_reduce(t); ev.load_sums(t)  # multi-GPU: pool the running sums
    print(ev.format_table())                     # markdown, protocol label in the header

``pred``/``target`` are ``(B, C, H, W)`` RGB: float in [0, 1] (network output; the protocol
quantises it) or uint8 in [0, 255] (already quantised; never re-quantised). Dataset values are
the mean of per-image values (images where a value is undefined, e.g. no shadow pixels, are
left out of that mean); shadow LAB MAE is reported both per-image ("_pi") and pooled ("_pp").
A per-image PSNR of ``inf`` (identical images) makes the mean ``inf``, as in BasicSR.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from restore.errors import ConfigError, DataError
from restore.utils.suggest import did_you_mean
from restore.metrics.color import rgb_to_y, rgb_to_y_edsr
from restore.metrics.protocols import METRICS, Protocol, get_protocol, quantize
from restore.metrics.psnr import crop, psnr
from restore.metrics.shadow import SUM_KEYS, lab_mae, prepare_family_a, prepare_family_b, region_psnr_ssim
from restore.metrics.ssim import ssim

LAB_REGIONS = (("", "all"), ("_s", "s"), ("_ns", "ns"))


class Evaluator:
    """Accumulates per-image metrics of one protocol (see the module docstring)."""

    def __init__(
        self,
        protocol: str = "basicsr",
        metrics: list[str] | None = None,
        crop_border: int | None = None,
        device: torch.device | str | None = None,
        *,
        lpips_backbone: str | None = None,
    ) -> None:
        """``protocol``: a name in :data:`PROTOCOLS`; ``metrics``: subset of the protocol's available
        metrics (default: its own list); ``crop_border``: override of the protocol's default;
        ``device``: where inputs are moved before scoring (default: where they are);
        ``lpips_backbone``: explicit LPIPS backbone checkpoint (else env var / torch hub cache).
        Raises ConfigError for unknown names and MissingWeightsError if LPIPS weights are absent."""
        self.protocol: Protocol = get_protocol(protocol)
        p = self.protocol
        available = p.available_metrics()
        if isinstance(metrics, str):
            metrics = [metrics]
        chosen = list(p.metrics if metrics is None else metrics)
        for m in chosen:
            if m not in METRICS:
                raise ConfigError(f"unknown metric {m!r}{did_you_mean(m, METRICS)} (known: {', '.join(METRICS)})")
            if m not in available:
                raise ConfigError(f"metric {m!r} is not defined for protocol {p.name!r} (available: {', '.join(available)})")
        self.metrics: tuple[str, ...] = tuple(m for m in METRICS if m in chosen)
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
        self.keys: tuple[str, ...] = self._row_keys()
        self.reset()

    # ----------------------------------------------------------------- layout
    def _row_keys(self) -> tuple[str, ...]:
        keys: list[str] = []
        shadow_a = self.protocol.shadow == "a"
        for m in self.metrics:
            if m == "lab_mae":
                keys += ["lab_mae", "lab_mae_s", "lab_mae_ns"]
            elif m in ("psnr", "ssim") and shadow_a:
                keys += [m, f"{m}_s", f"{m}_ns"]
            else:
                keys.append(m)
        return tuple(keys)

    def reset(self) -> None:
        """Forget all rows and sums."""
        self.rows: list[dict[str, float | str]] = []
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
        """Running sums and counts as a 1-D float64 tensor (all-reduce it across ranks with SUM)."""
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
    ) -> list[dict[str, float | str]]:
        """Score a batch; returns (and stores in ``.rows``) one dict per image with 'name'.

        ``mask`` (shadow protocols): ``(B, 1, H, W)`` raw mask, uint8 0..255 or float in [0, 1];
        the protocol resizes/binarises it (non-zero = shadow). Ignored by other protocols.
        """
        p = self.protocol
        if pred.ndim == 3:
            pred, target = pred[None], target[None]
            mask = mask[None] if mask is not None and mask.ndim == 3 else mask
        self._check(pred, target, names)
        if self.device is not None:
            pred, target = pred.to(self.device), target.to(self.device)
            mask = mask.to(self.device) if mask is not None else None
        x = quantize(pred, p.quantize, scale=p.scale)
        y = quantize(target, p.quantize, scale=p.scale, is_target=True)
        values: dict[str, Tensor] = {}
        if p.shadow is not None:
            self._shadow(x, y, mask, values)
        else:
            x, y = crop(x, self.crop_border), crop(y, self.crop_border)
            xc, yc = self._color(x), self._color(y)
            if "psnr" in self.metrics:
                values["psnr"] = psnr(xc, yc, data_range=p.psnr_peak)
            if "ssim" in self.metrics:
                values["ssim"] = ssim(xc, yc, data_range=p.ssim_range, variant=p.ssim)
            if "lpips" in self.metrics:
                values["lpips"] = self._lpips_values(x / p.scale, y / p.scale)
        return self._record(values, pred.shape[0], names)

    def _check(self, pred: Tensor, target: Tensor, names: Sequence[str] | None) -> None:
        what = f" ({', '.join(map(str, names))})" if names else ""
        if pred.ndim != 4:
            raise ValueError(f"expected (B, C, H, W) batches, got pred {tuple(pred.shape)}")
        if pred.shape[0] != target.shape[0] or pred.shape[1] != target.shape[1]:
            raise DataError(f"prediction {tuple(pred.shape)} and ground truth {tuple(target.shape)} do not match{what}")
        if pred.shape[-2:] != target.shape[-2:] and self.protocol.shadow != "b":
            raise DataError(f"prediction {tuple(pred.shape)} and ground truth {tuple(target.shape)} differ in size{what}")
        if pred.shape[1] not in (1, 3):
            raise DataError(f"expected 1 or 3 channels, got {pred.shape[1]}{what}")
        if self.protocol.shadow is not None and pred.shape[1] != 3:
            raise DataError(f"protocol {self.protocol.name!r} needs RGB images, got {pred.shape[1]} channel(s){what}")
        if names is not None and len(names) != pred.shape[0]:
            raise ValueError(f"{len(names)} names for a batch of {pred.shape[0]}")

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

    def _shadow(self, x: Tensor, y: Tensor, mask: Tensor | None, values: dict[str, Tensor]) -> None:
        p = self.protocol
        prepare = prepare_family_a if p.shadow == "a" else prepare_family_b
        xs, ys, shadow = prepare(x, y, mask)
        if "lpips" in self.metrics:  # on the images the protocol measures (clamped to [0, 1])
            values["lpips"] = self._lpips_values(xs, ys)
        b = x.shape[0]
        nan = torch.full((b,), math.nan, dtype=torch.float64, device=xs.device)
        if p.shadow == "a" and ("psnr" in self.metrics or "ssim" in self.metrics):
            r = region_psnr_ssim(xs, ys, shadow)
            for m in ("psnr", "ssim"):
                if m in self.metrics:
                    for suffix in ("", "_s", "_ns"):
                        values[m + suffix] = r.get(m + suffix, nan)
        elif "psnr" in self.metrics:
            values["psnr"] = psnr(xs, ys, data_range=1.0)
        if "lab_mae" in self.metrics:
            sums = lab_mae(xs, ys, shadow)
            for suffix, region in LAB_REGIONS:
                n = sums[f"n_{region}"]
                values["lab_mae" + suffix] = torch.where(n > 0, sums[f"sum_{region}"] / n.clamp(min=1), nan)
            for k in SUM_KEYS:
                self._pool[k] += float(sums[k].sum())

    def _record(self, values: dict[str, Tensor], b: int, names: Sequence[str] | None) -> list[dict[str, float | str]]:
        cols = {k: values[k].detach().to("cpu", torch.float64).tolist() for k in self.keys}
        rows = []
        for i in range(b):
            row: dict[str, float | str] = {"name": str(names[i]) if names is not None else str(len(self.rows) + i)}
            for k in self.keys:
                v = cols[k][i]
                row[k] = v
                if not math.isnan(v):
                    self._sum[k] += v
                    self._cnt[k] += 1.0
            rows.append(row)
        self._n += b
        self.rows.extend(rows)
        return rows

    # ----------------------------------------------------------------- results
    def summary(self) -> dict[str, float]:
        """Dataset values: 'n_images', per-image means, and LAB MAE as '_pp' (pooled) / '_pi'."""
        out: dict[str, float] = {"n_images": self._n}
        for k in self.keys:
            mean = self._sum[k] / self._cnt[k] if self._cnt[k] else math.nan
            if k.startswith("lab_mae"):
                region = {"lab_mae": "all", "lab_mae_s": "s", "lab_mae_ns": "ns"}[k]
                n = self._pool[f"n_{region}"]
                out[f"{k}_pp"] = self._pool[f"sum_{region}"] / n if n else math.nan
                out[f"{k}_pi"] = mean
            else:
                out[k] = mean
        return out

    def format_table(self, summary: dict[str, float] | None = None, *, title: str | None = None) -> str:
        """Markdown table of a summary (default: :meth:`summary`), protocol name and label in the header."""
        return format_table(self.summary() if summary is None else summary, self.protocol, title=title)


def format_table(summary: dict[str, float], protocol: Protocol | str, *, title: str | None = None) -> str:
    """Two-column markdown table ``| metric | <name> (<label>) |``; counts as integers, values to 4 d.p.

    ``title`` (optional) is printed on its own line above the table.
    """
    p = get_protocol(protocol) if isinstance(protocol, str) else protocol
    lines = [title, ""] if title else []
    lines += [f"| metric | {p.name} ({p.label}) |", "|---|---:|"]
    for k, v in summary.items():
        if k == "n_images":
            text = str(int(v))
        elif k == "lpips":
            text = f"{v:.4f} ({p.lpips_net})"
        else:
            text = f"{v:.4f}"
        lines.append(f"| {k} | {text} |")
    return "\n".join(lines)
