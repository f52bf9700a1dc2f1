"""Building the network of an option file.

What the engine asks of an architecture (size multiple, scale, input keys, ``forward_any_size``,
``in_nc``) is defined once, in :mod:`restore.archs.contract`.
"""

from __future__ import annotations

from torch import nn

from restore.config import Options
from restore.errors import ConfigError, RestoreError


def build_network(options: Options) -> nn.Module:
    """Instantiate ``options.network`` (ConfigError naming the file when there is none)."""
    if options.network is None:
        raise ConfigError(f"{options.source}: missing required key 'network'")
    return options.network.build()


def build_network_on_meta(options: Options) -> nn.Module:
    """The option file's network, built without allocating its parameters where possible.

    On the ``meta`` device tensors have shapes but no storage (checking keys and shapes of a
    115M-parameter IPT costs no memory); an architecture whose constructor needs real values
    (``.item()``, numpy) is built on the CPU instead.
    """
    import torch

    try:
        with torch.device("meta"):
            return build_network(options)
    except RestoreError:
        raise
    except Exception:
        return build_network(options)
