"""Reading a crawlrunner database back: ad-hoc SQL, exports, runs and changes.

These are the command line's read-only views, so they use the standard
library's sqlite3 on a read-only connection: nothing here can change a file.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ...errors import OutputPathError, StorageError
from .schema import quote_identifier

Rows = tuple[list[str], Iterator[Sequence[Any]]]


@contextmanager
def read_only(path: str | Path) -> Iterator[sqlite3.Connection]:
    db = Path(path)
    if not db.is_file():
        raise OutputPathError(f"{db}: no such database file")
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StorageError(f"{db}: cannot open: {exc}") from None
    try:
        yield conn
    except sqlite3.Error as exc:
        raise StorageError(f"{db}: {exc}") from None
    finally:
        conn.close()


def execute(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> Rows:
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
    sql = f"SELECT * FROM {quote_identifier(target_table(conn, table))}"
    if run is not None:
        return execute(conn, sql + " WHERE _run_id = ? ORDER BY rowid", (run,))
    return execute(conn, sql + " ORDER BY rowid")


def runs(conn: sqlite3.Connection) -> Rows:
    return execute(
        conn,
        "SELECT id, spec_name, status, started_at, finished_at, requests, ok, failed, unchanged, records, bytes,"
        " resumed FROM runs ORDER BY id",
    )


def changes(conn: sqlite3.Connection, table: str, since: int | None) -> Rows:
    """What changed in an upsert target: by default, in its latest run."""
    history = f"_{target_table(conn, table)}_history"
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (history,)).fetchone()
    if not exists:
        raise OutputPathError(f"{table!r} keeps no history: changes are recorded for targets with mode: upsert")
    if since is None:
        # The latest run that stored this target's records, changed or not.
        latest = conn.execute(f"SELECT max(_run_id) FROM {quote_identifier(table)}").fetchone()
        since = int(latest[0]) - 1 if latest and latest[0] is not None else 0
    return execute(
        conn,
        f"SELECT run_id, change, key, old, new, at FROM {quote_identifier(history)} WHERE run_id > ? ORDER BY id",
        (since,),
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)


def write_table(out: IO[str], columns: list[str], rows: Iterator[Sequence[Any]], *, limit_width: int = 60) -> int:
    """A plain text table; returns the number of rows."""
    materialised = [[_text(v) for v in row] for row in rows]
    clipped = [[v if len(v) <= limit_width else v[: limit_width - 1] + "…" for v in row] for row in materialised]
    widths = [max([len(c), *(len(r[i]) for r in clipped)]) for i, c in enumerate(columns)]
    out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=False)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in clipped:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)).rstrip() + "\n")
    return len(materialised)


def write_csv(out: IO[str], columns: list[str], rows: Iterator[Sequence[Any]]) -> int:
    writer = csv.writer(out)
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
        count += 1
    return count


def write_jsonl(out: IO[str], columns: list[str], rows: Iterator[Sequence[Any]]) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps(dict(zip(columns, (_jsonable(v) for v in row), strict=False)), ensure_ascii=False) + "\n")
        count += 1
    return count


def write_json(out: IO[str], columns: list[str], rows: Iterator[Sequence[Any]]) -> int:
    records = [dict(zip(columns, (_jsonable(v) for v in row), strict=False)) for row in rows]
    json.dump(records, out, ensure_ascii=False, indent=2)
    out.write("\n")
    return len(records)


def _jsonable(value: Any) -> Any:
    return f"<{len(value)} bytes>" if isinstance(value, bytes) else value


WRITERS = {"table": write_table, "csv": write_csv, "jsonl": write_jsonl, "json": write_json}
