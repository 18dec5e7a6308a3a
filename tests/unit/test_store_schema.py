"""Target tables and their indexes, created in a real in-memory SQLite database. No sockets."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from crawlrunner.backends.sqlite.layout import upgrade
from crawlrunner.backends.sqlite.schema import (
    MIGRATIONS,
    OWN_TABLES,
    SCHEMA_VERSION,
    create_target_table,
    insert_record,
)
from crawlrunner.errors import SpecError
from crawlrunner.spec import Spec, load_spec_text

CLASHING = """\
name: clash
targets:
  - name: items
    url: https://example.com/items
    extract: {fields: {id: id}}
  - name: items__run_id
    url: https://example.com/runs
    extract: {fields: {run: run}}
"""


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    for step in MIGRATIONS:
        conn.executescript(step)
    yield conn
    conn.close()


def create_all(conn: sqlite3.Connection, spec: Spec) -> None:
    for target in spec.targets:
        for statement in create_target_table(target):
            conn.execute(statement)


def objects(conn: sqlite3.Connection, kind: str) -> dict[str, str]:
    """name → table of every ``kind`` object the spec's targets made."""
    rows = conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = ? AND name NOT LIKE 'sqlite_%'", (kind,))
    own = OWN_TABLES
    return {name: table for name, table in rows if table not in own}


def test_a_target_named_like_another_targets_index_loads_and_gets_its_table(db: sqlite3.Connection) -> None:
    # The index of "items" used to be called items__run_id, the name of the
    # second target's table: creating that table failed.
    spec = load_spec_text(CLASHING, "s.yaml", environ={})
    create_all(db, spec)
    assert objects(db, "table") == {"items": "items", "items__run_id": "items__run_id"}
    target_indexes = {k: v for k, v in objects(db, "index").items() if k.startswith("_")}
    assert target_indexes == {
        "_items_run_id": "items",
        "_items__run_id_run_id": "items__run_id",
    }  # no _url index: unused


def test_both_clashing_tables_take_records(db: sqlite3.Connection) -> None:
    spec = load_spec_text(CLASHING, "s.yaml", environ={})
    create_all(db, spec)
    db.execute(
        "INSERT INTO _crawlrunner_runs (id, spec_name, spec_file, spec_hash, started_at, status)"
        " VALUES (1, 'clash', 's.yaml', 'h', 't', 'running')"
    )
    for target, value in (("items", 7), ("items__run_id", "r")):
        db.execute(insert_record(spec.target(target)), (1, "https://example.com/", "2024-01-01T00:00:00Z", value))
    assert db.execute("SELECT id FROM items").fetchall() == [(7,)]
    assert db.execute('SELECT "run" FROM items__run_id').fetchall() == [("r",)]


def test_creating_the_tables_twice_is_harmless(db: sqlite3.Connection) -> None:
    spec = load_spec_text(CLASHING, "s.yaml", environ={})
    create_all(db, spec)
    before = objects(db, "index")
    create_all(db, spec)
    assert objects(db, "index") == before


def test_index_names_cannot_be_target_names() -> None:
    # Every target's index name starts with "_"; a target name cannot.
    spec = load_spec_text(CLASHING, "s.yaml", environ={})
    for target in spec.targets:
        index = create_target_table(target)[1]
        assert index.startswith(f'CREATE INDEX IF NOT EXISTS "_{target.name}_run_id" ON "{target.name}" (_run_id)')
    with pytest.raises(SpecError) as info:
        load_spec_text(CLASHING.replace("name: items__run_id", "name: _items_run_id"), "s.yaml", environ={})
    assert "'_items_run_id' is not valid" in str(info.value)


def _layout(conn: sqlite3.Connection) -> dict[str, object]:
    """Every table's columns, keys and foreign keys, and every index, as SQLite reports them."""
    shape: dict[str, object] = {}
    for kind, name, sql in conn.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"):
        if kind == "index":
            shape[name] = (sql, conn.execute(f'PRAGMA index_xinfo("{name}")').fetchall())
        else:
            shape[name] = (
                conn.execute(f'PRAGMA table_xinfo("{name}")').fetchall(),
                conn.execute(f'PRAGMA foreign_key_list("{name}")').fetchall(),
                sorted(conn.execute(f'PRAGMA index_list("{name}")').fetchall()),
            )
    return shape


def test_a_new_file_gets_the_layout_the_migrations_build(tmp_path: Path, db: sqlite3.Connection) -> None:
    # A new file is made from CURRENT_LAYOUT in one transaction; a file of an
    # earlier release is migrated step by step. Both must end the same.
    upgrade(tmp_path / "new.db")
    with closing(sqlite3.connect(tmp_path / "new.db")) as new:
        assert new.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert new.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert _layout(new) == _layout(db)
