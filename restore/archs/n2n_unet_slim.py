"""Slimmable N2N UNet: :class:`~restore.archs.n2n_unet.N2NUNet` as a DDA supernet
(``network: {type: n2n_unet_slim}``), the simplest case of :mod:`restore.archs.slimmable`.

Same arguments, module tree and state_dict as ``n2n_unet`` (its checkpoints load with
``strict=True``); ``net.set_width(w)`` runs every conv and transposed conv on the first
``ceil(w * C)`` of its channels. At width 1.0 the output is the UNet's, bit for bit.

What stays full width, and why: the image channels -- the input of ``enc_conv0``, the raw input
that the last skip concatenates into ``dec_conv1a``, and the output of ``nin_c`` -- since they
are the image, not features. Every decoder conv reads ``[upsampled, skip]``; both parts are
slimmed on their own (``in_groups``). Pooling, LeakyReLU, the optional residual and the size
rules have no channels to slim.
"""

from __future__ import annotations

from restore.archs.n2n_unet import N2NUNet
from restore.archs.slimmable import Slimmable, slim_conv, slim_deconv


class SlimN2NUNet(Slimmable, N2NUNet):
    """The N2N UNet with switchable width (``set_width``); same arguments and weights as ``n2n_unet``."""

    #: the network type whose weights this one loads unchanged (checked by restore's weights metadata)
    weights_of = "n2n_unet"

    def __init__(self, in_nc: int = 3, out_nc: int = 3, n_feature: int = 48, residual: bool = False,
                 pad_square: bool = False) -> None:
        super().__init__(in_nc, out_nc, n_feature, residual, pad_square)
        f = n_feature
        self.enc_conv0 = slim_conv(self.enc_conv0, in_groups=[(in_nc, False)])
        for i in range(1, 7):
            setattr(self, f"enc_conv{i}", slim_conv(getattr(self, f"enc_conv{i}")))
        for level in (5, 4, 3, 2, 1):
            up = getattr(self, f"up{level}")
            up.deconv = slim_deconv(up.deconv)
            upsampled = f if level == 5 else 2 * f
            skip = (in_nc, False) if level == 1 else (f, True)
            setattr(self, f"dec_conv{level}a", slim_conv(getattr(self, f"dec_conv{level}a"),
                                                         in_groups=[(upsampled, True), skip]))
            setattr(self, f"dec_conv{level}b", slim_conv(getattr(self, f"dec_conv{level}b")))
        self.nin_a = slim_conv(self.nin_a)
        self.nin_b = slim_conv(self.nin_b)
        self.nin_c = slim_conv(self.nin_c, slim_out=False)
