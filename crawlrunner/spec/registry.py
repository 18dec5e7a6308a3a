"""Names a spec uses → what implements them (pagination styles, auth types, field sources).

A registry is filled by the modules that implement its names, each with a
decorator next to the implementation, so adding a style, an auth type or a
field source touches that one module (plus the schema, which lists the names
a spec may use). The schema rejects an unknown name before anything looks it
up; a lookup that still misses (a dataclass built by hand) lists the known
names instead of a bare ``KeyError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Registry(dict[str, T]):
    """A dict from names to implementations, filled with ``register``.

    A dict so that a lookup on a hot path (a field source per record) costs
    what a dict lookup costs; only a miss runs Python code.
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind  # "pagination style", for the unknown-name message

    def register(self, *names: str) -> Callable[[T], T]:
        """A decorator that registers its target under each of ``names``."""

        def add(entry: T) -> T:
            for name in names:
                if name in self:
                    raise ValueError(f"{self.kind} {name!r} is registered twice")
                self[name] = entry
            return entry

        return add

    def __missing__(self, name: str) -> T:
        raise LookupError(f"unknown {self.kind} {name!r} (known: {', '.join(sorted(self))})")
