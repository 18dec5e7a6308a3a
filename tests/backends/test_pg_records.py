"""Target tables and the data rows of a batch on a real PostgreSQL server (tables.py, records.py).

Each test gets a new database with crawlrunner's layout (``layout.ensure_layout``),
a run, and fetch-log rows made by hand: what the sink does around
``RecordWriter.write`` is not under test here, the rows it writes are.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from crawlrunner.errors import SpecError, StorageError
from crawlrunner.results import FetchResult, Outcome, utc_now
from crawlrunner.secrets import MASK
from crawlrunner.spec import load_spec_text
from crawlrunner.spec.model import Spec

from ..conftest import NO_ASYNCPG, postgres_unavailable

try:
    import asyncpg
except ImportError:
    postgres_unavailable(NO_ASYNCPG)

from crawlrunner.backends import health
from crawlrunner.backends.postgres import records as records_module
from crawlrunner.backends.postgres.health import PostgresFacts
from crawlrunner.backends.postgres.layout import ensure_layout
from crawlrunner.backends.postgres.records import RecordWriter, finish_completed, validators
from crawlrunner.backends.postgres.tables import (
    NUL_REPLACEMENT,
    create_target_table,
    history_table,
    object_name,
    prepare_targets,
)

pytestmark = pytest.mark.timeout(120)

TOKEN = "tok-S3cr3t-9f8e"
TYPED = """
name: typed
targets:
  - name: items
    url: https://shop.test/items
    mode: {mode}
    {key}
    extract:
      fields:
        id: {{jmespath: id, type: int}}
        name: {{jmespath: name, type: str}}
        price: {{jmespath: price, type: float}}
        active: {{jmespath: active, type: bool}}
        day: {{jmespath: day, type: date}}
        seen: {{jmespath: seen, type: datetime}}
        meta: {{jmespath: meta, type: json}}
        tags: {{jmespath: tags, many: true}}
        raw: raw
"""
UPSERT = """
name: shop
targets:
  - name: products
    url: https://shop.test/products
    mode: upsert
    key: [{key}]
    extract:
      fields:
        id: {{jmespath: id, type: int}}
        lang: lang
        name: name
        price: {{jmespath: price, type: float}}
"""


def spec_of(text: str, environ: Mapping[str, str] | None = None) -> Spec:
    return load_spec_text(text, "test.yaml", environ=environ or {})


def typed(mode: str = "append", key: str = "") -> Spec:
    return spec_of(TYPED.format(mode=mode, key=key))


def shop(key: str = "id") -> Spec:
    return spec_of(UPSERT.format(key=key))


@pytest.fixture
async def conn(pg_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(pg_url, timeout=10)
    try:
        async with connection.transaction():
            await ensure_layout(connection, "test")
        yield connection
    finally:
        await connection.close(timeout=10)


async def new_run(conn: asyncpg.Connection, spec: Spec) -> int:
    run_id = await conn.fetchval(
        "INSERT INTO _crawlrunner_runs (spec_name, spec_file, spec_hash, status) VALUES ($1, 'test.yaml', 'h', 'running')"
        " RETURNING id",
        spec.name,
    )
    return int(run_id)


def outcome(
    target: str,
    url: str,
    records: list[dict[str, Any]] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    fetched_at: str | None = None,
    failed: bool = False,
) -> Outcome:
    fetch = FetchResult(
        target, "GET", url, fetched_at or utc_now(), final_url=url, status=status, content_type="text/html",
        charset="utf-8", headers=dict(headers or {}), body=body,
        error_kind="http_status" if failed else None, error="503" if failed else None,
    )  # fmt: skip
    return Outcome(fetch, records=list(records or []))


async def write(conn: asyncpg.Connection, writer: RecordWriter, *outcomes: Outcome) -> list[int]:
    """One batch, as the sink commits it: fetch-log rows, then the writer, in one transaction."""
    async with conn.transaction():
        ids = []
        for item in outcomes:
            fetch = item.fetch
            fetch_id = await conn.fetchval(
                "INSERT INTO _crawlrunner_fetch_log (run_id, target, method, url, status, bytes, elapsed_ms, attempts, records,"
                " error_kind, fetched_at) VALUES ($1, $2, 'GET', $3, $4, 0, 0, 1, $5, $6, now()) RETURNING id",
                writer.run_id, fetch.target, fetch.url, fetch.status, len(item.records), fetch.error_kind,
            )  # fmt: skip
            ids.append(int(fetch_id))
        await writer.write(conn, list(zip(outcomes, ids, strict=True)))
    return ids


async def rows(conn: asyncpg.Connection, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await conn.fetch(sql, *args)]


async def column_types(conn: asyncpg.Connection, table: str) -> dict[str, str]:
    """name → type of each of ``table``'s columns, in the table's order."""
    return dict(
        await rows(
            conn,
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            table,
        )
    )


async def primary_key(conn: asyncpg.Connection, table: str) -> list[str]:
    """The columns of ``table``'s primary key, in key order (empty: none)."""
    found = await conn.fetchval(
        "SELECT array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k(n, i)"
        " JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i)::text[]"
        " FROM pg_constraint AS c WHERE c.conrelid = to_regclass($1) AND c.contype = 'p'",
        table,
    )
    return list(found or [])


