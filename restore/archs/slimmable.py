"""Width-switchable layers: one set of weights, run at a fraction of its channels (slimmable networks).

DDA (shared/specs/dda.md §1) restores easy patches with a narrow network and hard ones with a
wide one, all sub-networks of one parameter-shared supernet. A layer at width multiplier ``w``
uses the first ``ceil(w * C_out)`` output channels of its weight and the input channels the
layer before it produced, so no parameter is added and the state_dict is the original one.

* :class:`SlimConv2d` / :class:`SlimConvTranspose2d` -- drop-in subclasses of the torch layers
  (same parameters, same state_dict keys). ``in_groups`` describes an input that is a
  concatenation (a dense block's ``[x, x1, x2, ...]``, a UNet's ``[up, skip]``): each group is
  slimmed on its own, so the weight columns used are the first ``ceil(w * size)`` of every group.
  A group marked ``False`` stays whole (the image channels that enter a network);
  ``slim_out=False`` keeps every output channel (the image channels that leave it).
* At width 1.0 a layer runs the parent class's own ``forward``: the output is the original
  network's, bit for bit.
* :class:`Slimmable` -- the mixin a network gets: :meth:`Slimmable.set_width` sets the width of
  every slim layer inside; :func:`at_width` does it for a ``with`` block.

The networks here need no width-dependent normalisation (WDNet and the N2N UNet have none); a
network with batch norm would need one set of statistics per width (switchable BN).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: An input group: (channels at full width, whether it is slimmed).
Group = tuple[int, bool]


def active_channels(channels: int, width: float) -> int:
    """``ceil(width * channels)``, at least 1 (rounded first, so 0.3 * 70 = 21, not 22)."""
    if not 0 < width <= 1:
        raise ValueError(f"width must be in (0, 1], got {width}")
    return max(1, math.ceil(round(width * channels, 6)))


def _groups(channels: int, in_groups: Sequence[Group] | None) -> tuple[Group, ...]:
    groups = tuple((int(n), bool(s)) for n, s in in_groups) if in_groups else ((channels, True),)
    if sum(n for n, _ in groups) != channels:
        raise ValueError(f"in_groups {groups} do not add up to the layer's {channels} input channels")
    return groups


class _SlimLayer:
    """What both slim layers share: the width, and which input/output channels it selects."""

    width: float
    slim_out: bool
    in_groups: tuple[Group, ...]
    _index: dict[tuple[float, torch.device], Tensor]

    def _setup(self, channels_in: int, in_groups: Sequence[Group] | None, slim_out: bool) -> None:
        self.width = 1.0
        self.slim_out = slim_out
        self.in_groups = _groups(channels_in, in_groups)
        self._index = {}

    def active_in(self, width: float | None = None) -> int:
        """Input channels this layer reads at ``width`` (default: its current width)."""
        w = self.width if width is None else width
        return sum(active_channels(n, w) if slim else n for n, slim in self.in_groups)

    def active_out(self, full: int, width: float | None = None) -> int:
        w = self.width if width is None else width
        return active_channels(full, w) if self.slim_out else full

    def in_selection(self, device: torch.device) -> slice | Tensor:
        """The input channels of the weight in use: a slice when they are a prefix, else indices."""
        w = self.width
        used = [active_channels(n, w) if slim else n for n, slim in self.in_groups]
        if all(u == n for u, (n, _) in zip(used[:-1], self.in_groups[:-1])):
            return slice(0, sum(used))
        key = (w, device)
        if key not in self._index:
            starts = [0]
            for n, _ in self.in_groups[:-1]:
                starts.append(starts[-1] + n)
            self._index[key] = torch.cat([torch.arange(a, a + u) for a, u in zip(starts, used)]).to(device)
        return self._index[key]

    def _check_input(self, x: Tensor) -> None:
        expected = self.active_in()
        if x.shape[1] != expected:
            raise ValueError(
                f"{type(self).__name__} at width {self.width} expects {expected} input channels, got {x.shape[1]}"
            )


def _select(weight: Tensor, dim: int, selection: slice | Tensor) -> Tensor:
    if isinstance(selection, slice):
        return weight.narrow(dim, selection.start, selection.stop - selection.start)
    return weight.index_select(dim, selection)


class SlimConv2d(_SlimLayer, nn.Conv2d):
    """``nn.Conv2d`` (groups = 1) that runs on the first channels at ``self.width`` < 1."""

    def __init__(self, *args: object, in_groups: Sequence[Group] | None = None, slim_out: bool = True,
                 **kwargs: object) -> None:
        nn.Conv2d.__init__(self, *args, **kwargs)  # type: ignore[arg-type]
        if self.groups != 1:
            raise ValueError("SlimConv2d supports groups=1 only")
        self._setup(self.in_channels, in_groups, slim_out)

    def forward(self, x: Tensor) -> Tensor:
        if self.width >= 1.0:
            return nn.Conv2d.forward(self, x)
        self._check_input(x)
        weight = _select(self.weight, 1, self.in_selection(x.device))[: self.active_out(self.out_channels)]
        bias = self.bias[: self.active_out(self.out_channels)] if self.bias is not None else None
        return self._conv_forward(x, weight, bias)


class SlimConvTranspose2d(_SlimLayer, nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` (groups = 1, no ``output_size``) on the first channels at width < 1.

    Its weight is ``(C_in, C_out, k, k)``: inputs on dim 0, outputs on dim 1.
    """

    def __init__(self, *args: object, in_groups: Sequence[Group] | None = None, slim_out: bool = True,
                 **kwargs: object) -> None:
        nn.ConvTranspose2d.__init__(self, *args, **kwargs)  # type: ignore[arg-type]
        if self.groups != 1:
            raise ValueError("SlimConvTranspose2d supports groups=1 only")
        self._setup(self.in_channels, in_groups, slim_out)

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        if self.width >= 1.0:
            return nn.ConvTranspose2d.forward(self, x, output_size)
        if output_size is not None:
            raise ValueError("SlimConvTranspose2d below full width does not take output_size")
        self._check_input(x)
        out = self.active_out(self.out_channels)
        weight = _select(self.weight, 0, self.in_selection(x.device))[:, :out]
        bias = self.bias[:out] if self.bias is not None else None
        return F.conv_transpose2d(x, weight, bias, self.stride, self.padding, self.output_padding, self.groups,
                                  self.dilation)


