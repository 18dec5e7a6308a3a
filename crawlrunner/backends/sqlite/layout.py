"""Bringing a database file to this release's layout, and target tables into shape.

``upgrade`` runs the versioned migrations (``schema.MIGRATIONS``) on its own
connection, one step per transaction, before a run or a read command uses
the file: a file made by any earlier release opens, upgraded once. A new
file is given the current layout (``schema.CURRENT_LAYOUT``) in one step. What
plain SQL cannot do is a step here (``MIGRATION_STEPS``): version 8 rebuilds
every target table in the layout this release creates.

``rebuild`` is how a table's columns are put in order or its primary key
changed: SQLite can do neither in place, so the rows are copied into a new
table that takes the old one's name (inside the caller's transaction).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ...errors import OutputPathError, StorageError
from .schema import (
    CURRENT_LAYOUT,
    MIGRATIONS,
    PREFIX,
    PROVENANCE_COLUMNS,
    SCHEMA_VERSION,
    UPSERT_COLUMNS,
    create_history_table,
    create_table,
    history_table,
    quote_identifier,
)

log = logging.getLogger("crawlrunner")

# How long a connection waits for another's write lock before giving up.
BUSY_TIMEOUT_MS = 5000

Columns = list[tuple[str, str]]


def version_of(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def upgrade(path: Path) -> None:
    """Bring the database at ``path`` (created if missing) to ``SCHEMA_VERSION``.

    Refuses a file made by a newer release, and an SQLite database that
    crawlrunner did not make, rather than guess at either.
    """
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise StorageError(f"{path}: cannot open: {exc}") from None
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        version = version_of(conn)
        _check_version(conn, path, version)
        if version < SCHEMA_VERSION:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # as every connection of a run: a commit waits for no fsync
        made_earlier = version > 0
        if not made_earlier:
            version = _create(conn)
        while version < SCHEMA_VERSION:
            version = _step(conn, path, made_earlier)
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"{path}: cannot open: {exc}") from None
    finally:
        conn.close()


def _check_version(conn: sqlite3.Connection, path: Path, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise StorageError(f"{path}: made by a newer crawlrunner (schema {version}, this one knows {SCHEMA_VERSION})")
    if version == 0 and conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]:
        raise OutputPathError(f"{path}: an SQLite database crawlrunner did not make; refusing to write into it")


def _create(conn: sqlite3.Connection) -> int:
    """Give a new file this release's layout in one transaction; the version it is at now."""
    with _write_transaction(conn):
        version = version_of(conn)  # read under the lock: another process may have made the tables meanwhile
        if version == 0:
            for statement in filter(str.strip, CURRENT_LAYOUT.split(";")):
                conn.execute(statement)
            version = SCHEMA_VERSION
            conn.execute(f"PRAGMA user_version={version}")
    return version


def _step(conn: sqlite3.Connection, path: Path, made_earlier: bool) -> int:
    """Take the layout one version up, in one transaction; the version it is at now."""
    with _write_transaction(conn):
        version = version_of(conn)  # read under the lock: another process may have upgraded it meanwhile
        if version < SCHEMA_VERSION:
            if made_earlier:
                log.warning("%s: upgrading the database layout from version %d to %d", path, version, version + 1)
            for statement in filter(str.strip, MIGRATIONS[version].split(";")):
                conn.execute(statement)
            if step := MIGRATION_STEPS.get(version + 1):
                step(conn)
            if made_earlier and (note := MIGRATION_NOTES.get(version + 1)):
                log.warning("%s: %s", path, note)
            version += 1
            conn.execute(f"PRAGMA user_version={version}")
    return version


@contextmanager
def _write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """The block in one write transaction, taken at once (no other writer can slip in between its reads and writes)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back already (a full disk)
            conn.execute("ROLLBACK")
        raise


def table_columns(conn: sqlite3.Connection, table: str) -> Columns:
    """(name, declared type) of each column of ``table``, in order."""
    return [(row[1], row[2]) for row in conn.execute(f"PRAGMA table_info({quote_identifier(table)})")]


def table_key(conn: sqlite3.Connection, table: str) -> tuple[str, ...]:
    """The columns of ``table``'s primary key, in key order (none: a plain rowid table)."""
    rows = [(row[5], row[1]) for row in conn.execute(f"PRAGMA table_info({quote_identifier(table)})") if row[5]]
    return tuple(name for _, name in sorted(rows))


def rebuild(conn: sqlite3.Connection, table: str, columns: Columns, key: tuple[str, ...]) -> None:
    """Make ``table`` have ``columns`` in this order and ``key`` as its primary key, keeping its rows and indexes.

    Columns the table lacks start empty; those it has and ``columns`` does
    not name (a field dropped from the spec) are kept, after them. The copy
    fails (and the caller's transaction with it) if two rows share a new key.
    An upsert key's index of an earlier layout (``_<table>_key…``) is not
    kept: the primary key is the key now.
    """
    existing = table_columns(conn, table)
    indexes = [
        sql
        for name, sql in conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", (table,)
        )
        if not (name == f"_{table}_key" or name.startswith(f"_{table}_key_"))
    ]
    named = {name for name, _ in columns}
    columns = columns + [(name, declared) for name, declared in existing if name not in named]
    kept = {name for name, _ in existing}
    names = ", ".join(quote_identifier(name) for name, _ in columns if name in kept)
    new = quote_identifier(PREFIX + "rebuild")
    triggers = [
        row[0]
        for row in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,))
    ]
    for statement in (
        f"DROP TABLE IF EXISTS {new}",
        create_table(PREFIX + "rebuild", columns, key),
        # The rowids too: a full-text index (sqlite-utils, Datasette) refers to rows by them.
        f"INSERT INTO {new} (rowid, {names}) SELECT rowid, {names} FROM {quote_identifier(table)}",
        f"DROP TABLE {quote_identifier(table)}",
    ):
        conn.execute(statement)
    # As SQLite's own recipe for a table's new shape does: views and triggers
    # that name the table are not checked while it is briefly gone.
    conn.execute("PRAGMA legacy_alter_table=ON")
    try:
        conn.execute(f"ALTER TABLE {new} RENAME TO {quote_identifier(table)}")
    finally:
        conn.execute("PRAGMA legacy_alter_table=OFF")
    for statement in (*indexes, *triggers):  # dropped with the old table
        conn.execute(statement)


