"""PostgreSQL layout 5: a database made by the release before it is upgraded once, and every command works on it.

The layout-4 database is ``pg_layout4.sql``: what that release's CLI made
(see its header), loaded into a new database.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from crawlrunner.backends.postgres.backend import PostgresBackend
from crawlrunner.backends.postgres.schema import LAYOUT_VERSION
from crawlrunner.backends.postgres.tables import history_name, object_name
from crawlrunner.cli import main

from .. import server_app
from ..conftest import NO_ASYNCPG, postgres_unavailable

try:
    import asyncpg
except ImportError:
    postgres_unavailable(NO_ASYNCPG)

pytestmark = pytest.mark.timeout(120)

LAYOUT_4 = Path(__file__).with_name("pg_layout4.sql")

SPEC = """
name: shop
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
        price: {{jmespath: price, type: float}}
        tags: {{jmespath: tags, many: true}}
"""


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(sql, timeout=30)
    finally:
        await conn.close(timeout=10)


async def _fetch(url: str, sql: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return [tuple(r) for r in await conn.fetch(sql, timeout=10)]
    finally:
        await conn.close(timeout=10)


def fetch(url: str, sql: str) -> list[tuple[object, ...]]:
    return asyncio.run(_fetch(url, sql))


@pytest.fixture
def layout4(pg_url: str) -> str:
    """A new database holding what the layout-4 release made."""
    asyncio.run(_execute(pg_url, LAYOUT_4.read_text(encoding="utf-8")))
    return pg_url


def _ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


RELATIONS = "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY relname"
COLUMNS = (
    "SELECT attname FROM pg_attribute WHERE attrelid = 'public.products'::regclass AND attnum > 0"
    " AND NOT attisdropped ORDER BY attnum"
)
PRIMARY_KEY = (
    "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'public.products'::regclass AND contype = 'p'"
)


async def test_a_layout_4_database_is_upgraded_once_with_every_relation_under_the_prefix(
    layout4: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    before = await _fetch(layout4, "SELECT id, name, price, tags, _run_id, _removed_run FROM products ORDER BY id")

    async with PostgresBackend.open(layout4):
        pass
    async with PostgresBackend.open(layout4):  # already upgraded: nothing to do
        pass

    assert caplog.text.count("upgrading the database layout from version 4 to 5") == 1
    assert await _fetch(layout4, "SELECT version FROM _crawlrunner_layout ORDER BY version") == [
        (4,),
        (LAYOUT_VERSION,),
    ]
    relations = [name for (name,) in await _fetch(layout4, RELATIONS)]
    ours = [n for n in relations if not n.startswith(("products", "visits", "_products_", "_visits_", "lll", "_lll"))]
    assert all(n.startswith("_crawlrunner_") for n in ours), ours
    for name in ("runs", "runs_pkey", "runs_id_seq", "lease_tokens", "hosts_cooling", "_products_history"):
        assert name not in relations and f"_crawlrunner_{name}" in relations or name == "_products_history"
    assert {"_crawlrunner_history_products", "_crawlrunner_history_products_run"} <= set(relations)
    assert {"_crawlrunner_history_products_pkey", "_crawlrunner_history_products_id_seq"} <= set(relations)
    assert "_products_key_id" not in relations  # the key is the primary key now

    # Fields first, then provenance, then upsert's columns; the rows as they were.
    assert [c for (c,) in await _fetch(layout4, COLUMNS)] == [
        "id", "name", "price", "tags", "_run_id", "_url", "_fetched_at",
        "_first_seen_run", "_first_seen_at", "_changed_run", "_changed_at", "_removed_run",
    ]  # fmt: skip
    assert await _fetch(layout4, PRIMARY_KEY) == [("PRIMARY KEY (id)",)]
    constraints = "SELECT conname FROM pg_constraint WHERE conrelid = 'public.products'::regclass ORDER BY conname"
    assert await _fetch(layout4, constraints) == [("_products_pkey",), ("products__run_id_fkey",)]
    assert (
        await _fetch(layout4, "SELECT id, name, price, tags, _run_id, _removed_run FROM products ORDER BY id") == before
    )
    assert [c for (c,) in await _fetch(layout4, COLUMNS.replace("products", "visits"))][:2] == ["page", "hits"]
    history = await _fetch(layout4, "SELECT id, run_id, key, change FROM _crawlrunner_history_products ORDER BY id")
    assert [row[3] for row in history] == ["added", "added", "added", "changed", "removed"]

    # A target whose name PostgreSQL would cut short: its history found under its shortened old name.
    long = "l" * 63
    history_long = history_name(long)
    assert history_long in relations and object_name(f"_{long}_history") not in relations
    assert await _fetch(layout4, f"SELECT count(*) FROM {history_long}") == [(5,)]
    assert await _fetch(layout4, PRIMARY_KEY.replace("public.products", long)) == [("PRIMARY KEY (id)",)]
    assert max(len(n) for n in relations) <= 63


def test_every_command_works_on_a_layout_4_database(layout4: str, server: str, cli: CliRunner, tmp_path: Path) -> None:
    # A read command first: it upgrades the database, as a run would.
    runs = [json.loads(line) for line in _ok(cli.invoke(main, ["runs", layout4, "-f", "jsonl"])).splitlines()]
    assert [(r["id"], r["status"], r["records"]) for r in runs] == [(1, "completed", 5), (2, "completed", 6)]
    assert fetch(layout4, "SELECT max(version) FROM _crawlrunner_layout") == [(LAYOUT_VERSION,)]
    exported = [json.loads(line) for line in _ok(cli.invoke(main, ["export", layout4, "products"])).splitlines()]
    assert sorted((r["id"], r["name"], r["tags"]) for r in exported) == [
        (1, "kettle XL", ["a", "b"]), (2, "lamp", None), (3, "mug", None),
    ]  # fmt: skip
    changes = _ok(cli.invoke(main, ["changes", layout4, "products", "-f", "jsonl"])).splitlines()
    assert [json.loads(line)["change"] for line in changes] == ["added", "changed", "removed"]
    queried = _ok(cli.invoke(main, ["query", layout4, "SELECT count(*) AS n FROM visits", "-f", "csv"]))
    assert queried.splitlines() == ["n", "3"]

    server_app.catalogues["layout4"] = {1: ("kettle XL", 12.0), 2: ("lamp", 21.0), 4: ("cup", 3.0)}
    spec = tmp_path / "shop.yaml"
    spec.write_text(SPEC.format(base=server, key="layout4"), encoding="utf-8")
    _ok(cli.invoke(main, ["run", str(spec), "-o", layout4]))
    assert fetch(layout4, "SELECT id, name, price, _run_id, _removed_run FROM products ORDER BY id") == [
        (1, "kettle XL", 12.0, 3, None),
        (2, "lamp", 21.0, 3, None),  # back, and changed
        (3, "mug", 5.0, 2, 3),
        (4, "cup", 3.0, 3, None),
    ]
    changes = _ok(cli.invoke(main, ["changes", layout4, "products", "-f", "jsonl"])).splitlines()
    assert sorted(json.loads(line)["change"] for line in changes) == ["added", "changed", "removed", "restored"]

    # --resume picks up the run where it was left (here: marked interrupted, nothing left to fetch).
    asyncio.run(_execute(layout4, "UPDATE _crawlrunner_runs SET status = 'interrupted' WHERE id = 3"))
    _ok(cli.invoke(main, ["run", str(spec), "-o", layout4, "--resume"]))
    assert fetch(layout4, "SELECT id, status, resumed FROM _crawlrunner_runs ORDER BY id") == [
        (1, "completed", 0),
        (2, "completed", 0),
        (3, "completed", 1),
    ]


async def test_a_key_with_null_parts_stored_stays_a_unique_index(
    layout4: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Layouts 1 to 4 stored them (key fields were not required yet): no primary key can hold them.
    await _execute(
        layout4, "INSERT INTO products (_run_id, _url, _fetched_at, id, name) VALUES (2, 'u', now(), NULL, 'x')"
    )

    async with PostgresBackend.open(layout4):
        pass

    assert "its key stays a unique index" in caplog.text
    assert await _fetch(layout4, PRIMARY_KEY) == []
    assert await _fetch(layout4, "SELECT count(*) FROM products") == [(4,)]
    indexes = await _fetch(layout4, "SELECT indexdef FROM pg_indexes WHERE indexname = '_products_key_id'")
    assert indexes == [("CREATE UNIQUE INDEX _products_key_id ON public.products USING btree (id) NULLS NOT DISTINCT",)]


async def test_workers_starting_together_on_a_layout_4_database_upgrade_it_once(
    layout4: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)

    async def open_once() -> None:
        async with PostgresBackend.open(layout4):
            pass

    await asyncio.gather(*(open_once() for _ in range(3)))

    assert caplog.text.count("upgrading the database layout from version 4 to 5") == 1
    assert await _fetch(layout4, "SELECT version FROM _crawlrunner_layout ORDER BY version") == [
        (4,),
        (LAYOUT_VERSION,),
    ]


async def test_a_users_view_on_a_target_table_survives_the_upgrade(
    layout4: str, caplog: pytest.LogCaptureFixture
) -> None:
    # DROP TABLE would refuse (and CASCADE would drop the view): the table keeps its columns' order instead.
    await _execute(layout4, "CREATE VIEW cheap AS SELECT id, name FROM products WHERE price < 50")
    before = await _fetch(layout4, "SELECT * FROM cheap ORDER BY id")
    caplog.set_level(logging.WARNING)

    async with PostgresBackend.open(layout4):
        pass

    assert "products: a view depends on it" in caplog.text
    assert await _fetch(layout4, "SELECT * FROM cheap ORDER BY id") == before
    assert await _fetch(layout4, PRIMARY_KEY) == [("PRIMARY KEY (id)",)]
    assert await _fetch(layout4, "SELECT to_regclass('_products_key_id') IS NULL") == [(True,)]
    assert await _fetch(layout4, "SELECT count(*) FROM _crawlrunner_runs") == [(2,)]
