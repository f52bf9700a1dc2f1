"""Slimmable WDNet: the released network as a DDA supernet (``network: {type: wdnet_slim}``).

The module tree, parameters and state_dict are :class:`~restore.methods.wdnet.arch.WDNet`'s
(an official or ``wdnet`` checkpoint loads with ``strict=True``); every convolution of the
generator is a slim layer (:mod:`restore.archs.slimmable`), so ``net.set_width(w)`` runs the
sub-network with ``ceil(w * 64)`` feature channels and dense growth ``ceil(w * 32)``. At
width 1.0 the output is WDNet's, bit for bit.

What stays full width, and why:

* the wavelet transform and its inverse (fixed Haar filters, 3 <-> 48 channels): they are the
  image, not features;
* the input of the head's 1x1 conv (the 48 wavelet bands) and the output of the final 1x1 conv
  (48 bands back to the image): a narrower image would be another image;
* the mean shift and the global residual (no weights).

Inside a dual-branch block the two residual dense blocks read concatenations
``[x, x1, .., x_{i-1}]``; each part is slimmed on its own (``in_groups``), so the weight columns
used are the first ``ceil(w * 64)`` of ``x`` and the first ``ceil(w * 32)`` of every ``x_j``.
``xbranch`` (in the state_dict, never called) stays a plain conv.
"""

from __future__ import annotations

from typing import Literal

from restore.archs.slimmable import Slimmable, slim_conv
from restore.methods.wdnet.arch import WDNet


class SlimWDNet(Slimmable, WDNet):
    """WDNet with switchable width (``set_width``); same arguments and checkpoints as ``wdnet``."""

    #: the network type whose weights this one loads unchanged (checked by restore's weights metadata)
    weights_of = "wdnet"

    def __init__(
        self,
        channels: int = 64,
        growth: int = 32,
        dilations: list[int] | None = None,
        size_rule: Literal["resize", "pad"] = "resize",
        input_crop: Literal["tip2018"] | None = None,
        emulate_truncation: bool = False,
    ) -> None:
        super().__init__(channels, growth, dilations, size_rule, input_crop, emulate_truncation)
        head = self.cascade1
        head[0] = slim_conv(head[0], in_groups=[(head[0].in_channels, False)])
        head[2] = slim_conv(head[2])
        for block in self.cascade2:
            for rdb in (block.RDB1, block.RDB2):
                for i in range(1, 6):
                    seq = getattr(rdb, f"conv{i}")
                    seq[0] = slim_conv(seq[0], in_groups=[(channels, True)] + [(growth, True)] * (i - 1))
            block.deli[0] = slim_conv(block.deli[0])
            block.deli2[0] = slim_conv(block.deli2[0])
        tail = self.final[0]
        tail[0] = slim_conv(tail[0], slim_out=False)
