"""Incremental sync: a target asks only for what changed since the last completed run.

A target with ``incremental: {cursor: updated_at, initial: ..., lag: ...}``
fills ``{incremental}`` in its request with its *cursor*: the largest value
of its ``cursor`` field that the spec's completed runs stored, minus
``lag``; ``initial`` until a run has completed. A child target keeps one
cursor per parent record (its *scope*: the parent values its request
uses); a target's own requests have the scope ``""``.

Values compare as what they are: numbers as numbers, dates as dates, and
date-times as instants (``10:00+02:00`` is before ``09:00Z``; one without an
offset counts as UTC), never as text.

Who does what: the sink keeps, per run, target and scope, the largest value
among the records it stores (``backends/cursors.py``); the backend that opens
a run reads what completed runs kept into ``Cursors``; planning renders
``{incremental}`` from it (``Cursors.value``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # spec.model imports this module: no import cycle at run time
    from .spec.model import FieldType, Target

# The template variable a target's requests put the cursor in.
VARIABLE = "incremental"
# The field types a cursor can have: those whose values have an order.
CURSOR_TYPES: tuple[FieldType, ...] = ("int", "float", "number", "date", "datetime")
_DAY = 86400


def order_key(value: Any, type_: FieldType) -> Any:
    """``value`` (a cursor field's value, as records and the ``cursors`` table hold it) as something that compares.

    Raises ``ValueError`` when it is not a value of ``type_`` (a field whose
    type changed since the value was stored, say).
    """
    if type_ in ("int", "float", "number"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"not a number: {value!r}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"not a {type_} text: {value!r}")
    if type_ == "date":
        return date.fromisoformat(value[:10])
    return _aware(datetime.fromisoformat(value))


def _aware(moment: datetime) -> datetime:
    # A date-time written without an offset counts as UTC, so it compares with those that have one.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def largest(values: Iterable[Any], type_: FieldType) -> Any:
    """The largest of ``values`` as ``type_`` orders them (None when there is none)."""
    best, best_key = None, None
    for value in values:
        key = order_key(value, type_)
        if best_key is None or key > best_key:
            best, best_key = value, key
    return best


def larger(value: Any, other: Any, type_: FieldType) -> bool:
    """Whether ``value`` is larger than ``other``."""
    return bool(order_key(value, type_) > order_key(other, type_))


@dataclass(frozen=True, slots=True)
class Incremental:
    """A target's ``incremental`` settings, checked against its cursor field."""

    cursor: str  # the field whose largest value is the cursor
    type: FieldType  # its type, one of CURSOR_TYPES
    initial: Any  # what {incremental} is before any completed run: a number, or a date as written
    lag: float = 0  # seconds for dates and date-times, units of the value for numbers
    date_format: str | None = None  # the field's: a date is written back the way the site writes it
    # A child target's cursor is per parent record: the parent values its request uses.
    scope_names: tuple[str, ...] = ()
    url_field: str | None = None  # a child target's url_field: its "{url}" is this parent field
    # UTC written as "Z", as in initial: the site was told dates that way.
    zulu: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        zulu = isinstance(self.initial, str) and self.initial.rstrip().endswith(("Z", "z"))
        object.__setattr__(self, "zulu", zulu)

    def behind(self, value: Any) -> Any:
        """``value`` (the largest stored) minus the lag, written as the request sends it."""
        if self.type == "int":
            return value - int(self.lag)
        if self.type in ("float", "number"):
            return value - self.lag
        if self.type == "date":
            # The lag goes back whole days: a day later is not sooner than that day.
            day = date.fromisoformat(value[:10]) - timedelta(days=math.ceil(self.lag / _DAY))
            return day.strftime(self.date_format) if self.date_format else day.isoformat()
        moment = datetime.fromisoformat(value) - timedelta(seconds=self.lag)
        if self.date_format:
            return moment.strftime(self.date_format)
        if self.zulu and moment.tzinfo is not None:
            return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return moment.isoformat()

    def scope(self, parent: Mapping[str, Any] | None) -> str:
        """The cursor's scope for a request made from ``parent`` (None: a target's own requests)."""
        if parent is None:
            return ""
        values = {name: parent.get(name) for name in self.scope_names}
        if self.url_field is not None and "url" in values:
            values["url"] = parent.get(self.url_field)  # the field child_requests fills {url} from
        return json.dumps(values, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


@dataclass(frozen=True, slots=True)
class Known:
    """The largest cursor value completed runs stored for one target and scope, and which run stored it."""

    value: Any
    run_id: int


@dataclass(frozen=True)
class Cursors:
    """Where a run's incremental targets start: per (target, scope), what earlier completed runs reached.

    Read once when the run opens (only completed runs older than it count, so
    every session and worker of the run sees the same); empty for a plan
    made without a database, where every target starts at ``initial``.
    """

    known: Mapping[tuple[str, str], Known] = field(default_factory=dict)
    # The spec's redactor: a scope is stored masked, as records are.
    redact: Callable[[str], str] = str

    def value(self, target: Target, parent: Mapping[str, Any] | None = None) -> Any:
        """What ``{incremental}`` is for ``target``'s request (made from ``parent``, for a child)."""
        incremental = target.incremental
        assert incremental is not None, target.name
        found = self.known.get((target.name, self.scope(target, parent)))
        return incremental.initial if found is None else incremental.behind(found.value)

    def scope(self, target: Target, parent: Mapping[str, Any] | None) -> str:
        assert target.incremental is not None, target.name
        return self.redact(target.incremental.scope(parent))

    def of(self, target: Target) -> list[Known]:
        """Every scope's value of ``target`` (for ``plan``)."""
        return [known for (name, _), known in self.known.items() if name == target.name]
