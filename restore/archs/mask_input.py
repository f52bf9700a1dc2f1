"""Any architecture as a mask-taking one: the shadow mask as an extra input channel.

Uformer's ``dd_in`` and similar options let a network read more channels than it outputs;
shadow-removal variants use it to read the image and the shadow mask together. ``with_mask``
does this for every registered architecture, so one option file trains any of them for shadow
removal by changing its ``network`` section:

.. code-block:: yaml

    network:
      type: with_mask
      network: {type: n2n_unet, in_nc: 4, out_nc: 3}   # image channels + 1

The wrapper declares ``input_keys = ("input", "mask")``, so the engine hands it the sample's
mask (validation, ``restore test``, ``restore infer --mask-dir``), and runs the inner network on
``cat([image, mask], dim=1)``. Its size rules (``size_multiple``, ``pad_mode``, ``scale`` and
``forward_any_size``) are the inner network's: the engine pads image and mask together. Inner
weights live under ``network.`` in the state dict. An exported graph (fast backends) is the inner
network's core (``export_core``), so an inner ``forward_any_size`` still works.
"""

from __future__ import annotations

from typing import Annotated, Any

import torch
from torch import Tensor, nn

from restore import registry
from restore.archs.contract import input_channels
from restore.component import Component, Kind
from restore.errors import ConfigError

DEFAULT_NETWORK = Component("arch", "n2n_unet", {"in_nc": 4, "out_nc": 3})


def _declared_in_nc(spec: Component | None, net: nn.Module) -> int | None:
    """The inner network's input channels when it says; ``None`` when it has no such notion."""
    if spec is None:
        return input_channels(net)
    return input_channels(net, spec.args, registry.get(spec.kind, spec.type))


class WithMask(nn.Module):
    """The mask as an extra input channel of ``network``.

    Args (YAML options):
        network: the inner architecture section (validated like a top-level ``network``); it must
            take the image channels + 1 (``in_nc: 4`` for RGB). Default: the N2N UNet with
            ``in_nc: 4``. From Python, an ``nn.Module`` is accepted as well.
        mask_threshold: ``null`` (default) feeds the mask as read, in [0, 1]; a number feeds the
            binary ``mask > mask_threshold`` instead (e.g. 0.5 for JPEG masks).
        residual: add the image to the output (the network predicts a correction); needs
            as many output channels as image channels.

    forward: image (B, C, H, W) + mask (B, 1, H, W) -> the inner network's output.
    """

    input_keys = ("input", "mask")

    def __init__(
        self,
        network: Annotated[Component, Kind("arch")] = DEFAULT_NETWORK,
        mask_threshold: float | None = None,
        residual: bool = False,
    ) -> None:
        super().__init__()
        spec = network if isinstance(network, Component) else None
        if isinstance(network, dict):
            spec = Component("arch", network["type"], {k: v for k, v in network.items() if k != "type"})
        if spec is not None:
            if spec.type == "with_mask":
                raise ConfigError("with_mask cannot wrap with_mask: give the inner architecture itself")
            network = spec.build()
        if not isinstance(network, nn.Module):
            raise ConfigError(
                f"with_mask network must be an architecture section or a module, got {type(network).__name__}"
            )
        if "mask" in tuple(getattr(network, "input_keys", ("input",))):
            raise ConfigError(f"with_mask: {type(network).__name__} already takes the mask as its own input")
        in_nc = _declared_in_nc(spec, network)
        if in_nc is not None and in_nc not in (2, 4):
            raise ConfigError(
                f"with_mask: the inner network takes {in_nc} input channels; with the mask as an extra "
                "channel it needs the image channels + 1 (in_nc: 4 for RGB, 2 for grey)"
            )
        self.network = network
        self.mask_threshold, self.residual = mask_threshold, residual
        # Image channels, read by batch-restore to load inputs as grey or colour.
        self.in_nc = in_nc - 1 if in_nc is not None else None

    # Size rules of the inner network (read by the engine with getattr).
    @property
    def size_multiple(self) -> int:
        return int(getattr(self.network, "size_multiple", 1) or 1)

    @property
    def pad_mode(self) -> str:
        return getattr(self.network, "pad_mode", "reflect")

    @property
    def scale(self) -> int:
        return int(getattr(self.network, "scale", 1) or 1)

    @property
    def export_core(self) -> str:
        """The inner network's core: the join and the residual stay Python around its graph."""
        return "network." + str(getattr(self.network, "export_core", "forward") or "forward")

    def __getattr__(self, name: str) -> Any:
        # forward_any_size exists exactly when the inner network has one: the engine tests
        # hasattr() to choose between it and its own generic padding.
        if name == "forward_any_size" and hasattr(self._modules.get("network"), name):
            return self._forward_any_size
        return super().__getattr__(name)

    def _joined(self, x: Tensor, mask: Tensor) -> Tensor:
        if mask.shape[0] != x.shape[0] or mask.shape[-2:] != x.shape[-2:]:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not match image {tuple(x.shape)}")
        if self.mask_threshold is not None:
            mask = mask > self.mask_threshold
        return torch.cat([x, mask.to(x.dtype)], dim=1)

    def _finish(self, out: Tensor, x: Tensor) -> Tensor:
        return out + x if self.residual else out

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return self._finish(self.network(self._joined(x, mask)), x)

    def _forward_any_size(self, x: Tensor, mask: Tensor) -> Tensor:
        return self._finish(self.network.forward_any_size(self._joined(x, mask)), x)
