"""A target's table as other tools see it: fields first, a declared type for every column, the key as primary key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from crawlrunner import export, load_spec
from crawlrunner.api import run_async
from crawlrunner.errors import StorageError

from ..conftest import ThreadedServer, query

documents: dict[str, Any] = {}


async def _document(request: web.Request) -> web.Response:
    return web.json_response(documents[request.match_info["name"]])


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    app = web.Application()
    app.router.add_get("/doc/{name}", _document)
    with ThreadedServer(app) as running:
        yield running.url


def _spec(site: str, fields: str, *, mode: str = "append", key: str = "", urls: str = "[/doc/a]") -> Any:
    return load_spec(
        f"name: layout\nhttp: {{base_url: '{site}'}}\ntargets:\n"
        f"  - name: things\n    urls: {urls}\n    mode: {mode}\n{key}"
        f"    extract:\n      records: items\n      fields: {fields}\n"
    )


def _declared(db: Path, table: str = "things") -> dict[str, str]:
    return {str(r[1]): str(r[2]) for r in query(db, f"PRAGMA table_info({table})")}


async def test_untyped_json_fields_are_declared_by_their_first_values(site: str, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    documents["a"] = {"items": [
        {"n": 1, "f": 1.5, "mixed": 1, "s": "00123", "b": True, "o": {"k": [1]}, "later": None, "big": 2**64},
        {"n": 2, "f": 2, "mixed": 2.5, "s": "x", "b": False, "o": [], "later": None, "big": 3},
    ]}  # fmt: skip
    documents["b"] = {"items": [{"n": 3, "later": "now"}]}
    fields = "{n: n, f: f, mixed: mixed, s: s, b: b, o: o, later: later, big: big, status: {meta: status}}"
    # /doc/b is a second request: with one connection its records come in a later batch or the same one.
    spec = _spec(site, fields, urls="[/doc/a, /doc/b]")
    await run_async(spec, output=db)

    declared = _declared(db)
    assert declared == {
        "n": "INTEGER", "f": "REAL", "mixed": "REAL", "s": "TEXT", "b": "INTEGER", "o": "TEXT", "later": "TEXT",
        "big": "TEXT", "status": "INTEGER", "_run_id": "INTEGER", "_url": "TEXT", "_fetched_at": "TEXT",
    }  # fmt: skip
    assert list(declared)[:3] == ["n", "f", "mixed"]  # fields first, provenance after
    indexes = query(db, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'things'")
    assert indexes == [("_things_run_id",)]  # kept through the rebuild; no _url index: nothing looks rows up by it
    assert query(db, "SELECT s, typeof(s), big FROM things WHERE n = 1") == [("00123", "text", str(2**64))]
    rows = {r["n"]: r for r in export(db, "things").records()}
    assert rows[1]["b"] is True and rows[2]["b"] is False  # a boolean reads back as one
    assert rows[1]["o"] == {"k": [1]} and rows[2]["o"] == []  # and an object or list as JSON
    assert rows[3]["later"] == "now"


async def test_a_column_typed_by_one_run_keeps_its_type_in_the_next(site: str, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    documents["a"] = {"items": [{"n": None}]}
    spec = _spec(site, "{n: n, m: m}")
    await run_async(spec, output=db)
    assert _declared(db)["n"] == ""  # nothing to read a type off yet
    documents["a"] = {"items": [{"n": 7, "m": "x"}]}
    await run_async(spec, output=db)
    assert _declared(db)["n"] == "INTEGER" and _declared(db)["m"] == "TEXT"
    assert query(db, "SELECT n, m FROM things ORDER BY _run_id") == [(None, None), (7, "x")]


async def test_the_upsert_key_is_the_primary_key_and_a_record_without_one_is_dropped(site: str, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    documents["a"] = {"items": [{"id": 1, "sku": "a"}, {"id": None, "sku": "b"}, {"id": 2, "sku": "c"}]}
    spec = _spec(site, "{id: {jmespath: id, type: int}, sku: sku}", mode="upsert", key="    key: [id]\n")
    result = await run_async(spec, output=db)

    assert result.status == "completed" and result.stats.totals.dropped == 1
    assert [(r[1], r[5]) for r in query(db, "PRAGMA table_info(things)") if r[5]] == [("id", 1)]
    assert query(db, "SELECT id, sku FROM things ORDER BY id") == [(1, "a"), (2, "c")]


async def test_a_changed_key_rebuilds_the_table_around_it_or_says_why_not(site: str, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    documents["a"] = {"items": [{"id": 1, "sku": "a", "name": "one"}, {"id": 2, "sku": "b", "name": "two"}]}
    fields = "{id: {jmespath: id, type: int}, sku: sku, name: name}"
    await run_async(_spec(site, fields, mode="upsert", key="    key: [id]\n"), output=db)

    await run_async(_spec(site, fields, mode="upsert", key="    key: [sku]\n"), output=db)
    assert [r[1] for r in query(db, "PRAGMA table_info(things)") if r[5]] == ["sku"]
    assert query(db, "SELECT id, sku, name FROM things ORDER BY id") == [(1, "a", "one"), (2, "b", "two")]

    await run_async(_spec(site, fields, mode="append"), output=db)  # no key any more: rows may repeat
    assert [r[1] for r in query(db, "PRAGMA table_info(things)") if r[5]] == []
    assert query(db, "SELECT count(*) FROM things") == [(4,)]

    with pytest.raises(StorageError, match=r"cannot change the key of 'things' to \(id\).*share a value"):
        await run_async(_spec(site, fields, mode="upsert", key="    key: [id]\n"), output=db)
    assert query(db, "SELECT count(*) FROM things") == [(4,)]  # untouched
    documents["a"] = {"items": [{"id": 1, "sku": "a", "name": "one"}]}
    with pytest.raises(StorageError, match=r"to \(missing\): rows stored are empty in a field of the new key"):
        await run_async(
            _spec(site, fields[:-1] + ", missing: missing}", mode="upsert", key="    key: [missing]\n"), output=db
        )


async def test_a_field_dropped_from_the_spec_keeps_its_column_through_a_rebuild(site: str, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    documents["a"] = {"items": [{"id": 1, "old": "kept"}]}
    await run_async(_spec(site, "{id: {jmespath: id, type: int}, old: old}"), output=db)
    await run_async(_spec(site, "{id: {jmespath: id, type: int}}", mode="upsert", key="    key: [id]\n"), output=db)
    assert query(db, "SELECT id, old FROM things") == [(1, "kept")]
    assert list(_declared(db))[-1] == "old"


async def test_a_later_value_of_another_type_widens_the_column_rather_than_being_converted(
    site: str, tmp_path: Path
) -> None:
    # SQLite would store "0012" as 12 in an INTEGER column: an upsert keyed on it would merge two records.
    db = tmp_path / "t.db"
    spec = _spec(site, "{sku: sku, n: n}", mode="upsert", key="    key: [sku]\n")
    documents["a"] = {"items": [{"sku": 12, "n": 1}]}
    await run_async(spec, output=db)
    assert _declared(db)["sku"] == "INT" and _declared(db)["n"] == "INTEGER"
    documents["a"] = {"items": [{"sku": "0012", "n": 1.5}, {"sku": 2**70, "n": 2}]}
    await run_async(spec, output=db)

    assert _declared(db)["sku"] == "TEXT" and _declared(db)["n"] == "REAL"
    assert query(db, "SELECT sku, n FROM things ORDER BY rowid") == [("12", 1.0), ("0012", 1.5), (str(2**70), 2.0)]
    history = query(db, "SELECT key, change FROM _crawlrunner_history_things ORDER BY id")
    # 12 is not on the page any more: removed (its key now the text the widened column holds).
    assert history == [("[12]", "added"), ('["0012"]', "added"), (f'["{2**70}"]', "added"), ('["12"]', "removed")]
    not_null = [r[1] for r in query(db, "PRAGMA table_info(things)") if r[3]]
    assert not_null == ["_run_id", "_url", "_fetched_at"]  # provenance keeps its constraints through the rebuilds
