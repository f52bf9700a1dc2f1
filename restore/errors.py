"""User-facing errors.

Everything a user can cause (bad option file, missing folder, corrupt image, unpaired file)
raises a :class:`RestoreError` whose message is one self-contained line naming the file or
key. The command-line entry point prints that line and exits non-zero, without a traceback.
Programming errors stay ordinary Python exceptions and keep their tracebacks.
"""


class RestoreError(Exception):
    """An error caused by the user's input, reported as one line without a traceback."""


class ConfigError(RestoreError):
    """An option file (or a ``--set`` override) is invalid."""


class DataError(RestoreError):
    """An image, folder, mask or pairing problem in the data."""


class MissingWeightsError(RestoreError):
    """External weights (LPIPS backbone, VGG, ...) are not on disk; we never download them."""


class OutputError(RestoreError):
    """Writing an output failed (disk full, read-only folder, name too long) or would land outside its folder."""
