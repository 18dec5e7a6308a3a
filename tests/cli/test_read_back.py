"""Reading data back: exported values keep their field types, changes say what changed, reads leave no files."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from click.testing import CliRunner

from crawlrunner.cli import main

from .. import server_app
from ..conftest import query

SPEC = """
name: typed
http: {{base_url: "{base}"}}
targets:
  - name: products
    url: /catalogue/{key}
    mode: upsert
    key: [id]
    extract:
      records: items
      fields:
        id: {{jmespath: id, type: int}}
        name: name
        cheap: {{jmespath: "price < `2`", type: bool}}
        label: {{jmespath: "{{name: name, price: price}}", type: json}}
        words: {{jmespath: "[name, 'x']", many: true}}
"""


def _crawl(cli: CliRunner, write_spec: Callable[..., Path], server: str, output: str, key: str) -> None:
    result = cli.invoke(main, ["run", str(write_spec(SPEC, base=server, key=key)), "-o", output])
    assert result.exit_code == 0, result.output


def test_export_writes_json_fields_as_json_and_bools_as_booleans(
    cli: CliRunner, server: str, write_spec: Callable[..., Path], output: str
) -> None:
    server_app.catalogues["typed-export"] = {1: ("a", 1.5), 2: ("b", 3.0)}
    _crawl(cli, write_spec, server, output, "typed-export")

    for fmt in ("jsonl", "json"):
        exported = cli.invoke(main, ["export", output, "products", "-f", fmt])
        assert exported.exit_code == 0, exported.output
        text = exported.stdout
        rows = [json.loads(line) for line in text.splitlines()] if fmt == "jsonl" else json.loads(text)
        fields = [{k: row[k] for k in ("id", "name", "cheap", "label", "words")} for row in rows]
        assert fields == [
            {"id": 1, "name": "a", "cheap": True, "label": {"name": "a", "price": 1.5}, "words": ["a", "x"]},
            {"id": 2, "name": "b", "cheap": False, "label": {"name": "b", "price": 3.0}, "words": ["b", "x"]},
        ]
        assert [type(row["cheap"]) for row in rows] == [bool, bool]  # 1 == True: the type says it is not 1

    # CSV has no types: JSON values as JSON text, booleans as true/false (not Python's repr).
    as_csv = cli.invoke(main, ["export", output, "products", "-f", "csv"])
    first = next(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert (first["cheap"], json.loads(first["label"]), first["words"]) == (
        "true",
        {"name": "a", "price": 1.5},
        '["a","x"]',
    )


def test_changes_give_key_old_and_new_as_json_and_name_the_fields_that_changed(
    cli: CliRunner, server: str, write_spec: Callable[..., Path], output: str
) -> None:
    server_app.catalogues["typed-changes"] = {1: ("a", 1.5), 2: ("b", 3.0)}
    _crawl(cli, write_spec, server, output, "typed-changes")
    server_app.catalogues["typed-changes"] = {1: ("a", 2.5), 2: ("b", 3.0), 3: ("c", 1.0)}
    _crawl(cli, write_spec, server, output, "typed-changes")

    listed = cli.invoke(main, ["changes", output, "products", "-f", "jsonl"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    added, changed = sorted(rows, key=lambda row: str(row["change"]))
    assert (changed["change"], changed["key"], changed["changed"]) == ("changed", [1], ["cheap", "label"])
    assert changed["old"] == {"name": "a", "cheap": True, "label": {"name": "a", "price": 1.5}, "words": ["a", "x"]}
    assert changed["new"]["cheap"] is False and changed["new"]["label"] == {"name": "a", "price": 2.5}
    assert (added["change"], added["key"], added["changed"], added["old"]) == ("added", [3], None, None)
    assert added["new"]["cheap"] is True and added["new"]["words"] == ["c", "x"]

    table = cli.invoke(main, ["changes", output, "products"]).stdout.splitlines()
    assert table[0].split() == ["run_id", "change", "key", "changed", "old", "new", "at"]
    assert any(line.split()[1:4] == ["changed", "[1]", '["cheap","label"]'] for line in table[2:]), table


def test_read_commands_leave_no_wal_files_behind(
    cli: CliRunner, server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    server_app.catalogues["typed-wal"] = {1: ("a", 1.5)}
    _crawl(cli, write_spec, server, str(db_path), "typed-wal")
    side_files = [db_path.with_name(db_path.name + suffix) for suffix in ("-wal", "-shm")]
    assert query(db_path, "PRAGMA journal_mode") == [("wal",)] and not any(p.exists() for p in side_files)

    for command in (
        ["query", str(db_path), "SELECT count(*) FROM products"],
        ["export", str(db_path), "products"],
        ["runs", str(db_path)],
        ["changes", str(db_path), "products"],
    ):
        assert cli.invoke(main, command).exit_code == 0
        assert [p.name for p in side_files if p.exists()] == [], command

    # A run writing meanwhile keeps its files, and its writes: only the last connection removes them.
    with closing(sqlite3.connect(db_path)) as writer:
        writer.execute("UPDATE products SET name = 'changed'")
        writer.commit()
        assert cli.invoke(main, ["export", str(db_path), "products"]).exit_code == 0
        assert all(p.exists() for p in side_files)
        assert writer.execute("SELECT name FROM products").fetchall() == [("changed",)]
    assert query(db_path, "SELECT name FROM products") == [("changed",)]
