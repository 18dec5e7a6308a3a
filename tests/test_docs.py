"""The spec reference (docs/spec.md) keeps step with the JSON Schema."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from crawlrunner.backends.sqlite.schema import OWN_TABLES
from crawlrunner.errors import ErrorKind
from crawlrunner.spec import spec_schema

from .conftest import REPO


def _keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            yield key
            yield from _keys(value)
        for name in ("additionalProperties", "items", "anyOf", "oneOf", "allOf"):
            child = node.get(name)
            for sub in child if isinstance(child, list) else [child]:
                yield from _keys(sub)
        for sub in node.get("$defs", {}).values():
            yield from _keys(sub)


def _enum_values(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.get("enum", []):
            yield str(value)
        for value in node.values():
            yield from _enum_values(value)
    elif isinstance(node, list):
        for value in node:
            yield from _enum_values(value)


def test_every_schema_key_and_choice_is_documented() -> None:
    doc = (REPO / "docs" / "spec.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([^`\s]+)`", doc))
    schema = spec_schema()
    missing_keys = sorted(set(_keys(schema)) - documented)
    missing_values = sorted(set(_enum_values(schema)) - documented - {"runs", "fetch_log"})
    assert missing_keys == []
    assert missing_values == []


def _documented_columns(doc: str) -> dict[str, set[str]]:
    """Table → columns named in the first cell of each table row of a section."""
    sections = re.split(r"^#{2,3} ", doc, flags=re.M)
    found: dict[str, set[str]] = {}
    for section in sections:
        title = re.match(r"`([^`]+)`|([^\n]+)", section)
        if not title:
            continue
        cells = re.findall(r"^\| ([^|]+) \|", section, flags=re.M)
        found[title.group(1) or title.group(2).strip()] = {
            name for cell in cells for name in re.findall(r"`([a-z_]+)`", cell)
        }
    return found


def test_the_database_reference_matches_a_real_database(server: str, tmp_path: Path) -> None:
    from crawlrunner.api import run
    from crawlrunner.spec import load_spec_text

    spec = load_spec_text(
        f"name: d\nhttp: {{base_url: '{server}'}}\ntargets:\n"
        "  - {name: items, url: /json/item/1, mode: upsert, key: [id], extract: {fields: {id: id}}}\n"
    )
    database = tmp_path / "d.db"
    run(spec, output=database)
    documented = _documented_columns((REPO / "docs" / "database.md").read_text(encoding="utf-8"))
    with closing(sqlite3.connect(database)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        actual = {t: {r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')} for t in tables}
    for table in OWN_TABLES:
        assert documented[table] == actual[table], table
    history = set(actual["_crawlrunner_history_items"])
    assert documented["_crawlrunner_history_<target>"] == history
    provenance = {c for c in actual["items"] if c.startswith("_")}
    assert provenance <= documented["Target tables"] | {
        "_first_seen_run",
        "_first_seen_at",
        "_changed_run",
        "_changed_at",
    }
    assert {"_first_seen_run", "_first_seen_at", "_changed_run", "_changed_at", "_removed_run"} <= provenance


def test_the_database_reference_lists_every_error_kind() -> None:
    doc = (REPO / "docs" / "database.md").read_text(encoding="utf-8")
    (row,) = [line for line in doc.splitlines() if line.startswith("| `error_kind` |")]
    documented = set(re.findall(r"`([a-z_]+)`", row.split("|")[2]))
    assert documented == {kind.value for kind in ErrorKind}


def test_the_shipped_schema_is_a_valid_draft_2020_12_schema() -> None:
    # Checked here rather than on every run, where it cost 50 ms of start-up.
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(spec_schema())


def test_the_readme_lists_every_error_kind() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert [kind.value for kind in ErrorKind if f"`{kind.value}`" not in readme] == []


def test_the_postgresql_reference_matches_a_real_database(server: str, pg_url: str) -> None:
    """The coordination tables of docs/database.md's PostgreSQL section, against a database a run made."""
    from crawlrunner import query, run
    from crawlrunner.spec import load_spec_text

    spec = load_spec_text(
        f"name: d\nhttp: {{base_url: '{server}'}}\ntargets:\n  - {{name: items, url: /json/item/1, extract: {{fields: {{id: id}}}}}}\n"
    )
    run(spec, output=pg_url)
    doc = (REPO / "docs" / "database.md").read_text(encoding="utf-8")
    documented = _documented_columns(doc[doc.index("\n## PostgreSQL") :])
    columns = query(
        pg_url,
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()",
    )
    actual: dict[str, set[str]] = {}
    for table, column in columns:
        actual.setdefault(table, set()).add(column)
    for table in ("workers", "run_targets", "seen", "hosts", "host_turns"):
        assert documented["_crawlrunner_" + table] == actual["_crawlrunner_" + table], table
    sqlite_requests = _documented_columns(doc)["_crawlrunner_requests"]
    leases = documented["Leases: the extra columns of `_crawlrunner_requests`"]
    assert leases | sqlite_requests == actual["_crawlrunner_requests"]
    assert actual["_crawlrunner_fetch_log"] - _documented_columns(doc)["_crawlrunner_fetch_log"] == {"worker_id"}
