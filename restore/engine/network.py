"""Building the network of an option file, and what the engine asks of an architecture.

An architecture is a plain ``nn.Module``. The engine reads these optional class or instance
attributes (defaults in brackets):

* ``size_multiple`` [1]: the input height and width must be multiples of it; the engine pads
  (mode ``pad_mode`` ["reflect"]) and crops the output back.
* ``scale`` [1]: output size / input size (super-resolution).
* ``input_keys`` [("input",)]: the sample entries passed to ``forward`` positionally, in order
  (a shadow-removal network declares ``("input", "mask")``); every one is a ``(B, C, H, W)``
  tensor of the input's size, padded and tiled together with it.
* ``forward_any_size(x, *extra)``: the architecture's own rule for an arbitrary input size (e.g. an
  official centred padding, or patch-wise inference); when present the engine calls it instead
  of its generic pad/run/crop. It must accept any ``(B, C, H, W)`` and return
  ``(B, C', scale*H, scale*W)``.
"""

from __future__ import annotations

from torch import nn

from restore.config import Options
from restore.errors import ConfigError


def build_network(options: Options) -> nn.Module:
    """Instantiate ``options.network`` (ConfigError naming the file when there is none)."""
    if options.network is None:
        raise ConfigError(f"{options.source}: missing required key 'network'")
    return options.network.build()


def unwrap(model: nn.Module) -> nn.Module:
    """The bare module inside DistributedDataParallel / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def size_multiple(model: nn.Module) -> int:
    return int(getattr(unwrap(model), "size_multiple", 1) or 1)


def scale_of(model: nn.Module) -> int:
    return int(getattr(unwrap(model), "scale", 1) or 1)


def input_keys(model: nn.Module) -> tuple[str, ...]:
    return tuple(getattr(unwrap(model), "input_keys", ("input",)))
