"""A self-contained HTML report of a benchmark: one file, images inlined, no scripts.

Per test set: the metrics table (protocol named in the heading) and, for the best and the worst
image by the protocol's primary metric, input / output / target side by side plus a zoomed crop
of the region where the output is furthest from the target. Images are embedded as base64 PNG
data URIs and downscaled to at most :data:`DISPLAY_SIZE` pixels on their longest side, so the
file can be mailed or archived on its own.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from restore.engine.evaluate import EvalResult
from restore.metrics.protocols import get_protocol
from restore.metrics.table import higher_is_better, ranking_order

DISPLAY_SIZE = 512  # longest side of an embedded full image
CROP_SIZE = 96  # side of the zoomed region
ZOOM_SIZE = 288  # displayed side of the zoomed region (enlarged by the page, nearest neighbour)

#: (input, output, target) CPU tensors ``(C, H, W)`` of one image.
Triple = tuple[Tensor, Tensor, Tensor]


@dataclass(frozen=True)
class Panel:
    """One image ready for the page: PNG data URIs (input, output, target) of the downscaled full
    views and of the native-resolution crops, the crop window and the output's ``(H, W)``.
    A few hundred kB, whatever the image size: build it as soon as the image is restored."""

    full: tuple[str, str, str]
    crops: tuple[str, str, str]
    window: tuple[int, int, int, int]  # top, left, height, width
    size: tuple[int, int]


#: set name -> dataset index -> the images :func:`extremes` picks (triples or panels).
Images = Mapping[str, Mapping[int, "Triple | Panel"]]

def primary_metric(result: EvalResult) -> tuple[str, bool] | None:
    """``(row key, higher_is_better)`` ranking images of ``result``, both from the metric table
    (:func:`restore.metrics.table.ranking_order`): LAB MAE for shadow protocols (lower is better,
    the field's headline "RMSE"), else PSNR, else SSIM, else LPIPS, else a user metric."""
    if not result.scored:
        return None
    columns = result.columns or tuple(k for k in (result.rows[0] if result.rows else {}) if k != "name")
    for key in ranking_order(get_protocol(result.protocol).shadow is not None):
        if key in columns:
            return key, higher_is_better(key)
    return None


def extremes(result: EvalResult) -> list[tuple[str, int, dict[str, Any]]]:
    """``[("best", index, row), ("worst", index, row)]`` by :func:`primary_metric`; one entry
    (``"only"``) when a single image has a value, none when no image has one."""
    picked = primary_metric(result)
    if picked is None:
        return []
    key, higher = picked
    scored = [
        (float(row[key]), pos) for pos, row in enumerate(result.rows)
        if row.get(key) is not None and not math.isnan(float(row[key]))
    ]
    if not scored:
        return []
    indices = result.indices or list(range(len(result.rows)))
    # ties: the earlier image wins both ways, so the choice is stable
    best = min(scored, key=lambda v: (-v[0] if higher else v[0], v[1]))[1]
    worst = min(scored, key=lambda v: (v[0] if higher else -v[0], v[1]))[1]
    if best == worst:
        return [("only", indices[best], result.rows[best])]
    return [("best", indices[best], result.rows[best]), ("worst", indices[worst], result.rows[worst])]


# --------------------------------------------------------------------------- images
def _rgb(t: Tensor) -> Tensor:
    """``(C, H, W)`` -> float ``(3, H, W)`` in [0, 1] (grey replicated, extra channels dropped)."""
    t = t.detach().float().cpu()
    if t.ndim == 2:
        t = t[None]
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    return t[:3].clamp(0.0, 1.0)


def _resize(t: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    if tuple(t.shape[-2:]) == size:
        return t
    kw = {"antialias": True, "align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(t[None], size=size, mode=mode, **kw)[0].clamp(0.0, 1.0)


def fit(t: Tensor, longest: int = DISPLAY_SIZE) -> Tensor:
    """Downscale ``(C, H, W)`` (antialiased) so that its longest side is at most ``longest``."""
    h, w = t.shape[-2:]
    if max(h, w) <= longest:
        return t
    f = longest / max(h, w)
    return _resize(t, (max(1, round(h * f)), max(1, round(w * f))), "bilinear")


def worst_region(output: Tensor, target: Tensor, size: int = CROP_SIZE) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of the ``size`` x ``size`` window (clipped to the image)
    with the largest mean ``|output - target|``; found with an integral image (O(H W))."""
    err = (output - target).abs().mean(0).double()
    h, w = err.shape
    kh, kw = min(size, h), min(size, w)
    s = F.pad(err.cumsum(0).cumsum(1), (1, 0, 1, 0))
    win = s[kh:, kw:] - s[:-kh, kw:] - s[kh:, :-kw] + s[:-kh, :-kw]  # (h-kh+1, w-kw+1)
    flat = int(torch.argmax(win).item())
    return flat // win.shape[1], flat % win.shape[1], kh, kw


def views(triple: Triple) -> tuple[list[Tensor], list[Tensor], tuple[int, int, int, int]]:
    """Display images of one (input, output, target): full views (downscaled to
    :data:`DISPLAY_SIZE`) and the crops of :func:`worst_region` at native resolution (the page
    enlarges them with nearest-neighbour sampling), plus the crop window.

    The input and target are brought to the output's size first (an SR input is smaller), so
    all three crops show the same region.
    """
    x, y, t = (_rgb(v) for v in triple)
    size = tuple(y.shape[-2:])
    x = _resize(x, size, "nearest")  # type: ignore[arg-type]
    t = _resize(t, size, "bilinear")  # type: ignore[arg-type]
    top, left, kh, kw = worst_region(y, t)
    crops = [v[:, top:top + kh, left:left + kw] for v in (x, y, t)]
    return [fit(v) for v in (x, y, t)], crops, (top, left, kh, kw)


def panel(triple: Triple) -> Panel:
    """The display form of an (input, output, target) triple (see :class:`Panel`)."""
    full, crops, window = views(triple)
    h, w = triple[1].shape[-2:]
    return Panel(tuple(map(data_uri, full)), tuple(map(data_uri, crops)), window, (int(h), int(w)))  # type: ignore[arg-type]


def data_uri(t: Tensor) -> str:
    """``(3, H, W)`` float in [0, 1] -> ``data:image/png;base64,...``."""
    rgb = (t.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    ok, png = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii")


# --------------------------------------------------------------------------- html
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1700px}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ccc;padding:.25em .7em}
td:last-child{text-align:right;font-variant-numeric:tabular-nums} th{background:#f4f4f4}
.row{display:flex;flex-wrap:wrap;gap:.8em;align-items:flex-start}
figure{margin:0} figcaption{font-size:.85em;color:#555;text-align:center}
img{display:block} img.zoom{image-rendering:crisp-edges;image-rendering:pixelated}
.meta{color:#555;font-size:.9em} .note{color:#777;font-style:italic}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def markdown_table_html(table: str) -> str:
    """The evaluator's markdown table (``| a | b |`` lines) as an HTML table; other lines dropped."""
    lines = [ln.strip() for ln in table.splitlines() if ln.strip().startswith("|")]
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    rows = [r for r in rows if not all(set(c) <= set("-:") and c for c in r)]  # separator line
    if not rows:
        return ""
    head = "".join(f"<th>{_e(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _value(key: str, row: Mapping[str, Any]) -> str:
    v = row.get(key)
    if v is None:
        return "n/a"
    unit = " dB" if key.startswith("psnr") else ""
    return f"{float(v):.4f}{unit}"


def _figure(src: str, caption: str, zoom: int = 0, size: tuple[int, int] = (0, 0)) -> str:
    """One captioned image; ``zoom`` > 0 shows it ``zoom`` times larger, nearest-neighbour."""
    extra = f' class="zoom" width="{size[1] * zoom}" height="{size[0] * zoom}"' if zoom else ""
    return f'<figure><img{extra} src="{src}" alt="{_e(caption)}"><figcaption>{_e(caption)}</figcaption></figure>'


def _image_section(result: EvalResult, which: str, index: int, row: Mapping[str, Any],
                   image: Triple | Panel | None) -> str:
    key, higher = primary_metric(result)  # type: ignore[misc]
    title = {"best": "Best image", "worst": "Worst image", "only": "Best and worst image (a single image)"}[which]
    order = "higher is better" if higher else "lower is better"
    values = ", ".join(f"{k} {_value(k, row)}" for k in result.columns if row.get(k) is not None)
    parts = [f"<h3>{title}: {_e(row['name'])} ({_e(key)} {_value(key, row)}; {order})</h3>"]
    parts.append(f'<p class="meta">dataset index {index}; {_e(values)}</p>')
    if image is None:
        parts.append('<p class="note">images not available</p>')
        return "\n".join(parts)
    pan = image if isinstance(image, Panel) else panel(image)
    (top, left, kh, kw), (h, w) = pan.window, pan.size
    labels = ("input", "output", "target")
    parts.append('<div class="row">' + "".join(
        _figure(uri, f"{label} ({w}x{h})") for uri, label in zip(pan.full, labels)
    ) + "</div>")
    zoom = max(1, ZOOM_SIZE // max(kh, kw))
    where = f"{kw}x{kh} crop at x={left}, y={top} (largest |output - target|), {zoom}x nearest"
    parts.append('<div class="row">' + "".join(
        _figure(uri, f"{label}: {where}", zoom, (kh, kw)) for uri, label in zip(pan.crops, labels)
    ) + "</div>")
    return "\n".join(parts)


def _anchor(name: str) -> str:
    return "set-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in name)


def render(results: Mapping[str, EvalResult], images: Images | None = None, *, title: str = "restore benchmark",
           meta: Mapping[str, Any] | None = None, summary_table: str | None = None) -> str:
    """The report as an HTML string (see :func:`write_report`)."""
    images = images or {}
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
    ]
    info = dict(meta or {})
    info.setdefault("generated", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    out.append('<p class="meta">' + "<br>".join(f"{_e(k)}: {_e(v)}" for k, v in info.items() if v is not None) + "</p>")
    if summary_table:
        out.append(f'<section id="summary"><h2>Summary</h2>{summary_table}</section>')
    if len(results) > 1:
        out.append("<ul>" + "".join(
            f'<li><a href="#{_anchor(n)}">{_e(n)}</a> — {_e(_protocol_words(r))}</li>' for n, r in results.items()
        ) + "</ul>")
    for set_name, result in results.items():
        out.append(f'<section id="{_anchor(set_name)}">')
        if not result.scored:
            out.append(f"<h2>{_e(set_name)} — {_e(result.label)}</h2>")
            out.append(f'<p class="meta">{result.n_images} images restored; saved under {_e(set_name)}/images/</p>')
            out.append(markdown_table_html(result.table))
            out.append("</section>")
            continue
        out.append(f"<h2>{_e(set_name)} — protocol {_e(result.protocol)} ({_e(result.label)})</h2>")
        desc = get_protocol(result.protocol).description
        out.append(f'<p class="meta">{result.n_images} images; {_e(desc)}</p>')
        out.append(markdown_table_html(result.table))
        picked = extremes(result)
        if not picked:
            out.append('<p class="note">no per-image values to rank images by</p>')
        for which, index, row in picked:
            out.append(_image_section(result, which, index, row, images.get(set_name, {}).get(index)))
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _protocol_words(result: EvalResult) -> str:
    return f"{result.protocol} ({result.label})" if result.scored else result.label


def write_report(path: str | os.PathLike, results: Mapping[str, EvalResult], images: Images | None = None, *,
                 title: str = "restore benchmark", meta: Mapping[str, Any] | None = None,
                 summary_table: str | None = None) -> Path:
    """Write the HTML report of ``results`` (set name -> result) to ``path`` atomically.

    ``images[set][index]`` holds the (input, output, target) CPU tensors, or their
    :func:`panel`, of the images that :func:`extremes` picks for that set (:func:`needed`;
    missing ones are noted in the report); ``meta`` adds
    ``key: value`` lines under the title (weights, option file, ...); ``summary_table`` (HTML,
    :func:`restore.engine.results_table.to_html`) goes at the top, before the per-set sections.
    """
    from restore.utils.files import atomic_write

    return atomic_write(path, render(results, images, title=title, meta=meta, summary_table=summary_table))


def needed(results: Mapping[str, EvalResult]) -> dict[str, list[int]]:
    """Set name -> the dataset indices the report shows (pass their triples as ``images``)."""
    return {name: [index for _, index, _ in extremes(r)] for name, r in results.items()}


__all__: Sequence[str] = (
    "Panel", "write_report", "render", "extremes", "primary_metric", "needed", "panel", "views", "worst_region",
)
