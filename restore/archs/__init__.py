"""Network architectures, one per file, chosen by name in options (see :mod:`restore.registry`)."""
