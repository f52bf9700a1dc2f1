"""Building the network of an option file.

What the engine asks of an architecture (size multiple, scale, input keys, ``forward_any_size``,
``in_nc``) is defined once, in :mod:`restore.archs.contract`.
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