async def indexes(conn: asyncpg.Connection, table: str) -> dict[str, str]:
    found = await rows(
        conn, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1", table
    )
    return dict(found)


def history(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A history row (run_id, key, change, old, new) with its JSON read."""
    run_id, key, change, old, new = row
    return run_id, key, change, json.loads(old) if old else None, json.loads(new)


async def history_rows(conn: asyncpg.Connection, table: str = "_crawlrunner_history_products") -> list[tuple[Any, ...]]:
    return [history(r) for r in await rows(conn, f'SELECT run_id, key, change, old, new FROM "{table}" ORDER BY id')]


# --- tables ------------------------------------------------------------------


async def test_fields_get_typed_columns(conn: asyncpg.Connection) -> None:
    spec = typed()
    await prepare_targets(conn, spec.targets)

    # The fields first, in the spec's order, then provenance.
    assert list((await column_types(conn, "items")).items()) == [
        ("id", "bigint"), ("name", "text"), ("price", "double precision"), ("active", "boolean"), ("day", "date"),
        ("seen", "timestamp with time zone"), ("meta", "jsonb"), ("tags", "jsonb"), ("raw", "text"),
        ("_run_id", "bigint"), ("_url", "text"), ("_fetched_at", "timestamp with time zone"),
    ]  # fmt: skip
    assert set(await indexes(conn, "items")) == {"_items_run_id", "_items_url"}


async def test_typed_values_are_stored_as_their_types(conn: asyncpg.Connection) -> None:
    spec = typed()
    await prepare_targets(conn, spec.targets)
    run_id = await new_run(conn, spec)
    record = {
        "id": 7, "name": "kettle", "price": 10.5, "active": True, "day": "2024-03-01",
        "seen": "2024-03-01T10:00:00+02:00", "meta": {"b": [1, 2], "a": None}, "tags": ["x", "y"], "raw": "as is",
    }  # fmt: skip
    others = [
        {"id": None, "name": None, "price": None, "active": False, "day": None, "seen": "2024-03-02T00:00:00",
         "meta": "text", "tags": None, "raw": 12},
        {"id": 2**63 - 1, "name": "", "price": float("nan"), "active": None, "day": None, "seen": None,
         "meta": [float("inf"), 2**70], "tags": [{"k": "v"}], "raw": {"z": 1, "a": [True, None]}},
        {"id": -1, "name": "n", "price": 3.0, "active": None, "day": None, "seen": None, "meta": None, "tags": "one",
         "raw": 2**64 + 1},
        {"id": 0, "name": "n", "price": None, "active": None, "day": None, "seen": None, "meta": None, "tags": None,
         "raw": 1.5},
        {"id": 1, "name": "n", "price": None, "active": None, "day": None, "seen": None, "meta": None, "tags": None,
         "raw": False},
    ]  # fmt: skip
    await write(conn, RecordWriter(spec, run_id), outcome("items", "https://shop.test/items", [record, *others]))

    stored = await rows(
        conn,
        "SELECT id, name, price, active, day, seen, meta, jsonb_typeof(meta), tags, jsonb_typeof(tags), raw"
        " FROM items ORDER BY id NULLS FIRST",
    )
    assert stored == [
        (None, None, None, False, None, datetime(2024, 3, 2, tzinfo=UTC), '"text"', "string", None, None, "12"),
        (-1, "n", 3.0, None, None, None, None, None, '"one"', "string", "18446744073709551617"),
        (0, "n", None, None, None, None, None, None, None, None, "1.5"),
        (1, "n", None, None, None, None, None, None, None, None, "false"),
        (7, "kettle", 10.5, True, date(2024, 3, 1), datetime(2024, 3, 1, 8, tzinfo=UTC),
         '{"a": null, "b": [1, 2]}', "object", '["x", "y"]', "array", "as is"),
        (2**63 - 1, "", None, None, None, None, f"[null, {2**70}]", "array", '[{"k": "v"}]', "array",
         '{"a": [true, null], "z": 1}'),
    ]  # fmt: skip
    assert await rows(conn, "SELECT DISTINCT _run_id, _url FROM items") == [(run_id, "https://shop.test/items")]
    # A datetime without an offset is UTC; one with an offset is the same instant.
    assert stored[4][5].utcoffset() == timedelta(0)


async def test_create_statements_name_things_as_sqlite_does(conn: asyncpg.Connection) -> None:
    target = shop("id, lang").target("products")
    statements = create_target_table(target)

    assert statements[0].startswith('CREATE TABLE IF NOT EXISTS "products"')
    assert 'CONSTRAINT "_products_pkey" PRIMARY KEY ("id", "lang")' in statements[0]
    assert history_table(target) == "_crawlrunner_history_products"
    await prepare_targets(conn, [target])
    await prepare_targets(conn, [target])  # twice is harmless
    assert set(await indexes(conn, "products")) == {"_products_run_id", "_products_url", "_products_pkey"}
    assert await primary_key(conn, "products") == ["id", "lang"]
    assert list(await column_types(conn, "products")) == [
        "id", "lang", "name", "price", "_run_id", "_url", "_fetched_at",
        "_first_seen_run", "_first_seen_at", "_changed_run", "_changed_at", "_removed_run",
    ]  # fmt: skip
    assert await column_types(conn, "_crawlrunner_history_products") == {
        "id": "bigint", "run_id": "bigint", "key": "text", "change": "text", "old": "jsonb", "new": "jsonb",
        "at": "timestamp with time zone",
    }  # fmt: skip
    assert set(await column_types(conn, "products")) >= {
        "_first_seen_run", "_first_seen_at", "_changed_run", "_changed_at",
    }  # fmt: skip


async def test_a_field_new_to_the_spec_becomes_a_column(conn: asyncpg.Connection) -> None:
    before = spec_of("name: s\ntargets:\n  - name: items\n    url: https://x.test/\n    extract: {fields: {id: id}}\n")
    await prepare_targets(conn, before.targets)
    after = spec_of(
        "name: s\ntargets:\n  - name: items\n    url: https://x.test/\n"
        "    extract: {fields: {id: id, price: {jmespath: price, type: float}, tags: {jmespath: t, many: true}}}\n"
    )
    await prepare_targets(conn, after.targets)

    types = await column_types(conn, "items")
    assert (types["id"], types["price"], types["tags"]) == ("text", "double precision", "jsonb")
    run_id = await new_run(conn, after)
    await write(
        conn,
        RecordWriter(after, run_id),
        outcome("items", "https://x.test/", [{"id": "a", "price": 2.5, "tags": ["t"]}]),
    )
    assert await rows(conn, "SELECT id, price, tags FROM items") == [("a", 2.5, '["t"]')]


async def test_a_field_whose_type_changed_keeps_a_column_that_holds_its_values(conn: asyncpg.Connection) -> None:
    text = "name: s\ntargets:\n  - name: items\n    url: https://x.test/\n    extract: {{fields: {{{fields}}}}}\n"
    first = spec_of(
        text.format(
            fields="a: {jmespath: a, type: int}, b: {jmespath: b, type: int}, c: c, d: {jmespath: d, type: date}"
        )
    )
    await prepare_targets(conn, first.targets)
    run_id = await new_run(conn, first)
    await write(
        conn,
        RecordWriter(first, run_id),
        outcome("items", "https://x.test/", [{"a": 1, "b": 2, "c": "x", "d": "2024-01-02"}]),
    )
    # a: int → float (the column widens), b: int → str (it becomes text), c: untyped → int
    # (text holds it), d: date → datetime (text: a date column would drop the time).
    second = spec_of(text.format(
        fields="a: {jmespath: a, type: float}, b: {jmespath: b, type: str}, c: {jmespath: c, type: int},"
        " d: {jmespath: d, type: datetime}"
    ))  # fmt: skip
    await prepare_targets(conn, second.targets)

    types = await column_types(conn, "items")
    assert [types[c] for c in "abcd"] == ["double precision", "text", "text", "text"]
    await write(
        conn, RecordWriter(second, run_id),
        outcome("items", "https://x.test/", [{"a": 1.5, "b": "two", "c": 3, "d": "2024-01-02T03:04:05+00:00"}]),
    )  # fmt: skip
    assert await rows(conn, "SELECT a, b, c, d FROM items ORDER BY a") == [
        (1.0, "2", "x", "2024-01-02"),
        (1.5, "two", "3", "2024-01-02T03:04:05+00:00"),
    ]


async def test_a_changed_key_replaces_the_primary_key(conn: asyncpg.Connection) -> None:
    await prepare_targets(conn, shop("id").targets)
    assert await primary_key(conn, "products") == ["id"]

    await prepare_targets(conn, shop("id, lang").targets)
    assert await primary_key(conn, "products") == ["id", "lang"]
    assert set(await indexes(conn, "products")) == {"_products_run_id", "_products_url", "_products_pkey"}

    # And the new key upserts: the same id in two languages is two rows.
    spec = shop("id, lang")
    run_id = await new_run(conn, spec)
    await write(conn, RecordWriter(spec, run_id), outcome("products", "https://shop.test/p", [
        {"id": 1, "lang": "en", "name": "kettle", "price": 1.0},
        {"id": 1, "lang": "fr", "name": "bouilloire", "price": 1.0},
    ]))  # fmt: skip
    assert await rows(conn, "SELECT id, lang, name FROM products ORDER BY lang") == [
        (1, "en", "kettle"),
        (1, "fr", "bouilloire"),
    ]

    # Back to id alone: the two rows stored share an id.
    with pytest.raises(StorageError, match=r"cannot make \(id\) its upsert key: rows already stored share"):
        await prepare_targets(conn, shop("id").targets)
    assert await primary_key(conn, "products") == ["id", "lang"]  # nothing changed

    # A key on a field new to the spec: its column comes first, then the key. The rows stored have no sku.
    added = spec_of(UPSERT.format(key="sku").replace("lang: lang", "lang: lang\n        sku: sku"))
    with pytest.raises(StorageError, match=r"cannot make \(sku\) its upsert key: .* or have none"):
        await prepare_targets(conn, added.targets)
    assert await primary_key(conn, "products") == ["id", "lang"]
    await conn.execute("DELETE FROM products")
    await prepare_targets(conn, added.targets)
    assert await primary_key(conn, "products") == ["sku"]

    # No longer upsert: no key at all.
    appended = spec_of(UPSERT.format(key="id").replace("mode: upsert", "mode: append").replace("    key: [id]\n", ""))
    await prepare_targets(conn, appended.targets)
    assert set(await indexes(conn, "products")) == {"_products_run_id", "_products_url"}
    assert await primary_key(conn, "products") == []


async def test_names_postgres_would_cut_short_stay_distinct(conn: asyncpg.Connection) -> None:
    name = "a" * 63
    spec = spec_of(f"""
name: long
targets:
  - name: {name}
    url: https://x.test/
    mode: upsert
    key: [{"k" * 40}, {"j" * 40}]
    extract: {{fields: {{{"k" * 40}: k, {"j" * 40}: j, v: v}}}}
""")
    target = spec.targets[0]
    await prepare_targets(conn, spec.targets)
    await prepare_targets(conn, spec.targets)  # found again: nothing replaced

    names = set(await indexes(conn, name))
    assert len(names) == 3 and all(len(n) <= 63 for n in names)
    assert object_name(f"_{name}_pkey") in names
    assert len(history_table(target)) <= 63 and history_table(target) != object_name(f"_{name}_run_id")
    run_id = await new_run(conn, spec)
    row = {"k" * 40: "k", "j" * 40: "j", "v": 1}
    writer = RecordWriter(spec, run_id)
    await write(conn, writer, outcome(name, "https://x.test/", [row]))
    await write(conn, writer, outcome(name, "https://x.test/", [{**row, "v": 2}]))
    assert [change for _, _, change, _, _ in await history_rows(conn, history_table(target))] == ["added", "changed"]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("theirs_x", "something else of that name"),  # an index
        ("their_numbers", "something else of that name"),  # a sequence
        ("theirs", "not a target's table"),
    ],
)
async def test_a_target_named_like_something_else_in_the_database_is_refused(
    conn: asyncpg.Connection, name: str, problem: str
) -> None:
    await conn.execute(
        "CREATE TABLE theirs (x int); CREATE INDEX theirs_x ON theirs (x); CREATE SEQUENCE their_numbers"
    )
    spec = spec_of(
        f"name: s\ntargets:\n  - name: {name}\n    url: https://x.test/\n    extract: {{fields: {{id: id}}}}\n"
    )
    with pytest.raises(StorageError, match=f"target '{name}': .*{problem}"):
        await prepare_targets(conn, spec.targets)
    assert await column_types(conn, "theirs") == {"x": "integer"}  # untouched


@pytest.mark.parametrize("name", ["crawlrunner_workers", "CrawlRunner_x"])
def test_a_target_named_like_a_table_of_the_layout_is_a_spec_error(name: str) -> None:
    # Refused when the spec loads, before any database is opened: the layout's own names start with _crawlrunner_.
    with pytest.raises(SpecError, match="names starting with crawlrunner_ are reserved"):
        spec_of(f"name: s\ntargets:\n  - name: {name}\n    url: https://x.test/\n")


async def test_workers_preparing_at_once_do_not_trip_over_each_other(conn: asyncpg.Connection, pg_url: str) -> None:
    spec = shop("id, lang")
    others = [await asyncpg.connect(pg_url, timeout=10) for _ in range(4)]
    try:
        await asyncio.gather(*(prepare_targets(c, spec.targets) for c in [conn, *others]))
    finally:
        for other in others:
            await other.close(timeout=10)
    assert set(await indexes(conn, "products")) == {"_products_run_id", "_products_url", "_products_pkey"}


# --- records -----------------------------------------------------------------


@pytest.mark.parametrize("copy", [False, True], ids=["unnest", "copy"])
async def test_append_adds_every_record_of_every_run(
    conn: asyncpg.Connection, copy: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if copy:  # large batches go by COPY
        monkeypatch.setattr(records_module, "COPY_ROWS", 1)
    spec = typed()
    await prepare_targets(conn, spec.targets)
    first, second = await new_run(conn, spec), await new_run(conn, spec)
    record = {"id": 1, "name": "a", "price": 1.0, "active": True, "day": "2024-01-01",
              "seen": "2024-01-01T00:00:00Z", "meta": {"x": 1}, "tags": ["t"], "raw": {"r": 1}}  # fmt: skip
    await write(conn, RecordWriter(spec, first), outcome("items", "https://shop.test/1", [record, {**record, "id": 2}]))
    await write(conn, RecordWriter(spec, second), outcome("items", "https://shop.test/1", [record]))

    assert await rows(conn, "SELECT _run_id, id, active, day, meta, raw FROM items ORDER BY _run_id, id") == [
        (first, 1, True, date(2024, 1, 1), '{"x": 1}', '{"r": 1}'),
        (first, 2, True, date(2024, 1, 1), '{"x": 1}', '{"r": 1}'),
        (second, 1, True, date(2024, 1, 1), '{"x": 1}', '{"r": 1}'),
    ]


async def test_upsert_records_additions_and_changes_with_old_and_new_values(conn: asyncpg.Connection) -> None:
    spec = shop()
    await prepare_targets(conn, spec.targets)
    first, second = await new_run(conn, spec), await new_run(conn, spec)
    url = "https://shop.test/p"
    await write(conn, RecordWriter(spec, first), outcome("products", url, [
        {"id": 1, "lang": "en", "name": "kettle", "price": 10.0},
        {"id": 2, "lang": "en", "name": "lamp", "price": 20.0},
    ]))  # fmt: skip
    await write(conn, RecordWriter(spec, second), outcome("products", url, [
        {"id": 2, "lang": "en", "name": "lamp", "price": 25.0},  # changed
        {"id": 1, "lang": "en", "name": "kettle", "price": 10.0},  # unchanged: no history row
        {"id": 3, "lang": None, "name": "mug", "price": None},  # added
    ]))  # fmt: skip

    assert await history_rows(conn) == [
        (first, "[1]", "added", None, {"lang": "en", "name": "kettle", "price": 10.0}),
        (first, "[2]", "added", None, {"lang": "en", "name": "lamp", "price": 20.0}),
        (second, "[3]", "added", None, {"lang": None, "name": "mug", "price": None}),
        (second, "[2]", "changed", {"lang": "en", "name": "lamp", "price": 20.0},
         {"lang": "en", "name": "lamp", "price": 25.0}),
    ]  # fmt: skip
    assert await rows(conn, "SELECT id, price, _run_id, _first_seen_run, _changed_run FROM products ORDER BY id") == [
        (1, 10.0, second, first, first),  # seen again, unchanged
        (2, 25.0, second, first, second),
        (3, None, second, second, second),
    ]
    at = await rows(conn, "SELECT at FROM _crawlrunner_history_products ORDER BY id")
    assert all(isinstance(a, datetime) and a.tzinfo is not None for (a,) in at)


@pytest.mark.parametrize("name", ["runs_pkey", "runs_id_seq", "lease_tokens", "requests_pending"])
async def test_names_of_the_layout_before_version_5_are_free_for_targets(conn: asyncpg.Connection, name: str) -> None:
    # Everything of crawlrunner's own (tables, indexes, sequences) is under its prefix now.
    spec = spec_of(
        f"name: s\ntargets:\n  - name: {name}\n    url: https://x.test/\n    extract: {{fields: {{id: id}}}}\n"
    )
    await prepare_targets(conn, spec.targets)
    assert list(await column_types(conn, name)) == ["id", "_run_id", "_url", "_fetched_at"]


async def test_key_fields_are_required_so_every_stored_key_is_whole(conn: asyncpg.Connection) -> None:
    # A record without its whole key is dropped at extraction; the primary key holds no NULL either.
    spec = shop("id, lang")
    assert all(f.required for f in spec.target("products").extract.fields if f.name in ("id", "lang"))  # type: ignore[union-attr]
    await prepare_targets(conn, spec.targets)
    with pytest.raises(asyncpg.NotNullViolationError):
        await conn.execute(
            "INSERT INTO products (id, lang, _run_id, _url, _fetched_at) VALUES (1, NULL, 1, 'u', now())"
        )


async def test_the_last_record_of_a_key_in_a_batch_wins(conn: asyncpg.Connection) -> None:
    spec = shop()
    await prepare_targets(conn, spec.targets)
    first, second = await new_run(conn, spec), await new_run(conn, spec)
    await write(conn, RecordWriter(spec, first), outcome("products", "https://shop.test/a", [
        {"id": 1, "lang": "en", "name": "one", "price": 1.0},
        {"id": 1, "lang": "en", "name": "two", "price": 2.0},
    ]))  # fmt: skip
    # Across outcomes of a batch too; history compares with the table as it was.
    await write(
        conn, RecordWriter(spec, second),
        outcome("products", "https://shop.test/b", [{"id": 1, "lang": "en", "name": "three", "price": 3.0}]),
        outcome("products", "https://shop.test/c", [{"id": 1, "lang": "en", "name": "four", "price": 4.0}]),
    )  # fmt: skip

    assert await rows(conn, "SELECT name, _url, _run_id FROM products") == [("four", "https://shop.test/c", second)]
    assert await history_rows(conn) == [
        (first, "[1]", "added", None, {"lang": "en", "name": "two", "price": 2.0}),
        (second, "[1]", "changed", {"lang": "en", "name": "two", "price": 2.0},
         {"lang": "en", "name": "four", "price": 4.0}),
    ]  # fmt: skip


async def test_workers_upserting_one_key_at_once_take_turns(conn: asyncpg.Connection, pg_url: str) -> None:
    spec = shop()
    await prepare_targets(conn, spec.targets)
    first, second = await new_run(conn, spec), await new_run(conn, spec)
    other = await asyncpg.connect(pg_url, timeout=10)
    try:
        record = {"id": 1, "lang": "en", "name": "a", "price": 1.0}
        transaction = conn.transaction()
        await transaction.start()
        await RecordWriter(spec, first).write(conn, [(outcome("products", "https://x.test/a", [record]), 1)])
        # Another worker's batch with the same key waits for this one's commit, then sees it.
        later = asyncio.ensure_future(
            write(other, RecordWriter(spec, second), outcome("products", "https://x.test/b", [{**record, "name": "b"}]))
        )
        await asyncio.sleep(0.5)
        assert not later.done()
        await transaction.commit()
        await asyncio.wait_for(later, 10)
    finally:
        await other.close(timeout=10)

    assert [(run, change, old, new) for run, _, change, old, new in await history_rows(conn)] == [
        (first, "added", None, {"lang": "en", "name": "a", "price": 1.0}),
        (second, "changed", {"lang": "en", "name": "a", "price": 1.0}, {"lang": "en", "name": "b", "price": 1.0}),
    ]


async def test_an_upsert_key_of_every_field_type(conn: asyncpg.Connection) -> None:
    spec = typed("upsert", "key: [day, seen, active, name]")
    await prepare_targets(conn, spec.targets)
    run_id = await new_run(conn, spec)
    writer = RecordWriter(spec, run_id)
    record = {"id": 1, "name": "n", "price": 1.0, "active": True, "day": "2024-01-01",
              "seen": "2024-01-01T02:00:00+02:00", "meta": None, "tags": None, "raw": None}  # fmt: skip
    await write(conn, writer, outcome("items", "https://x.test/", [record]))
    # The same instant, written with another offset: the same key.
    await write(
        conn, writer, outcome("items", "https://x.test/", [{**record, "seen": "2024-01-01T00:00:00Z", "id": 2}])
    )

    assert await rows(conn, "SELECT id FROM items") == [(2,)]
    assert [(key, change) for _, key, change, _, _ in await history_rows(conn, "_crawlrunner_history_items")] == [
        ('["2024-01-01","2024-01-01T02:00:00+02:00",1,"n"]', "added"),
        ('["2024-01-01","2024-01-01T00:00:00Z",1,"n"]', "changed"),
    ]


async def test_an_upsert_target_with_many_fields(conn: asyncpg.Connection) -> None:
    names = [f"f{i}" for i in range(120)]  # jsonb_build_object takes 100 arguments at most
    fields = ", ".join(f"{n}: {{jmespath: {n}, type: int}}" for n in names)
    spec = spec_of(
        f"name: wide\ntargets:\n  - name: wide\n    url: https://x.test/\n    mode: upsert\n    key: [f0]\n"
        f"    extract: {{fields: {{{fields}}}}}\n"
    )
    await prepare_targets(conn, spec.targets)
    run_id = await new_run(conn, spec)
    writer = RecordWriter(spec, run_id)
    await write(conn, writer, outcome("wide", "https://x.test/", [{n: i for i, n in enumerate(names)}]))
    await write(conn, writer, outcome("wide", "https://x.test/", [{**{n: i for i, n in enumerate(names)}, "f119": 0}]))

    ((_, _, _, old, new),) = [r for r in await history_rows(conn, "_crawlrunner_history_wide") if r[2] == "changed"]
    assert len(new) == 119 and old["f119"] == 119 and new["f119"] == 0 and new["f1"] == 1


async def test_a_304_keeps_the_rows_of_its_url_as_this_runs(conn: asyncpg.Connection) -> None:
    spec = spec_of("""
name: cond
targets:
  - {name: kept, url: "https://x.test/k", mode: replace, conditional: true, extract: {fields: {id: id}}}
  - {name: logged, url: "https://x.test/l", mode: append, conditional: true, extract: {fields: {id: id}}}
""")
    await prepare_targets(conn, spec.targets)
    first, second = await new_run(conn, spec), await new_run(conn, spec)
    await write(
        conn, RecordWriter(spec, first),
        outcome("kept", "https://x.test/k", [{"id": "a"}]), outcome("kept", "https://x.test/other", [{"id": "b"}]),
        outcome("logged", "https://x.test/l", [{"id": "c"}]),
    )  # fmt: skip
    await write(
        conn, RecordWriter(spec, second),
        outcome("kept", "https://x.test/k", status=304), outcome("logged", "https://x.test/l", status=304),
    )  # fmt: skip

    assert await rows(conn, "SELECT id, _run_id FROM kept ORDER BY id") == [("a", second), ("b", first)]
    assert await rows(conn, "SELECT id, _run_id FROM logged") == [("c", first)]  # append: a log, kept as it was


async def test_validators_are_kept_per_url_with_secrets_as_references(conn: asyncpg.Connection) -> None:
    spec = spec_of(
        """
name: cond
targets:
  - name: pages
    url: "https://x.test/p?key=${env.TOKEN}"
    conditional: true
    extract: {fields: {id: id}}
  - {name: plain, url: "https://x.test/q", extract: {fields: {id: id}}}
""",
        {"TOKEN": TOKEN},
    )
    await prepare_targets(conn, spec.targets)
    first, second = await new_run(conn, spec), await new_run(conn, spec)
    url = f"https://x.test/p?key={TOKEN}"
    await write(
        conn, RecordWriter(spec, first),
        outcome("pages", url, headers={"ETag": '"v1"'}),
        outcome("pages", "https://x.test/none"),  # no validators: nothing kept
        outcome("pages", "https://x.test/failed", headers={"ETag": '"x"'}, failed=True),
        outcome("plain", "https://x.test/q", headers={"ETag": '"q"'}),  # not conditional
    )  # fmt: skip
    await write(
        conn, RecordWriter(spec, second),
        outcome("pages", url, headers={"ETag": '"v2"', "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}),
        outcome("pages", url, headers={"ETag": '"v3"'}),  # the same URL twice in a batch: the last wins
    )  # fmt: skip

    stored = await rows(conn, "SELECT target, url, etag, last_modified, run_id FROM _crawlrunner_validators")
    reference = spec.redactor.tokenize(url)
    assert TOKEN not in reference
    assert stored == [("pages", reference, '"v3"', None, second)]
    assert await validators(conn, spec.targets) == {("pages", reference): ('"v3"', None)}
    assert await validators(conn, [spec.target("plain")]) == {}


async def test_bodies_round_trip_compressed_with_secrets_masked(conn: asyncpg.Connection) -> None:
    spec = spec_of(
        """
name: bodies
targets:
  - name: pages
    url: "https://x.test/p?key=${env.TOKEN}"
    store_bodies: true
    extract: {fields: {id: id}}
""",
        {"TOKEN": TOKEN},
    )
    await prepare_targets(conn, spec.targets)
    run_id = await new_run(conn, spec)
    url = f"https://x.test/p?key={TOKEN}"
    body = f"<html>echo {TOKEN} and é</html>".encode()
    stamp = "2024-05-06T07:08:09.123+00:00"
    ids = await write(
        conn, RecordWriter(spec, run_id),
        outcome("pages", url, body=body, fetched_at=stamp),
        outcome("pages", url, status=304),  # nothing to keep
        outcome("pages", url, body=b"down", failed=True),  # nor of a failure
    )  # fmt: skip

    stored = await rows(
        conn,
        "SELECT fetch_id, run_id, target, url, final_url, status, content_type, charset, fetched_at, body FROM _crawlrunner_bodies",
    )
    assert len(stored) == 1
    fetch_id, stored_run, target, stored_url, final_url, status, content_type, charset, fetched_at, blob = stored[0]
    assert (fetch_id, stored_run, target, status, content_type, charset) == (
        ids[0],
        run_id,
        "pages",
        200,
        "text/html",
        "utf-8",
    )
    assert stored_url == final_url == spec.redactor.tokenize(url) and TOKEN not in stored_url
    assert fetched_at == datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    assert zlib.decompress(blob) == f"<html>echo {MASK} and é</html>".encode()


async def test_secrets_are_masked_in_records_and_urls(conn: asyncpg.Connection) -> None:
    spec = spec_of(
        """
name: secret
targets:
  - name: items
    url: "https://x.test/p?key=${env.TOKEN}"
    mode: upsert
    key: [id]
    extract:
      fields:
        id: id
        text: {jmespath: text, type: str}
        doc: {jmespath: doc, type: json}
        list: {jmespath: list, many: true}
        number: {jmespath: number, type: int}
""",
        {"TOKEN": TOKEN},
    )
    await prepare_targets(conn, spec.targets)
    run_id = await new_run(conn, spec)
    record = {
        "id": f"id-{TOKEN}", "text": f"says {TOKEN}", "doc": {"k": TOKEN, TOKEN: 1}, "list": [TOKEN, "x"], "number": 5,
    }  # fmt: skip
    await write(conn, RecordWriter(spec, run_id), outcome("items", f"https://x.test/p?key={TOKEN}", [record]))

    ((row,),) = await rows(conn, "SELECT row_to_json(items)::text FROM items")
    assert TOKEN not in row
    assert await rows(conn, "SELECT id, text, doc, list, number, _url FROM items") == [(
        f"id-{MASK}", f"says {MASK}", f'{{"k": "{MASK}", "{MASK}": 1}}', f'["{MASK}", "x"]', 5,
        f"https://x.test/p?key={MASK}",
    )]  # fmt: skip
    ((key, new),) = await rows(conn, "SELECT key, new::text FROM _crawlrunner_history_items")
    assert key == f'["id-{MASK}"]' and TOKEN not in new


async def test_a_secret_inside_a_json_number_is_masked_and_the_json_stays_valid(conn: asyncpg.Connection) -> None:
    spec = spec_of(
        """
name: pin
http: {headers: {X-Pin: "${env.PIN}"}}
targets:
  - name: items
    url: "https://x.test/"
    extract: {fields: {doc: {jmespath: doc, type: json}, raw: raw, big: {jmespath: big, many: true}}}
""",
        {"PIN": "987654"},
    )
    await prepare_targets(conn, spec.targets)
    run_id = await new_run(conn, spec)
    record = {"doc": {"account": 19876543, "note": "pin 987654"}, "raw": {"n": 987654}, "big": [2**70 * 10**6 + 987654]}
    await write(conn, RecordWriter(spec, run_id), outcome("items", "https://x.test/", [record]))

    ((doc, raw, big),) = await rows(conn, "SELECT doc, raw, big FROM items")
    assert json.loads(doc) == {"account": f"1{MASK}3", "note": f"pin {MASK}"}
    assert raw == f'{{"n": {MASK}}}'  # text, as SQLite keeps it
    assert json.loads(big) == [f"{2**70}{MASK}"]


async def test_nul_characters_are_replaced_where_postgres_cannot_keep_them(conn: asyncpg.Connection) -> None:
    spec = typed()
    await prepare_targets(conn, spec.targets)
    run_id = await new_run(conn, spec)
    record = {"id": 1, "name": "a\x00b", "price": None, "active": None, "day": None, "seen": None,
              "meta": {"k\x00": "v\x00"}, "tags": ["\x00"], "raw": "r\x00"}  # fmt: skip
    await write(conn, RecordWriter(spec, run_id), outcome("items", "https://x.test/", [record]))

    r = NUL_REPLACEMENT
    assert await rows(conn, "SELECT name, meta->>$1, tags->>0, raw FROM items", f"k{r}") == [
        (f"a{r}b", f"v{r}", r, f"r{r}"),
    ]


async def test_a_missing_table_is_a_storage_error(conn: asyncpg.Connection) -> None:
    spec = typed()
    run_id = await new_run(conn, spec)
    with pytest.raises(StorageError, match="not prepared"):
        await write(conn, RecordWriter(spec, run_id), outcome("items", "https://x.test/", [{"id": 1}]))


# --- after the run -----------------------------------------------------------


async def test_a_completed_run_empties_its_replace_targets_of_older_rows(conn: asyncpg.Connection) -> None:
    spec = spec_of("""
name: modes
targets:
  - {name: fresh, url: "https://x.test/f", mode: replace, extract: {fields: {id: id}}}
  - {name: log, url: "https://x.test/l", mode: append, extract: {fields: {id: id}}}
""")
    await prepare_targets(conn, spec.targets)
    first, second = await new_run(conn, spec), await new_run(conn, spec)
    for run_id in (first, second):
        await write(
            conn, RecordWriter(spec, run_id),
            outcome("fresh", "https://x.test/f", [{"id": str(run_id)}]),
            outcome("log", "https://x.test/l", [{"id": str(run_id)}]),
        )  # fmt: skip
    async with conn.transaction():
        await finish_completed(conn, second, spec.targets)

    assert await rows(conn, "SELECT _run_id FROM fresh") == [(second,)]
    assert await rows(conn, "SELECT _run_id FROM log ORDER BY 1") == [(first,), (second,)]


async def test_target_facts_count_records_requests_failures_and_empty_fields(
    conn: asyncpg.Connection, pg_url: str
) -> None:
    spec = spec_of("""
name: facts
targets:
  - name: items
    url: "https://x.test/"
    extract: {fields: {id: id, name: name, price: {jmespath: price, type: float}}}
    expect: {min_records: 1, not_null: [name, price]}
  - {name: other, url: "https://x.test/o", extract: {fields: {id: id}}}
""")
    await prepare_targets(conn, spec.targets)
    earlier, run_id, nothing = await new_run(conn, spec), await new_run(conn, spec), await new_run(conn, spec)
    await write(
        conn,
        RecordWriter(spec, earlier),
        outcome("items", "https://x.test/0", [{"id": "x", "name": None, "price": None}]),
    )
    await write(
        conn, RecordWriter(spec, run_id),
        outcome("items", "https://x.test/1", [{"id": "a", "name": "A", "price": None}, {"id": "b", "name": None, "price": None}]),
        outcome("items", "https://x.test/2", [{"id": "c", "name": "C", "price": 1.0}]),
        outcome("items", "https://x.test/3", failed=True),
        outcome("other", "https://x.test/o", [{"id": "o"}]),
    )  # fmt: skip

    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=2)
    try:
        db = PostgresFacts(pool, "test")
        facts, other = (await health.run_facts(db, run_id, spec.targets, spec.name)).values()
        (none,) = (await health.run_facts(db, nothing, [spec.target("items")], spec.name)).values()
    finally:
        await pool.close()
    assert (facts.records, facts.requests, facts.failed) == (3, 3, 1)
    assert dict(facts.nulls) == {"id": 0, "name": 1, "price": 2}
    assert (facts.documents, facts.empty_documents, facts.previous) == (0, 0, None)  # rows written without items
    assert (other.records, other.requests, other.failed, dict(other.nulls)) == (1, 1, 0, {"id": 0})
    assert (none.records, none.requests, none.failed, dict(none.nulls)) == (0, 0, 0, {"id": 0, "name": 0, "price": 0})


async def test_naive_fetch_times_are_utc(conn: asyncpg.Connection) -> None:
    spec = typed()
    await prepare_targets(conn, spec.targets)
    run_id = await new_run(conn, spec)
    await write(
        conn,
        RecordWriter(spec, run_id),
        outcome("items", "https://x.test/", [{"id": 1}], fetched_at="2024-01-01T12:00:00"),
    )
    await write(
        conn, RecordWriter(spec, run_id),
        outcome("items", "https://x.test/", [{"id": 2}], fetched_at="2024-01-01T12:00:00+01:00"),
    )  # fmt: skip

    assert await rows(conn, "SELECT _fetched_at FROM items ORDER BY id") == [
        (datetime(2024, 1, 1, 12, tzinfo=UTC),),
        (datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=1))),),
    ]
