"""Command-line interface: ``restore <subcommand>`` (see :mod:`restore.cli.main`)."""
