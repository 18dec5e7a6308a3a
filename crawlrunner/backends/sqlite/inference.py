"""Declared types for fields stored as the JSON values they are, read off the first values stored.

A JMESPath (or parent) field without ``type:`` keeps the JSON value's own
type, which the spec cannot tell: its column is made without a declared
type, and the first batch that brings a value for it gives it one (INTEGER,
REAL, TEXT; a boolean or a JSON object or list also its kind in
``field_types``, so that ``export`` reads it back as one). The table is
rebuilt for it in the writer's transaction, while the column holds nothing
but NULLs: usually when it is empty.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from ...coercion import INT64_MAX, INT64_MIN, stored_type
from ...results import Outcome
from ...spec.model import Target
from .layout import rebuild
from .schema import SAVE_FIELD_KINDS, quote_identifier

# A value's declared type and the kind kept for it, by its Python type.
_TYPES: dict[type, tuple[str, str | None]] = {
    bool: ("INTEGER", "bool"),
    int: ("INTEGER", None),
    float: ("REAL", None),
    str: ("TEXT", None),
    dict: ("TEXT", "json"),
    list: ("TEXT", "json"),
}


class ColumnTypes:
    """Per target, the fields whose columns have no declared type yet; typed when their first value comes."""

    def __init__(self, targets: Iterable[Target]) -> None:
        self._untyped = {
            t.name: [f.name for f in t.extract.fields if stored_type(f) is None]
            for t in targets
            if t.extract is not None
        }
        self._untyped = {name: fields for name, fields in self._untyped.items() if fields}
        self._pending: dict[str, set[str]] | None = None  # read from the table on the first batch

    @property
    def pending(self) -> bool:
        """Whether a column may still lack its type (read from the table on the first batch)."""
        return bool(self._untyped) and (self._pending is None or any(self._pending.values()))

    def type_columns(self, conn: sqlite3.Connection, *, targets: dict[str, Target], batch: list[Outcome]) -> None:
        """Give a declared type to each pending column the batch brings a value for (inside its transaction)."""
        if self._pending is None:
            self._pending = {name: _without_type(conn, name, fields) for name, fields in self._untyped.items()}
        for name, pending in self._pending.items():
            if pending and (found := _first_values(batch, name, pending)):
                _retype(conn, targets[name], found)
                pending.difference_update(found)


def _without_type(conn: sqlite3.Connection, table: str, fields: list[str]) -> set[str]:
    declared = {row[1]: row[2] for row in conn.execute(f"PRAGMA table_info({quote_identifier(table)})")}
    return {f for f in fields if declared.get(f) == ""}


def _first_values(batch: list[Outcome], target: str, fields: set[str]) -> dict[str, list[Any]]:
    """The non-null values in the batch of each of ``fields`` of ``target``'s records (fields with none left out)."""
    found: dict[str, list[Any]] = {}
    for outcome in batch:
        if outcome.records and outcome.fetch.target == target:
            for record in outcome.records:
                for name in fields:
                    if (value := record.get(name)) is not None:
                        found.setdefault(name, []).append(value)
    return found


def column_type(values: list[Any]) -> tuple[str, str | None]:
    """The declared type and kind of a column that holds ``values``: one type, or TEXT.

    Integers and floats together are REAL; an integer past 64 bits (stored as
    its text: SQLite's INTEGER would round it) makes the column TEXT.
    """
    kinds = {_TYPES.get(type(v), ("TEXT", None)) for v in values}
    if kinds == {("INTEGER", None)} and any(not INT64_MIN <= v <= INT64_MAX for v in values):
        return "TEXT", None
    if kinds == {("INTEGER", None), ("REAL", None)}:
        return "REAL", None
    return kinds.pop() if len(kinds) == 1 else ("TEXT", None)


def _retype(conn: sqlite3.Connection, target: Target, values: dict[str, list[Any]]) -> None:
    info = conn.execute(f"PRAGMA table_info({quote_identifier(target.name)})").fetchall()
    key = tuple(row[1] for row in sorted((row for row in info if row[5]), key=lambda row: row[5]))
    types = {name: column_type(found) for name, found in values.items()}
    rebuild(conn, target.name, [(row[1], types[row[1]][0] if row[1] in types else row[2]) for row in info], key)
    kinds = [(target.name, name, kind) for name, (_, kind) in types.items() if kind is not None]
    if kinds:
        conn.executemany(SAVE_FIELD_KINDS, kinds)
