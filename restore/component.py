"""A component chosen by name in an option file: the type shared by the config layer and by
components that take other components as arguments (a wrapper network's inner network).

It sits beside :mod:`restore.registry` at the bottom of the package, so an architecture can
declare a nested section (``Annotated[Component, Kind("arch")]``) without importing the config
package; the option validator reads that annotation and checks the nested section at load time.
A list of such sections with keys of their own beside the component's (a mixture's sources:
``{type, <dataset args>, weight, task}``) is a small dataclass in the component's module, with
the component field named in ``__component__ = (field name, kind)`` and its own cross-key
checks in ``__post_init__`` (raising :class:`restore.errors.ConfigKeyError`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from restore import registry
from restore.errors import RestoreError


@dataclass(frozen=True)
class Kind:
    """Annotation marker: a :class:`Component` field of this registry kind."""

    kind: str


@dataclass
class Component:
    """A registered component chosen by name, with its constructor arguments."""

    kind: str
    type: str
    args: dict[str, Any] = field(default_factory=dict)
    where: str = field(default="", compare=False, repr=False)  # "file: dotted.key", for errors

    def build(self, *positional: Any, **injected: Any) -> Any:
        """Instantiate it; ``injected`` are the arguments the engine supplies (params, optimizer).

        A user error raised by the constructor (a value the type hints cannot rule out, such as
        a malformed noise name, or a folder that does not exist) is re-raised naming the option
        file and key, keeping its class. An error a nested section already located (a mixture
        source's) keeps its own, more precise, key.
        """
        try:
            return registry.get(self.kind, self.type)(*positional, **self.args, **injected)
        except RestoreError as exc:
            if not self.where or getattr(exc, "located", False):
                raise
            located = type(exc)(f"{self.where}: {exc}")
            located.located = True
            raise located from None
