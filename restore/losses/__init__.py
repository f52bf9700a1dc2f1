"""Training losses, chosen by name in options (see :mod:`restore.registry`)."""
