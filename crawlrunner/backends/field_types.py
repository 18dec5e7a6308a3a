"""Values read back as what they were: JSON fields as JSON, booleans as booleans.

SQLite keeps a ``type: json`` or ``many: true`` field as JSON text and a
``type: bool`` field as 0/1, and its declared column types (TEXT, INTEGER)
cannot tell those apart from a string or a number. So each target's field
types are kept in the ``field_types`` table (written when a run prepares the
target's table); PostgreSQL says it itself (``jsonb``, ``boolean``), though
asyncpg hands ``jsonb`` over as its JSON text. The readers (``export``,
``changes``) turn the stored form back into the value with a field's *kind*:
``json`` or ``bool`` (other fields read back as stored). ``date`` and
``datetime`` fields read back as stored (ISO 8601 text in SQLite), but a typed
format (Parquet) takes them as dates and timestamps: their kinds are kept too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..spec.model import Target

Decoder = Callable[[Any], Any]

# The columns of ``changes``: ``changed`` names the fields whose value differs between old and new.
CHANGE_COLUMNS = ["run_id", "change", "key", "changed", "old", "new", "at"]


# The field types whose kind is kept: what SQLite's declared column types cannot tell from text or a number.
KEPT_TYPES = frozenset({"json", "bool", "date", "datetime"})


def field_kinds(target: Target) -> list[tuple[str, str | None]]:
    """(field, kind) of each of the target's fields: 'json', 'bool', 'date', 'datetime', or None (its column says it)."""
    fields = target.extract.fields if target.extract else ()
    return [(f.name, "json" if f.many else f.type if f.type in KEPT_TYPES else None) for f in fields]


class Columns(tuple[str, ...]):
    """An export's column names, able to say what each column holds, for a typed format (Parquet).

    ``kinds()`` maps a column to its kind: 'int', 'float', 'bool', 'json',
    'date', 'datetime', 'str' or 'bytes', from what the database declares. It
    asks the database, so only while the block that read the names is open;
    the text formats never ask (for SQLite, it may read the whole table).
    """

    _kinds: Callable[[], dict[str, str]]

    def __new__(cls, names: Iterable[str], kinds: Callable[[], dict[str, str]]) -> Columns:
        columns = super().__new__(cls, names)
        columns._kinds = kinds
        return columns

    def kinds(self) -> dict[str, str]:
        return self._kinds()


def json_value(value: Any) -> Any:
    """The value of JSON text; anything else (a value stored before its field was JSON) as it is."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def bool_value(value: Any) -> Any:
    """True or False for SQLite's 1 or 0; anything else (stored before the field was a bool) as it is."""
    return bool(value) if type(value) is int and value in (0, 1) else value


DECODERS: dict[str, Decoder] = {"json": json_value, "bool": bool_value}


def decode_rows(
    columns: Sequence[str], rows: Iterator[Sequence[Any]], kinds: Mapping[str, str]
) -> Iterator[Sequence[Any]]:
    """``rows`` with each column of a known kind decoded, lazily."""
    decoders = [DECODERS.get(kinds.get(column, "")) for column in columns]
    if not any(decoders):
        return rows
    return (tuple(v if d is None or v is None else d(v) for d, v in zip(decoders, row, strict=True)) for row in rows)


def decode_changes(rows: Iterable[Sequence[Any]], kinds: Mapping[str, str]) -> Iterator[tuple[Any, ...]]:
    """History rows (run_id, change, key, old, new, at) as ``CHANGE_COLUMNS``: key, old and new as JSON values.

    ``kinds`` decodes the fields inside old and new that are stored as text
    in them (SQLite's); PostgreSQL's are JSON already and take none.
    """
    for run_id, change, key, old, new, at in rows:
        before, after = _fields(old, kinds), _fields(new, kinds)
        yield run_id, change, json_value(key), changed_fields(before, after), before, after, at


def changed_fields(old: Any, new: Any) -> list[str] | None:
    """The fields whose value differs between two versions of a record (None for one added or removed)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return None
    return [name for name in {**old, **new} if old.get(name) != new.get(name)]


def _fields(value: Any, kinds: Mapping[str, str]) -> Any:
    record = json_value(value)
    if not isinstance(record, dict):
        return record
    decoders = {name: DECODERS[kind] for name, kind in kinds.items() if kind in DECODERS}
    return {name: v if v is None or name not in decoders else decoders[name](v) for name, v in record.items()}
