"""``export -f parquet``: a file whose columns have the types the database declares, read back with pyarrow."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import crawlrunner
from crawlrunner.backends import parquet
from crawlrunner.backends.field_types import decode_changes
from crawlrunner.cli import main
from crawlrunner.errors import UsageError

from .. import server_app

SPEC = """
name: typed
http: {{base_url: "{base}"}}
targets:
  - name: products
    url: /catalogue/{key}
    extract:
      records: items
      fields:
        id: {{jmespath: id, type: int}}
        name: name
        price: {{jmespath: price, type: float}}
        cheap: {{jmespath: "price < `2`", type: bool}}
        label: {{jmespath: "{{name: name, price: price}}", type: json}}
        words: {{jmespath: "[name, 'x']", many: true}}
        day: {{jmespath: "'2024-05-01'", type: date}}
        seen: {{jmespath: "'2024-05-01T12:30:00+02:00'", type: datetime}}
        raw: price
"""

TYPES = {
    "_run_id": pa.int64(),
    "_url": pa.string(),
    "_fetched_at": pa.timestamp("us", tz="UTC"),
    "id": pa.int64(),
    "name": pa.string(),
    "price": pa.float64(),
    "cheap": pa.bool_(),
    "label": pa.string(),  # JSON text
    "words": pa.string(),
    "day": pa.date32(),
    "seen": pa.timestamp("us", tz="UTC"),
}


def _crawl(cli: CliRunner, write_spec: Callable[..., Path], server: str, output: str, key: str) -> None:
    result = cli.invoke(main, ["run", str(write_spec(SPEC, base=server, key=key)), "-o", output])
    assert result.exit_code == 0, result.output


def test_export_parquet_types_each_column_as_the_database_declares_it(
    cli: CliRunner, server: str, write_spec: Callable[..., Path], output: str, tmp_path: Path
) -> None:
    server_app.catalogues["parquet-types"] = {1: ("a", 1.5), 2: ("b", 3.0)}
    _crawl(cli, write_spec, server, output, "parquet-types")
    path = tmp_path / "products.parquet"

    exported = cli.invoke(main, ["export", output, "products", "-f", "parquet", "-o", str(path)])

    assert exported.exit_code == 0, exported.output
    assert "2 rows written to" in exported.stderr
    table = pq.read_table(path)
    assert {name: table.schema.field(name).type for name in TYPES} == TYPES
    # An untyped field declares nothing: SQLite's values say float, PostgreSQL's text column says text.
    assert table.schema.field("raw").type == (pa.float64() if output.endswith(".db") else pa.string())
    rows = table.to_pylist()
    assert [{k: row[k] for k in ("id", "name", "price", "cheap", "label", "words", "day")} for row in rows] == [
        {"id": 1, "name": "a", "price": 1.5, "cheap": True, "label": '{"name":"a","price":1.5}', "words": '["a","x"]',
         "day": date(2024, 5, 1)},
        {"id": 2, "name": "b", "price": 3.0, "cheap": False, "label": '{"name":"b","price":3.0}', "words": '["b","x"]',
         "day": date(2024, 5, 1)},
    ]  # fmt: skip
    assert rows[0]["seen"] == datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
    assert rows[0]["_run_id"] == 1 and rows[0]["_fetched_at"].tzinfo is not None

    # The same file from Python, one run's rows only.
    again = tmp_path / "again.parquet"
    assert crawlrunner.export_parquet(output, "products", again, run_id=2) == 0
    assert pq.read_table(again).num_rows == 0 and pq.read_table(again).schema.field("day").type == pa.date32()


def test_export_parquet_writes_row_groups_in_constant_memory(
    cli: CliRunner,
    server: str,
    write_spec: Callable[..., Path],
    db_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server_app.catalogues["parquet-groups"] = {i: (f"n{i}", i / 2) for i in range(1, 8)}
    _crawl(cli, write_spec, server, str(db_path), "parquet-groups")
    monkeypatch.setattr(parquet, "ROW_GROUP", 3)  # 7 rows: groups of 3, 3 and 1
    path = tmp_path / "groups.parquet"

    assert crawlrunner.export_parquet(db_path, "products", path) == 7

    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [3, 3, 1]
    assert pq.read_table(path).column("id").to_pylist() == list(range(1, 8))


def test_parquet_needs_a_file_and_never_overwrites_the_database(
    cli: CliRunner, server: str, write_spec: Callable[..., Path], db_path: Path, tmp_path: Path
) -> None:
    server_app.catalogues["parquet-usage"] = {1: ("a", 1.5)}
    _crawl(cli, write_spec, server, str(db_path), "parquet-usage")
    before = db_path.read_bytes()

    to_terminal = cli.invoke(main, ["export", str(db_path), "products", "-f", "parquet"])
    assert (
        to_terminal.exit_code == 2
        and "parquet is a binary format: name the file to write with -o FILE" in to_terminal.stderr
    )
    onto_db = cli.invoke(main, ["export", str(db_path), "products", "-f", "parquet", "-o", str(db_path)])
    assert onto_db.exit_code == 2 and "is an SQLite database; an export will not overwrite it" in onto_db.stderr
    nowhere = cli.invoke(
        main, ["export", str(db_path), "products", "-f", "parquet", "-o", str(tmp_path / "no" / "x.parquet")]
    )
    assert nowhere.exit_code == 2 and "cannot write: No such file or directory" in nowhere.stderr
    assert db_path.read_bytes() == before
    assert "Traceback" not in to_terminal.output + onto_db.output + nowhere.output


def test_a_value_that_does_not_fit_its_declared_type_names_its_column(
    cli: CliRunner, server: str, write_spec: Callable[..., Path], db_path: Path, tmp_path: Path
) -> None:
    server_app.catalogues["parquet-misfit"] = {1: ("a", 1.5)}
    _crawl(cli, write_spec, server, str(db_path), "parquet-misfit")
    with closing(sqlite3.connect(db_path)) as conn:  # SQLite keeps text that is no number in an INTEGER column
        conn.execute("UPDATE products SET id = 'not a number'")
        conn.commit()

    failed = cli.invoke(main, ["export", str(db_path), "products", "-f", "parquet", "-o", str(tmp_path / "x.parquet")])

    assert failed.exit_code == 1 and "column 'id': a value does not fit its type (int64)" in failed.stderr


def test_without_pyarrow_parquet_says_how_to_install_it(
    cli: CliRunner,
    server: str,
    write_spec: Callable[..., Path],
    db_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server_app.catalogues["parquet-missing"] = {1: ("a", 1.5)}
    _crawl(cli, write_spec, server, str(db_path), "parquet-missing")
    # None in sys.modules makes `import pyarrow` fail, as it does where pyarrow is not installed.
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    path = tmp_path / "x.parquet"

    with pytest.raises(UsageError, match=r"pip install 'crawlrunner\[parquet\]'"):
        crawlrunner.export_parquet(db_path, "products", path)
    failed = cli.invoke(main, ["export", str(db_path), "products", "-f", "parquet", "-o", str(path)])
    assert failed.exit_code == 2 and "Parquet needs pyarrow: pip install 'crawlrunner[parquet]'" in failed.stderr
    assert "Traceback" not in failed.output and not path.exists()  # no empty file left behind


def test_changes_read_a_date_field_as_stored_now_that_its_kind_is_kept() -> None:
    # SQLite's history rows hold fields as JSON text; a 'date' kind has no decoder and must not break the read.
    row = (2, "changed", "[1]", '{"day": "2024-05-01", "cheap": 1}', '{"day": "2024-05-02", "cheap": 0}', "t")
    (_, _, key, changed, old, new, _), *_ = decode_changes([row], {"day": "date", "cheap": "bool"})
    assert (key, changed) == ([1], ["day", "cheap"])
    assert old == {"day": "2024-05-01", "cheap": True} and new == {"day": "2024-05-02", "cheap": False}
