"""The database schema: crawlrunner's own tables and one table per target.

Documented for users in docs/database.md; a test keeps the two in step.
Every identifier that comes from a spec goes through ``quote_identifier``.
"""

from __future__ import annotations

from ..coercion import SQL_TYPES
from ..spec.model import Target

# PRAGMA user_version of the layout this release writes. A newer number in an
# existing file means a newer crawlrunner made it; we refuse rather than guess.
SCHEMA_VERSION = 1

# Columns every target table carries besides its fields. Field names cannot
# start with "_" (the spec's identifier pattern), so these never collide.
PROVENANCE_COLUMNS = (
    ("_run_id", "INTEGER NOT NULL REFERENCES runs(id)"),
    ("_url", "TEXT NOT NULL"),
    ("_fetched_at", "TEXT NOT NULL"),
)

BASE_DDL = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    spec_name TEXT NOT NULL,
    spec_file TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    ok INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    records INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS fetch_log (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    target TEXT NOT NULL,
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    final_url TEXT,
    status INTEGER,
    content_type TEXT,
    bytes INTEGER NOT NULL,
    body_path TEXT,
    elapsed_ms REAL NOT NULL,
    attempts INTEGER NOT NULL,
    records INTEGER NOT NULL,
    error_kind TEXT,
    error TEXT,
    fetched_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fetch_log_run_target ON fetch_log (run_id, target);
CREATE INDEX IF NOT EXISTS fetch_log_error_kind ON fetch_log (error_kind) WHERE error_kind IS NOT NULL;
"""

RUN_STATUSES = ("running", "completed", "failed", "interrupted")


def quote_identifier(name: str) -> str:
    """``name`` as a safely quoted SQLite identifier."""
    if "\x00" in name:
        raise ValueError("identifiers cannot contain NUL")
    return '"' + name.replace('"', '""') + '"'


def target_columns(target: Target) -> list[tuple[str, str]]:
    """(name, declaration) of every column of the target's table."""
    columns = list(PROVENANCE_COLUMNS)
    if target.extract is not None:
        columns += [(f.name, "TEXT" if f.many else SQL_TYPES[f.type]) for f in target.extract.fields]
    return columns


def create_target_table(target: Target) -> list[str]:
    """Statements that create the target's table and its index, if missing."""
    table = quote_identifier(target.name)
    columns = ",\n    ".join(f"{quote_identifier(n)} {decl}".rstrip() for n, decl in target_columns(target))
    return [
        f"CREATE TABLE IF NOT EXISTS {table} (\n    {columns}\n)",
        # Target names start with a letter, so an index name starting with "_"
        # can never collide with a target's table.
        f"CREATE INDEX IF NOT EXISTS {quote_identifier('_' + target.name + '_run_id')} ON {table} (_run_id)",
    ]


def insert_record(target: Target) -> str:
    names = [n for n, _ in target_columns(target)]
    columns = ", ".join(quote_identifier(n) for n in names)
    marks = ", ".join("?" for _ in names)
    return f"INSERT INTO {quote_identifier(target.name)} ({columns}) VALUES ({marks})"
