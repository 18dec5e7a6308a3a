"""The read side of the SQLite backend: ad-hoc SQL, exports, runs and changes.

Read-only views of a crawl database, for ``crawlrunner.read`` and the
commands built on it. They use the standard library's sqlite3 on a read-only
connection, so nothing here can change a file; rendering the rows (tables,
CSV, JSON) is the command line's business (``crawlrunner.console.formats``).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ...errors import OutputPathError, StorageError
from ..cursors import COMPLETED, NO_RUN_YET
from ..field_types import CHANGE_COLUMNS, Columns, decode_changes, decode_rows
from ..sitemap_runs import SQLITE_LAST_RUN
from .layout import upgrade, version_of
from .schema import OWN_TABLES, PREFIX, SCHEMA_VERSION, SQLITE_HEADER, history_table, quote_identifier

Rows = tuple[Sequence[str], Iterator[Sequence[Any]]]


@contextmanager
def read_only(path: str | Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the database at ``path``, closed on leaving the block.

    A missing file is an ``OutputPathError`` (a usage problem); any SQLite
    error inside the block becomes a ``StorageError`` naming the file.
    """
    db = Path(path)
    if not db.is_file():
        raise OutputPathError(f"{db}: no such database file")
    wal = db.with_name(db.name + "-wal")
    closed = not wal.exists()  # a WAL database has its -wal file while any connection has it open
    conn = _connect_read_only(db)
    if 0 < (version := version_of_file(conn)) < SCHEMA_VERSION:
        # Made by an earlier release: upgraded once (a write), then read as any other.
        conn.close()
        try:
            upgrade(db)
        except StorageError as exc:
            if not any(word in str(exc) for word in ("readonly", "unable to open", "ermission")):
                raise
            raise StorageError(
                f"{exc}; the file was made by an earlier release (layout {version}) and is upgraded once before"
                " it is read: that needs write access to it and its folder (or run on a copy)"
            ) from None
        conn = _connect_read_only(db)
    # Read-only means no file is written either: ATTACH would create one.
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    try:
        yield conn
    except sqlite3.Error as exc:
        raise StorageError(f"{db}: {exc}{_renamed(exc)}") from None
    finally:
        conn.close()
        if closed and wal.exists():
            _tidy_wal(db)


def _renamed(exc: sqlite3.Error) -> str:
    """A hint for a query written for the names before layout 8: ``runs`` is ``_crawlrunner_runs`` now."""
    match = re.fullmatch(r"no such table: (?:main\.)?(\w+)", str(exc))
    if match is None:
        return ""
    name = match.group(1)
    if f"{PREFIX}{name}" in OWN_TABLES:
        return f" (crawlrunner's own tables are named {PREFIX}… since layout 8: {PREFIX}{name})"
    if name.startswith("_") and name.endswith("_history"):
        return f" (history tables are named {history_table(name[1 : -len('_history')])} since layout 8)"
    return ""


def _connect_read_only(db: Path) -> sqlite3.Connection:
    try:
        return sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StorageError(f"{db}: cannot open: {exc}") from None


def version_of_file(conn: sqlite3.Connection) -> int:
    """The file's layout version (0 for one crawlrunner did not make, or cannot read)."""
    try:
        return version_of(conn)
    except sqlite3.Error:
        return 0  # not a database: the caller's first statement says so


def _tidy_wal(db: Path) -> None:
    """Remove the -wal and -shm files a read-only connection made by reading a closed WAL database.

    A read-only connection must create them to read a WAL database, and
    cannot delete them when it closes (that takes a checkpoint, a write).
    A read-write connection that only reads and closes does it for us, with
    SQLite's own locks: it deletes them only if it is the last connection (a
    run that opened the file since keeps them), and its checkpoint of an
    empty WAL writes nothing to the database.
    """
    try:
        conn = sqlite3.connect(db)
        try:
            conn.execute("PRAGMA schema_version").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        pass  # a file or directory we may not write: the files stay, as before


def execute(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> Rows:
    """The column names and a lazy iterator over the rows of ``sql``."""
    cursor = conn.execute(sql, params)
    columns = [d[0] for d in cursor.description or ()]
    return columns, iter(cursor)


def target_table(conn: sqlite3.Connection, name: str) -> str:
    """``name`` if it is a table crawlrunner wrote for a target; else a clear error."""
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT m.name FROM sqlite_master AS m WHERE m.type = 'table'"
            " AND EXISTS (SELECT 1 FROM pragma_table_info(m.name) WHERE name = '_run_id')"
        )
    ]
    if name not in tables:
        raise OutputPathError(f"no target table {name!r} (tables: {', '.join(sorted(tables)) or 'none'})")
    return name


def export_rows(conn: sqlite3.Connection, table: str, run: int | None = None) -> Rows:
    """Every row of a target's table (or those of one run), in the order they were stored.

    JSON fields come as their values, bool fields as booleans (``field_kinds``).
    """
    sql = f"SELECT * FROM {quote_identifier(target_table(conn, table))}"
    if run is not None:
        columns, rows = execute(conn, sql + " WHERE _run_id = ? ORDER BY rowid", (run,))
    else:
        columns, rows = execute(conn, sql + " ORDER BY rowid")
    return Columns(columns, lambda: column_kinds(conn, table)), decode_rows(columns, rows, field_kinds(conn, table))


# Declared column types → kinds (``field_types.Columns``); the provenance columns' times are ISO 8601 text.
_DECLARED_KINDS = {"INTEGER": "int", "REAL": "float", "TEXT": "str", "BLOB": "bytes"}
_TIME_COLUMNS = ("_fetched_at", "_first_seen_at", "_changed_at")


