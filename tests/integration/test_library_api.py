"""The read commands and reextract from Python: real runs into a real SQLite file, read back as data."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

import crawlrunner
from crawlrunner.errors import OutputPathError, StorageError
from crawlrunner.read import Table, stream_export

from .. import server_app

Spec = Callable[..., Path]

SHOP = """
name: shop
http: {{base_url: "{base}"}}
targets:
  - name: products
    url: /catalogue/{key}
    mode: upsert
    key: [id]
    store_bodies: true
    extract:
      records: items
      fields: {{{fields}}}
  - name: single
    url: /json/item/7
    extract: {{fields: {{id: {{jmespath: id, type: int}}, name: name}}}}
"""
FIELDS = "id: {jmespath: id, type: int}, name: name, price: {jmespath: price, type: float}"


@pytest.fixture
def two_runs(server: str, write_spec: Spec, db_path: Path) -> tuple[Path, list[crawlrunner.RunResult]]:
    """Two runs of an upsert shop: the second changes a price and adds a product."""
    spec = crawlrunner.load_spec(write_spec(SHOP, base=server, key="library", fields=FIELDS))
    server_app.catalogues["library"] = {1: ("kettle", 10.0), 2: ("lamp", 20.0)}
    first = crawlrunner.run(spec, output=db_path)
    server_app.catalogues["library"] = {1: ("kettle", 10.0), 2: ("lamp", 25.0), 3: ("mug", 5.0)}
    second = crawlrunner.run(spec, output=db_path)
    return db_path, [first, second]


def _open_files() -> set[str]:
    """Paths this process holds open (Linux), to show a database was closed."""
    fds = Path("/proc/self/fd")
    return {os.path.realpath(fd) for fd in fds.iterdir()} if fds.is_dir() else set()


def test_query_returns_the_rows_and_closes_the_database(two_runs: tuple[Path, list[crawlrunner.RunResult]]) -> None:
    db, _ = two_runs

    table = crawlrunner.query(db, "SELECT id, name, price FROM products WHERE price > ? ORDER BY id", [6])

    assert isinstance(table, Table)
    assert table.columns == ("id", "name", "price")
    assert table.rows == ((1, "kettle", 10.0), (2, "lamp", 25.0))
    assert list(table) == list(table.rows) and len(table) == 2
    assert table.records()[1] == {"id": 2, "name": "lamp", "price": 25.0}
    assert str(db.resolve()) not in _open_files()


def test_query_is_read_only_and_reports_bad_sql(two_runs: tuple[Path, list[crawlrunner.RunResult]]) -> None:
    db, _ = two_runs

    with pytest.raises(StorageError, match="readonly"):
        crawlrunner.query(db, "DELETE FROM products")
    with pytest.raises(StorageError, match="syntax error"):
        crawlrunner.query(db, "SELEC nonsense")
    with pytest.raises(OutputPathError, match="no such database file"):
        crawlrunner.query(db.with_name("missing.db"), "SELECT 1")
    assert crawlrunner.query(db, "SELECT count(*) FROM products").rows == ((3,),)
    assert str(db.resolve()) not in _open_files()


def test_export_returns_a_targets_rows_in_stored_order(two_runs: tuple[Path, list[crawlrunner.RunResult]]) -> None:
    db, (_, second) = two_runs

    single = crawlrunner.export(db, "single")
    assert single.columns == ("id", "name", "_run_id", "_url", "_fetched_at")
    assert [(r["_run_id"], r["id"], r["name"]) for r in single.records()] == [(1, 7, "item 7"), (2, 7, "item 7")]
    only_second = crawlrunner.export(db, "single", run_id=second.run_id)
    assert [r["_run_id"] for r in only_second.records()] == [second.run_id]

    products = crawlrunner.export(db, "products").records()
    assert [(r["id"], r["name"], r["price"]) for r in products] == [
        (1, "kettle", 10.0),
        (2, "lamp", 25.0),
        (3, "mug", 5.0),
    ]

    with pytest.raises(OutputPathError, match=r"no target table 'nope' \(tables: products, single\)"):
        crawlrunner.export(db, "nope")


def test_list_runs_has_one_row_per_run_with_its_counters(two_runs: tuple[Path, list[crawlrunner.RunResult]]) -> None:
    db, results = two_runs

    runs = crawlrunner.list_runs(db).records()

    assert [(r["id"], r["spec_name"], r["status"]) for r in runs] == [
        (1, "shop", "completed"),
        (2, "shop", "completed"),
    ]
    assert [r["id"] for r in runs] == [result.run_id for result in results]
    assert [(r["requests"], r["records"]) for r in runs] == [(2, 3), (2, 4)]


def test_changes_defaults_to_the_latest_run(two_runs: tuple[Path, list[crawlrunner.RunResult]]) -> None:
    db, (first, second) = two_runs

    latest = crawlrunner.changes(db, "products")
    assert latest.columns == ("run_id", "change", "key", "changed", "old", "new", "at")
    assert [row[:6] for row in latest] == [
        (second.run_id, "added", [3], None, None, {"name": "mug", "price": 5.0}),
        (second.run_id, "changed", [2], ["price"], {"name": "lamp", "price": 20.0}, {"name": "lamp", "price": 25.0}),
    ]
    everything = crawlrunner.changes(db, "products", since=0)
    assert [(row[0], row[1], row[2]) for row in everything] == [
        (first.run_id, "added", [1]),
        (first.run_id, "added", [2]),
        (second.run_id, "added", [3]),
        (second.run_id, "changed", [2]),
    ]
    assert len(crawlrunner.changes(db, "products", since=second.run_id)) == 0
    with pytest.raises(OutputPathError, match="'single' keeps no history"):
        crawlrunner.changes(db, "single")


def test_a_stream_reads_lazily_and_closes_on_leaving_the_block(
    two_runs: tuple[Path, list[crawlrunner.RunResult]],
) -> None:
    db, _ = two_runs

    with stream_export(db, "products") as rows:
        assert str(db.resolve()) in _open_files() or not Path("/proc/self/fd").is_dir()
        id_column = rows.columns.index("id")
        assert next(rows.rows)[id_column] == 1
        rest = rows.read()  # what is left
    assert [row[id_column] for row in rest] == [2, 3]
    assert str(db.resolve()) not in _open_files()


def test_reextract_rebuilds_from_stored_bodies_without_a_request(
    two_runs: tuple[Path, list[crawlrunner.RunResult]], server: str, write_spec: Spec
) -> None:
    db, _ = two_runs
    hits = server_app.hits["catalogue:library"]
    changed = crawlrunner.load_spec(
        write_spec(
            SHOP, name="changed.yaml", base=server, key="library", fields="id: {jmespath: id, type: int}, label: name"
        )
    )

    result = crawlrunner.reextract(changed, output=db, only=["products"])

    assert server_app.hits["catalogue:library"] == hits
    assert result.status == "reextracted" and result.ok
    labels = crawlrunner.query(db, "SELECT id, label FROM products WHERE _run_id = ? ORDER BY id", [result.run_id])
    assert labels.rows == ((1, "kettle"), (2, "lamp"), (3, "mug"))
    assert crawlrunner.list_runs(db).records()[-1]["status"] == "reextracted"
    with pytest.raises(crawlrunner.UnknownTargetError, match="'nope'"):
        crawlrunner.reextract(changed, output=db, only=["nope"])
