"""restore: low-level vision restoration (denoising, deraining, demoireing, shadow removal).

Importing this package is deliberately cheap: no architecture, dataset or metric module is
imported here, and no global state (RNG, torch flags, logging) is touched. Components are
looked up by name through :mod:`restore.registry`.
"""

__version__ = "0.1.0"