def slim_conv(conv: nn.Conv2d, in_groups: Sequence[Group] | None = None, slim_out: bool = True) -> SlimConv2d:
    """A :class:`SlimConv2d` with ``conv``'s settings that shares its parameters (no copy)."""
    new = SlimConv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                     dilation=conv.dilation, bias=conv.bias is not None, padding_mode=conv.padding_mode,
                     device="meta", in_groups=in_groups, slim_out=slim_out)
    new.weight, new.bias = conv.weight, conv.bias
    return new


def slim_deconv(deconv: nn.ConvTranspose2d, in_groups: Sequence[Group] | None = None,
                slim_out: bool = True) -> SlimConvTranspose2d:
    """A :class:`SlimConvTranspose2d` with ``deconv``'s settings that shares its parameters."""
    new = SlimConvTranspose2d(deconv.in_channels, deconv.out_channels, deconv.kernel_size, stride=deconv.stride,
                              padding=deconv.padding, output_padding=deconv.output_padding, dilation=deconv.dilation,
                              bias=deconv.bias is not None, device="meta", in_groups=in_groups, slim_out=slim_out)
    new.weight, new.bias = deconv.weight, deconv.bias
    return new


def slim_layers(model: nn.Module) -> Iterator[_SlimLayer]:
    """Every slim layer inside ``model``."""
    return (m for m in model.modules() if isinstance(m, _SlimLayer))


def is_slimmable(model: nn.Module) -> bool:
    """Whether ``model`` can change width (it has :meth:`Slimmable.set_width`)."""
    return callable(getattr(model, "set_width", None))


class Slimmable:
    """Mixin for a network built of slim layers: ``net.set_width(0.5)`` runs it at half width.

    The width is a setting of the instance, not an input: export, tiling and self-ensemble see an
    ordinary module. Widths are fractions in (0, 1] of the original channels.
    """

    def set_width(self, width: float) -> None:
        """Run every slim layer at ``width`` from now on (1.0: the original network)."""
        active_channels(1, width)  # range check
        for layer in slim_layers(self):  # type: ignore[arg-type]
            layer.width = float(width)

    @property
    def width(self) -> float:
        """The current width (of the first slim layer; all share it)."""
        return next((layer.width for layer in slim_layers(self)), 1.0)  # type: ignore[arg-type]


@contextmanager
def at_width(model: nn.Module, width: float) -> Iterator[nn.Module]:
    """Run ``model`` (a :class:`Slimmable`) at ``width`` inside the block, then put the old width back."""
    previous = model.width  # type: ignore[attr-defined]
    model.set_width(width)  # type: ignore[attr-defined]
    try:
        yield model
    finally:
        model.set_width(previous)  # type: ignore[attr-defined]
