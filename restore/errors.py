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


class ConfigKeyError(ConfigError):
    """One key of a section refused by the section's own check (a section dataclass's
    ``__post_init__``, which cannot know where the section sits in the option file).

    ``key`` names the key relative to the section (dotted, list items by index:
    ``transfer.1.pattern``) and ``problem`` reads after it (``"must be a positive number"``);
    the option validator puts the section's path in front and the file before that.
    """

    def __init__(self, problem: str, key: str = "") -> None:
        super().__init__(f"{key} {problem}" if key else problem)
        self.key, self.problem = key, problem
