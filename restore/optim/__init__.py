"""Learning-rate schedules, chosen by name in options (see :mod:`restore.registry`)."""
