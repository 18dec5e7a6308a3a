"""A file made by the release before layout 8 opens, is upgraded once, and every command works on it.

The file is tests/fixtures/layout7.sql: a dump of what that release wrote
(see its header), with an upsert target, an untyped JMESPath number and
HTML fields.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawlrunner.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript((FIXTURES / "layout7.sql").read_text(encoding="utf-8"))
        conn.execute("PRAGMA user_version = 7")
        conn.execute("PRAGMA journal_mode = WAL")
    return path


def _tables(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]


def _columns(path: Path, table: str) -> list[tuple[str, str, int]]:
    """(name, declared type, place in the primary key) of each column, in order."""
    with closing(sqlite3.connect(path)) as conn:
        return [(r[1], r[2], r[5]) for r in conn.execute(f'PRAGMA table_info("{table}")')]


def test_a_read_command_upgrades_the_file_once_into_the_new_layout(cli: CliRunner, old_file: Path) -> None:
    first = cli.invoke(main, ["runs", str(old_file), "-f", "jsonl"])
    assert first.exit_code == 0, first.output
    assert "upgrading the database layout from version 7 to 8" in first.output
    assert "own tables are named _crawlrunner_… now (runs is _crawlrunner_runs" in first.output
    runs = [json.loads(line) for line in first.stdout.splitlines() if line.startswith("{")]
    assert [(r["id"], r["status"]) for r in runs] == [(1, "completed"), (2, "completed")]

    assert _tables(old_file) == [
        "_crawlrunner_bodies", "_crawlrunner_chain_ends", "_crawlrunner_cursors", "_crawlrunner_extraction_health",
        "_crawlrunner_fetch_log", "_crawlrunner_field_types", "_crawlrunner_history_products",
        "_crawlrunner_host_stats", "_crawlrunner_requests", "_crawlrunner_runs", "_crawlrunner_validators",
        "catalogue", "products",
    ]  # fmt: skip
    assert _columns(old_file, "products") == [
        ("id", "INT", 1),  # the upsert key: the primary key, not the rowid
        ("name", "TEXT", 0),
        ("price", "REAL", 0),
        ("category", "TEXT", 0),
        ("raw_price", "REAL", 0),  # stored without a type: read off its values
        ("_run_id", "INTEGER", 0),
        ("_url", "TEXT", 0),
        ("_fetched_at", "TEXT", 0),
        ("_first_seen_run", "INTEGER", 0),
        ("_first_seen_at", "TEXT", 0),
        ("_changed_run", "INTEGER", 0),
        ("_changed_at", "TEXT", 0),
        ("_removed_run", "INTEGER", 0),
    ]
    assert [c[:2] for c in _columns(old_file, "catalogue")][:4] == [
        ("id", "INTEGER"), ("name", "TEXT"), ("link", "TEXT"), ("price", "REAL"),
    ]  # fmt: skip
    with closing(sqlite3.connect(old_file)) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT id) FROM products").fetchone() == (30, 30)
        assert conn.execute("SELECT typeof(raw_price) FROM products LIMIT 1").fetchone() == ("real",)
        indexes = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        }
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert "_crawlrunner_fetch_log_run_target" in indexes and "fetch_log_run_target" not in indexes
    assert {"_products_run_id", "_products_url", "_crawlrunner_history_products_run"} <= indexes

    again = cli.invoke(main, ["runs", str(old_file)])
    assert again.exit_code == 0 and "upgrading" not in again.output


def test_every_command_works_on_an_upgraded_file(cli: CliRunner, old_file: Path, demo_server: str) -> None:
    exported = cli.invoke(main, ["export", str(old_file), "products", "-f", "jsonl"])
    assert exported.exit_code == 0, exported.output
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert len(rows) == 30 and list(rows[0])[:5] == ["id", "name", "price", "category", "raw_price"]

    ran = cli.invoke(main, ["run", str(FIXTURES / "layout7.yaml"), "-o", str(old_file), "--base-url", demo_server])
    assert ran.exit_code == 0, ran.output
    changes = cli.invoke(main, ["changes", str(old_file), "products", "-f", "jsonl"])
    assert changes.exit_code == 0, changes.output
    (change,) = [json.loads(line) for line in changes.stdout.splitlines()]
    assert change["change"] == "changed" and change["key"] == [3] and change["changed"] == ["name"]
    assert change["old"]["name"].endswith(" (old)")

    report = old_file.with_name("report.html")
    reported = cli.invoke(main, ["report", str(old_file), "1", "-o", str(report)])
    assert reported.exit_code == 0, reported.output
    assert "products" in report.read_text(encoding="utf-8")
    planned = cli.invoke(main, ["plan", str(FIXTURES / "layout7.yaml"), "-o", str(old_file)])
    assert planned.exit_code == 0 and "earlier runs not read" not in planned.output, planned.output

    old_names = cli.invoke(main, ["query", str(old_file), "SELECT count(*) FROM runs"])
    assert old_names.exit_code == 1
    assert "no such table: runs (crawlrunner's own tables are named _crawlrunner_… since layout 8" in old_names.stderr
    old_history = cli.invoke(main, ["query", str(old_file), "SELECT * FROM _products_history"])
    assert "history tables are named _crawlrunner_history_products since layout 8" in old_history.stderr

    queried = cli.invoke(main, ["query", str(old_file), "SELECT count(*) AS n FROM _crawlrunner_runs", "-f", "jsonl"])
    assert json.loads(queried.stdout) == {"n": 3}
    with closing(sqlite3.connect(old_file)) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT id) FROM products").fetchone() == (30, 30)
        history = conn.execute("SELECT change, count(*) FROM _crawlrunner_history_products GROUP BY change").fetchall()
    assert dict(history) == {"added": 30, "changed": 1}


def test_the_users_own_views_triggers_and_tables_survive_the_upgrade(cli: CliRunner, old_file: Path) -> None:
    # What people add to a crawl database in sqlite3 or sqlite-utils: the upgrade must neither fail on them nor touch them.
    with closing(sqlite3.connect(old_file)) as conn, conn:
        conn.executescript(
            """
            CREATE VIEW cheap AS SELECT id, name FROM products WHERE price < 50;
            CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, product INTEGER NOT NULL, at TEXT DEFAULT 'now');
            CREATE TRIGGER remember AFTER INSERT ON products BEGIN INSERT INTO audit (product) VALUES (NEW.id); END;
            CREATE VIRTUAL TABLE products_fts USING fts5(name);
            INSERT INTO products_fts (name) SELECT name FROM products;
            CREATE TABLE _notes_history (note TEXT);
            CREATE TABLE products_copy AS SELECT * FROM products;
            DELETE FROM products WHERE id <= 3;
            """
        )
        rowids = conn.execute("SELECT rowid, id FROM products ORDER BY rowid").fetchall()
        copy_sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'products_copy'").fetchone()
        cheap = conn.execute("SELECT count(*) FROM cheap").fetchone()
        audit_sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'audit'").fetchone()

    result = cli.invoke(main, ["runs", str(old_file)])
    assert result.exit_code == 0, result.output

    with closing(sqlite3.connect(old_file)) as conn, conn:
        assert conn.execute("SELECT count(*) FROM cheap").fetchone() == cheap
        assert conn.execute("SELECT sql FROM sqlite_master WHERE name = 'audit'").fetchone() == audit_sql
        # Full-text indexes (sqlite-utils, Datasette) point at rows by rowid: the rebuild keeps them.
        assert conn.execute("SELECT rowid, id FROM products ORDER BY rowid").fetchall() == rowids
        # A table of the user's own with provenance-like columns is not a target's: not rebuilt.
        assert conn.execute("SELECT sql FROM sqlite_master WHERE name = 'products_copy'").fetchone() == copy_sql
        assert conn.execute("SELECT count(*) FROM products_fts WHERE products_fts MATCH 'item'").fetchone()[0] >= 0
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = '_notes_history'").fetchone() is not None
        conn.execute("INSERT INTO products (id, name, _run_id, _url, _fetched_at) VALUES (999, 'x', 1, 'u', 't')")
        assert conn.execute("SELECT product FROM audit").fetchall() == [(999,)]  # the trigger came through the rebuild
        assert [c[0] for c in _columns(old_file, "products")[:2]] == ["id", "name"]
