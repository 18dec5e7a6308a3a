"""Declared types for fields stored as the JSON values they are, read off the values stored.

A JMESPath (or parent) field without ``type:`` keeps the JSON value's own
type, which the spec cannot tell: its column is made without a declared
type, and the first batch that brings a value for it gives it one (INTEGER,
REAL, TEXT; a boolean or a JSON object or list also its kind in
``field_types``, so that ``export`` reads it back as one). A later value the
column's type would change (a string in an INTEGER column, where SQLite would
store "0012" as 12; an integer past 64 bits) widens it first: INTEGER to REAL
to TEXT, never back. Either way the table is rebuilt in the writer's
transaction; the first typing usually finds it empty, a widening happens at
most twice a column.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from ...coercion import INT64_MAX, INT64_MIN, stored_type
from ...results import Outcome
from ...spec.model import Target
from .layout import rebuild
from .schema import SAVE_FIELD_KINDS, quote_identifier, target_columns

# What a batch's values of a field are: the kinds of Python value among them.
_KINDS: dict[type, str] = {bool: "bool", int: "int", float: "float", str: "str", dict: "json", list: "json"}
# The declared types a column can take, narrowest first: a column only widens.
_WIDTH = {"": 0, "INTEGER": 1, "INT": 1, "REAL": 2, "TEXT": 3}  # INT: a lone integer key (schema.create_table)


def column_type(kinds: set[str]) -> tuple[str, str | None]:
    """The declared type and kind of a column that holds values of ``kinds``: one type, or TEXT.

    Integers and floats together are REAL; an integer past 64 bits (stored as
    its text: SQLite's INTEGER would round it) makes the column TEXT.
    """
    if kinds == {"bool"}:
        return "INTEGER", "bool"
    if kinds == {"int"}:
        return "INTEGER", None
    if kinds <= {"int", "float"}:
        return "REAL", None
    if kinds == {"json"}:
        return "TEXT", "json"
    return "TEXT", None


def batch_kinds(batch: list[Outcome], untyped: dict[str, list[str]]) -> dict[str, dict[str, set[str]]]:
    """Per target with untyped fields, the kinds of the batch's non-null values of each (on the event loop)."""
    found: dict[str, dict[str, set[str]]] = {}
    for outcome in batch:
        fields = untyped.get(outcome.fetch.target)
        if fields is None or not outcome.records:
            continue
        kinds = found.setdefault(outcome.fetch.target, {})
        for name in fields:
            # Looked up once per field and page, not once per value.
            seen = kinds.get(name) or set()
            for record in outcome.records:
                value = record.get(name)
                if value is None:
                    continue
                if type(value) is int and not INT64_MIN <= value <= INT64_MAX:
                    seen.add("bigint")
                else:
                    seen.add(_KINDS.get(type(value), "str"))
            if seen:  # a field with no value yet has no kinds, not an empty set (which would make it TEXT)
                kinds[name] = seen
    return found


class ColumnTypes:
    """The columns of untyped JSON fields: typed by their first values, widened when later ones need it."""

    def __init__(self, targets: Iterable[Target]) -> None:
        untyped = {t.name: [f.name for f in t.extract.fields if stored_type(f) is None] for t in targets if t.extract}
        self.untyped = {name: fields for name, fields in untyped.items() if fields}
        self._declared: dict[str, dict[str, str]] = {}  # per target, field -> declared type: read on first use

    def open_fields(self) -> dict[str, list[str]]:
        """Per target, the untyped fields whose columns may still change: a TEXT column is final, its values unread."""
        return {
            name: kept
            for name, fields in self.untyped.items()
            if (kept := [f for f in fields if self._declared.get(name, {}).get(f) != "TEXT"])
        }

    def type_columns(
        self, conn: sqlite3.Connection, found: dict[str, dict[str, set[str]]], targets: dict[str, Target]
    ) -> None:
        """Type or widen each column ``found`` (``batch_kinds``) needs it for, inside the batch's transaction."""
        for name, kinds in found.items():
            declared = self._declared.get(name)
            if declared is None:
                info = conn.execute(f"PRAGMA table_info({quote_identifier(name)})")
                declared = self._declared[name] = {row[1]: row[2] for row in info if row[1] in self.untyped[name]}
            changes = {}
            for field, seen in kinds.items():
                wanted, kind = column_type(seen)
                now = declared.get(field, "")
                new = _wider(now, wanted)
                if new != now:
                    changes[field] = (new, kind if now == "" else None)
            if changes:
                _retype(conn, targets[name], changes)
                # Read by ``open_fields`` on the event loop: a new dict, not one changed in place.
                self._declared[name] = {**declared, **{field: new for field, (new, _) in changes.items()}}


def _wider(now: str, wanted: str) -> str:
    """The type a column of type ``now`` needs to also hold values that want ``wanted``."""
    return now if _WIDTH.get(now, 3) >= _WIDTH[wanted] else wanted  # a type of the user's own counts as TEXT


def _retype(conn: sqlite3.Connection, target: Target, changes: dict[str, tuple[str, str | None]]) -> None:
    info = conn.execute(f"PRAGMA table_info({quote_identifier(target.name)})").fetchall()
    key = tuple(row[1] for row in sorted((row for row in info if row[5]), key=lambda row: row[5]))
    # The provenance columns keep their constraints (PRAGMA table_info gives only the type's name).
    declarations = dict(target_columns(target))
    columns = [
        (
            name,
            changes[name][0] if name in changes else declarations.get(name, declared) if name[0] == "_" else declared,
        )
        for _, name, declared, *_ in info
    ]
    rebuild(conn, target.name, columns, key)
    kinds = [(target.name, name, kind) for name, (_, kind) in changes.items()]
    conn.executemany(SAVE_FIELD_KINDS, kinds)