def column_kinds(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    """Column → kind of a target's table: from ``field_types``, else its declared type, else the values stored.

    A field without ``type:`` declares none (it keeps each JSON value's own
    type): its kind is read from the values, in one pass over the table.
    """
    declared = dict(conn.execute("SELECT name, upper(type) FROM pragma_table_info(?)", (table,)).fetchall())
    kinds = {name: _DECLARED_KINDS[type_] for name, type_ in declared.items() if type_ in _DECLARED_KINDS}
    kinds.update((name, "datetime") for name in _TIME_COLUMNS if name in declared)
    kinds.update(field_kinds(conn, table))
    untyped = [name for name in declared if name not in kinds]
    if untyped:
        stored = ", ".join(f"group_concat(DISTINCT typeof({quote_identifier(name)}))" for name in untyped)
        found = conn.execute(f"SELECT {stored} FROM {quote_identifier(table)}").fetchone()
        kinds.update((name, _stored_kind(types)) for name, types in zip(untyped, found, strict=True))
    return kinds


def _stored_kind(types: str | None) -> str:
    """The kind of an untyped column from the SQLite types of its values (``group_concat`` of ``typeof``)."""
    found = set((types or "").split(",")) - {"null", ""}
    if found == {"integer"}:
        return "int"
    if found and found <= {"integer", "real"}:
        return "float"
    return "bytes" if found == {"blob"} else "str"  # text, or a mix: each value as text


def field_kinds(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    """Field → kind ('json', 'bool', 'date', 'datetime') of a target's fields that read back as other than stored."""
    rows = conn.execute(
        "SELECT field, kind FROM _crawlrunner_field_types WHERE target = ? AND kind IS NOT NULL", (table,)
    )
    return dict(rows)


# A run's counters from its fetch log: how ``finish_run`` writes them into its row when it ends.
RUN_TOTALS = """
    count(*) AS requests,
    coalesce(sum(error_kind IS NULL), 0) AS ok,
    coalesce(sum(error_kind IS NOT NULL), 0) AS failed,
    coalesce(sum(records), 0) AS records,
    coalesce(sum(bytes), 0) AS bytes,
    coalesce(sum(status = 304), 0) AS unchanged
"""

# A run still going has zeros in its row until it ends: it is counted from
# its fetch log instead (as PostgreSQL's ``runs`` does); only running runs'
# log rows are read (the IN, by the run_id index).
_RUNS = f"""
SELECT r.id, r.spec_name, r.status, r.started_at, r.finished_at,
       coalesce(live.requests, r.requests) AS requests,
       coalesce(live.ok, r.ok) AS ok,
       coalesce(live.failed, r.failed) AS failed,
       coalesce(live.unchanged, r.unchanged) AS unchanged,
       coalesce(live.records, r.records) AS records,
       coalesce(live.bytes, r.bytes) AS bytes,
       r.resumed
FROM _crawlrunner_runs AS r
LEFT JOIN (
    SELECT run_id, {RUN_TOTALS}
    FROM _crawlrunner_fetch_log WHERE run_id IN (SELECT id FROM _crawlrunner_runs WHERE status = 'running')
    GROUP BY run_id
) AS live ON live.run_id = r.id
ORDER BY r.id
"""


def runs(conn: sqlite3.Connection) -> Rows:
    """One row per run: its status and counters (live for a running run, from its fetch log)."""
    return execute(conn, _RUNS)


def changes(conn: sqlite3.Connection, table: str, since: int | None) -> Rows:
    """What changed in an upsert target (keys added, changed, restored, removed): by default, in its latest run.

    Key, old and new as JSON values (``field_types.decode_changes``), with the fields that changed.
    """
    history = history_table(target_table(conn, table))
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (history,)).fetchone()
    if not exists:
        raise OutputPathError(f"{table!r} keeps no history: changes are recorded for targets with mode: upsert")
    if since is None:
        # The latest run that stored this target's records, changed or not.
        latest = conn.execute(f"SELECT max(_run_id) FROM {quote_identifier(table)}").fetchone()
        since = int(latest[0]) - 1 if latest and latest[0] is not None else 0
    kinds = field_kinds(conn, table)
    _, rows = execute(
        conn,
        f"SELECT run_id, change, key, old, new, at FROM {quote_identifier(history)} WHERE run_id > ? ORDER BY id",
        (since,),
    )
    return list(CHANGE_COLUMNS), decode_changes(rows, kinds)


def completed_cursors(conn: sqlite3.Connection, spec_name: str) -> list[tuple[Any, ...]]:
    """The cursors of the spec's completed runs (``cursors.COMPLETED``): where its next run starts."""
    return conn.execute(COMPLETED.format(spec="?", run="?"), (spec_name, NO_RUN_YET)).fetchall()


def last_run_rows(conn: sqlite3.Connection, spec_name: str, targets: Sequence[str]) -> list[tuple[str, Any]]:
    """Per target, its ``sitemap_runs.LAST_RUN`` row for the spec's next run (None: no run counts yet)."""
    return [(name, conn.execute(SQLITE_LAST_RUN, (NO_RUN_YET, spec_name, name)).fetchone()) for name in targets]


def refuse_database(path: Path) -> None:
    """An ``OutputPathError`` if ``path`` is an SQLite file: an export naming the crawl database by mistake would destroy it."""
    if is_database(path):
        raise OutputPathError(f"{path}: is an SQLite database; an export will not overwrite it")


def is_database(path: Path) -> bool:
    """Whether ``path`` is an SQLite file (one that an export must never be written over)."""
    try:
        with path.open("rb") as fh:
            return fh.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False