def rekey(path: Path, table: str, columns: Columns, key: tuple[str, ...]) -> None:
    """``rebuild`` in a write transaction of its own on the database at ``path``."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        with _write_transaction(conn):
            if key and _has_empty_key(conn, table, key):
                raise sqlite3.IntegrityError("rows stored are empty in a field of the new key")
            rebuild(conn, table, columns, key)
    finally:
        conn.close()


def _has_empty_key(conn: sqlite3.Connection, table: str, key: tuple[str, ...]) -> bool:
    kept = {name for name, _ in table_columns(conn, table)}
    empty = " OR ".join(f"{quote_identifier(k)} IS NULL" if k in kept else "1" for k in key)
    return bool(conn.execute(f"SELECT EXISTS (SELECT 1 FROM {quote_identifier(table)} WHERE {empty})").fetchone()[0])


# The declarations of the columns every target table has, by name.
_SYSTEM_COLUMNS = dict(PROVENANCE_COLUMNS + UPSERT_COLUMNS)


def _upgrade_target_tables(conn: sqlite3.Connection) -> None:
    """Version 8: every target table rebuilt in this release's layout, every history table under the prefix.

    Fields first (in their order), then provenance; a declared type for every
    column (one stored without, an untyped field's, is read off its values);
    an upsert table's key, until now a unique index, as its primary key.
    """
    targets = _target_tables(conn)
    for table in targets:
        columns = table_columns(conn, table)
        fields = [
            (name, declared or _type_of_values(conn, table, name)) for name, declared in columns if name[0] != "_"
        ]
        system = [(name, _SYSTEM_COLUMNS.get(name, declared)) for name, declared in columns if name[0] == "_"]
        try:
            rebuild(conn, table, fields + system, _unique_key(conn, table))
        except sqlite3.Error as exc:
            raise sqlite3.DatabaseError(f"upgrading the table of target {table!r}: {exc}") from None
    for target in targets:
        history = f"_{target}_history"
        if {"run_id", "key", "change", "old", "new"} <= {name for name, _ in table_columns(conn, history)}:
            conn.execute(f"DROP INDEX IF EXISTS {quote_identifier(history + '_run')}")
            conn.execute(f"ALTER TABLE {quote_identifier(history)} RENAME TO {quote_identifier(history_table(target))}")
            for statement in create_history_table(target):
                conn.execute(statement)


def _target_tables(conn: sqlite3.Connection) -> list[str]:
    """The tables crawlrunner made for targets, by its own records (the fetch log, the field kinds).

    A table of the user's own, even one with provenance-like columns (a copy
    of a target's rows), a view, a trigger or a full-text table, is left as
    it is.
    """
    named = {
        row[0]
        for row in conn.execute(f"SELECT target FROM {PREFIX}fetch_log UNION SELECT target FROM {PREFIX}field_types")
    }
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%'")
    provenance = {name for name, _ in PROVENANCE_COLUMNS}
    return sorted(
        table for (table,) in rows if table in named and provenance <= {name for name, _ in table_columns(conn, table)}
    )


def _unique_key(conn: sqlite3.Connection, table: str) -> tuple[str, ...]:
    """The columns of the upsert key index a version-7 target table has (``_<target>_key_…``), if any."""
    prefix = f"_{table}_key"
    for row in conn.execute(f"PRAGMA index_list({quote_identifier(table)})"):
        name, unique = row[1], row[2]
        if unique and (name == prefix or name.startswith(prefix + "_")):
            info = conn.execute(f"PRAGMA index_info({quote_identifier(name)})").fetchall()
            return tuple(col for _, _, col in sorted(info))
    return ()


# What each storage class says of the column that holds it.
_STORED_TYPES = {frozenset({"integer"}): "INTEGER", frozenset({"real"}): "REAL", frozenset({"integer", "real"}): "REAL"}


def _type_of_values(conn: sqlite3.Connection, table: str, column: str) -> str:
    """A declared type for a column stored without one: what its values are (TEXT when mixed; none while it has none)."""
    kinds = frozenset(
        row[0]
        for row in conn.execute(
            f"SELECT DISTINCT typeof({quote_identifier(column)}) FROM {quote_identifier(table)}"
            f" WHERE {quote_identifier(column)} IS NOT NULL"
        )
    )
    return _STORED_TYPES.get(kinds, "TEXT") if kinds else ""


MIGRATION_STEPS: dict[int, Callable[[sqlite3.Connection], None]] = {8: _upgrade_target_tables}
# What an upgrade changes that a user's own queries notice, said when a file of an earlier release is upgraded.
MIGRATION_NOTES = {
    8: "crawlrunner's own tables are named _crawlrunner_… now (runs is _crawlrunner_runs, fetch_log"
    " _crawlrunner_fetch_log, _<target>_history _crawlrunner_history_<target>), and target tables have their"
    " fields first (see the database reference, 'Versions and upgrades')",
}
