"""Keys a completed crawl no longer sees are recorded as removed, on SQLite and PostgreSQL.

A small shop whose list pages change between runs: run 1 stores a, b and c,
run 2 no longer sees b (a 'removed' history row, ``_removed_run`` set, the
row kept), run 3 sees b again ('restored', the mark cleared). A run that
may have missed keys records no removal: a failed page, a run limited by
``--max-requests``, an interrupted one, a retry of failures.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import zlib
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

import crawlrunner
from crawlrunner.api import reextract_async, run_async
from crawlrunner.cli import main
from crawlrunner.spec import load_spec, load_spec_text

from ..conftest import ThreadedServer, query

pytestmark = pytest.mark.timeout(120)

A, B, C = ("a", 1, "anvil"), ("b", 2, "bucket"), ("c", 3, "crate")


class Shop:
    """The site's state, changed by a test between runs: items per list page, pages that fail."""

    def __init__(self) -> None:
        self.pages: dict[int, list[tuple[str, int, str]]] = {1: [A, B], 2: [C]}
        self.failing: set[int] = set()
        self.requested: Callable[[int], None] | None = None

    async def list_page(self, request: web.Request) -> web.Response:
        page = int(request.match_info["page"])
        if self.requested is not None:
            self.requested(page)
        if page in self.failing:
            return web.Response(status=500, text="down")
        items = [{"sku": sku, "n": n, "name": name} for sku, n, name in self.pages.get(page, [])]
        etag = f'"{zlib.crc32(json.dumps(items).encode())}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.json_response({"items": items}, headers={"ETag": etag})


@pytest.fixture
def shop() -> Iterator[tuple[Shop, str]]:
    state = Shop()
    app = web.Application()
    app.router.add_get("/list/{page}", state.list_page)
    with ThreadedServer(app) as running:
        yield state, running.url


# The key mixes a string and an untyped number: its history text ("["b",2]")
# is made from the record, which the PostgreSQL layout stores as text.
SPEC = """
name: shop
http: {{base_url: "{base}", retry: null, limits: {{connections: 1}}}}
targets:
  - name: items
    url: /list/{{page}}
    vars: {{page: {{from: 1, to: 2}}}}
    mode: upsert
    key: [sku, n]
    extract:
      records: items
      fields: {{sku: sku, n: n, name: name}}
"""


def _history(db: Path) -> list[tuple[Any, ...]]:
    return query(db, "SELECT run_id, key, change, old, new FROM _crawlrunner_history_items ORDER BY id")


def _marks(db: Path) -> list[tuple[Any, ...]]:
    return query(db, "SELECT sku, _run_id, _removed_run FROM items ORDER BY sku")


async def test_a_key_no_longer_seen_is_removed_then_restored_when_it_comes_back(
    shop: tuple[Shop, str], write_spec: Callable[..., Path], db_path: Path, cli: CliRunner
) -> None:
    site, base = shop
    spec = load_spec(write_spec(SPEC, base=base))
    first = await run_async(spec, output=db_path)
    site.pages[1] = [A]
    second = await run_async(spec, output=db_path)

    assert second.status == "completed"
    assert _marks(db_path) == [
        ("a", second.run_id, None),
        ("b", first.run_id, second.run_id),  # kept, marked
        ("c", second.run_id, None),
    ]
    ((at, finished),) = query(
        db_path, "SELECT h.at, r.finished_at FROM _crawlrunner_history_items AS h, _crawlrunner_runs AS r WHERE h.change = 'removed' AND r.id = ?",
        second.run_id,
    )  # fmt: skip
    assert at == finished
    assert _history(db_path)[3:] == [(second.run_id, '["b",2]', "removed", '{"name":"bucket"}', None)]

    # `changes` shows it, in every format.
    table = cli.invoke(main, ["changes", str(db_path), "items"])
    assert table.exit_code == 0, table.output
    assert "removed" in table.stdout and '["b",2]' in table.stdout
    lines = cli.invoke(main, ["changes", str(db_path), "items", "-f", "jsonl"]).stdout.splitlines()
    assert [(r["run_id"], r["change"], r["key"], r["old"], r["new"]) for r in map(json.loads, lines)] == [
        (second.run_id, "removed", ["b", 2], {"name": "bucket"}, None)
    ]

    # Not seen again: not removed again.
    third = await run_async(spec, output=db_path)
    assert [r for r in _history(db_path) if r[0] == third.run_id] == []
    assert _marks(db_path)[1] == ("b", first.run_id, second.run_id)

    site.pages[1] = [A, ("b", 2, "big bucket")]
    fourth = await run_async(spec, output=db_path)

    assert _marks(db_path)[1] == ("b", fourth.run_id, None)
    assert [r for r in _history(db_path) if r[0] == fourth.run_id] == [
        (fourth.run_id, '["b",2]', "restored", '{"name":"bucket"}', '{"name":"big bucket"}')
    ]
    lines = cli.invoke(main, ["changes", str(db_path), "items", "-f", "jsonl"]).stdout.splitlines()
    assert [json.loads(line)["change"] for line in lines] == ["restored"]
    # And once more gone: removed again (the mark was cleared).
    site.pages[1] = [A]
    fifth = await run_async(spec, output=db_path)
    assert _marks(db_path)[1] == ("b", fourth.run_id, fifth.run_id)
    assert [r[2] for r in _history(db_path) if r[0] == fifth.run_id] == ["removed"]


async def test_a_run_with_a_failed_page_records_no_removal(
    shop: tuple[Shop, str], write_spec: Callable[..., Path], db_path: Path
) -> None:
    site, base = shop
    spec = load_spec(write_spec(SPEC, base=base))
    await run_async(spec, output=db_path)
    site.pages[1] = [A]
    site.failing = {2}  # c's page fails; b is gone from the page that worked
    second = await run_async(spec, output=db_path)

    assert second.status == "completed" and second.failed_by_target == {"items": 1}
    assert [mark for _, _, mark in _marks(db_path)] == [None, None, None]
    assert [r[2] for r in _history(db_path)] == ["added", "added", "added"]

    # A retry of the failure sees c, but is no crawl of the whole site: still nothing removed.
    site.failing = set()
    retry = await run_async(spec, output=db_path, retry_failed=True)
    assert retry.status == "completed"
    assert [mark for _, _, mark in _marks(db_path)] == [None, None, None]
    assert "removed" not in [r[2] for r in _history(db_path)]


async def test_a_limited_or_interrupted_run_records_no_removal(
    shop: tuple[Shop, str], write_spec: Callable[..., Path], db_path: Path
) -> None:
    site, base = shop
    spec = load_spec(write_spec(SPEC, base=base))
    await run_async(spec, output=db_path)
    site.pages[1] = [A]

    limited = await run_async(spec, output=db_path, max_requests=1)
    assert limited.status == "limited"
    assert [mark for _, _, mark in _marks(db_path)] == [None, None, None]

    # Stopped while the last page is being fetched: every page seen, and still not a completed crawl.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    site.requested = lambda page: loop.call_soon_threadsafe(stop.set) if page == 2 else None
    interrupted = await run_async(spec, output=db_path, stop=stop)
    assert interrupted.status == "interrupted"
    assert [mark for _, _, mark in _marks(db_path)] == [None, None, None]
    assert "removed" not in [r[2] for r in _history(db_path)]


async def test_a_run_that_stores_no_record_of_a_target_records_no_removal(
    shop: tuple[Shop, str], write_spec: Callable[..., Path], db_path: Path
) -> None:
    site, base = shop
    spec = load_spec(write_spec(SPEC, base=base))
    await run_async(spec, output=db_path)
    site.pages = {1: [], 2: []}  # more likely a broken page than a shop with nothing left
    second = await run_async(spec, output=db_path)

    assert second.status == "completed"
    assert [mark for _, _, mark in _marks(db_path)] == [None, None, None]


async def test_reextraction_removes_keys_its_rules_no_longer_extract(
    shop: tuple[Shop, str], write_spec: Callable[..., Path], db_path: Path
) -> None:
    _, base = shop
    kept = SPEC.replace("    mode: upsert\n", "    mode: upsert\n    store_bodies: true\n")
    await run_async(load_spec(write_spec(kept, base=base)), output=db_path)
    # Rules that drop b (its name starts with "b"), re-applied to the stored pages.
    dropping = kept.replace("      records: items\n", "      records: \"items[?!starts_with(name, 'b')]\"\n")
    result = await reextract_async(load_spec(write_spec(dropping, base=base)), output=db_path)

    assert result.status == "reextracted"
    assert query(db_path, "SELECT sku, _removed_run FROM items WHERE _removed_run IS NOT NULL") == [
        ("b", result.run_id)
    ]
    assert [(r[1], r[2]) for r in _history(db_path) if r[0] == result.run_id] == [('["b",2]', "removed")]


# How the release before this one created an upsert target's tables (the
# target of SPEC): no _removed_run column.
PREVIOUS_DDL = """
CREATE TABLE "items" (
    "_run_id" INTEGER NOT NULL REFERENCES _crawlrunner_runs(id),
    "_url" TEXT NOT NULL,
    "_fetched_at" TEXT NOT NULL,
    "_first_seen_run" INTEGER,
    "_first_seen_at" TEXT,
    "_changed_run" INTEGER,
    "_changed_at" TEXT,
    "sku",
    "n",
    "name"
);
CREATE INDEX "_items_run_id" ON "items" (_run_id);
CREATE INDEX "_items_url" ON "items" (_url);
CREATE UNIQUE INDEX "_items_key_sku_n" ON "items" ("sku", "n");
CREATE TABLE "_crawlrunner_history_items" (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES _crawlrunner_runs(id),
    key TEXT NOT NULL,
    change TEXT NOT NULL,
    old TEXT,
    new TEXT,
    at TEXT NOT NULL
);
CREATE INDEX "_items_history_run" ON "_crawlrunner_history_items" (run_id);
INSERT INTO _crawlrunner_runs (id, spec_name, spec_file, spec_hash, started_at, finished_at, status)
    VALUES (1, 'shop', 'spec.yaml', 'h', '2026-01-01T00:00:00+00:00', '2026-01-01T00:01:00+00:00', 'completed');
INSERT INTO items VALUES
    (1, '{base}/list/1', '2026-01-01T00:00:01+00:00', 1, '2026-01-01T00:00:01+00:00', 1, '2026-01-01T00:00:01+00:00',
     'a', 1, 'anvil'),
    (1, '{base}/list/1', '2026-01-01T00:00:01+00:00', 1, '2026-01-01T00:00:01+00:00', 1, '2026-01-01T00:00:01+00:00',
     'b', 2, 'bucket');
INSERT INTO _crawlrunner_history_items (run_id, key, change, old, new, at) VALUES
    (1, '["a",1]', 'added', NULL, '{{"name":"anvil"}}', '2026-01-01T00:00:01+00:00'),
    (1, '["b",2]', 'added', NULL, '{{"name":"bucket"}}', '2026-01-01T00:00:01+00:00');
"""


async def test_an_upsert_table_of_the_previous_layout_gets_the_column_and_is_read_as_it_is(
    shop: tuple[Shop, str], write_spec: Callable[..., Path], db_path: Path, cli: CliRunner
) -> None:
    from crawlrunner.backends.sqlite.store import Store

    site, base = shop
    async with Store.open(db_path):  # crawlrunner's own tables, at this release's layout
        pass
    with closing(sqlite3.connect(db_path)) as conn, conn:
        conn.executescript(PREVIOUS_DDL.format(base=base))

    # Every read command works on it before any run of this release opened it.
    assert cli.invoke(main, ["changes", str(db_path), "items", "-f", "csv"]).stdout.count("added") == 2
    assert cli.invoke(main, ["export", str(db_path), "items", "-f", "csv"]).exit_code == 0
    assert [row["sku"] for row in crawlrunner.export(db_path, "items").records()] == ["a", "b"]

    site.pages = {1: [A], 2: [C]}
    run = await run_async(load_spec(write_spec(SPEC, base=base)), output=db_path)

    assert "_removed_run" in [row[1] for row in query(db_path, "PRAGMA table_info(items)")]
    assert _marks(db_path) == [("a", run.run_id, None), ("b", 1, run.run_id), ("c", run.run_id, None)]
    assert [(r[1], r[2]) for r in _history(db_path) if r[0] == run.run_id] == [
        ('["c",3]', "added"),
        ('["b",2]', "removed"),
    ]


# PostgreSQL: the same core scenario, through the same library calls and CLI.


def test_removed_and_restored_keys_on_postgresql(shop: tuple[Shop, str], pg_url: str, cli: CliRunner) -> None:
    site, base = shop
    spec = load_spec_text(SPEC.format(base=base))

    def history() -> list[tuple[Any, ...]]:
        return list(
            crawlrunner.query(
                pg_url, "SELECT run_id, key, change, old::text, new::text FROM _crawlrunner_history_items ORDER BY id"
            )
        )

    def marks() -> list[tuple[Any, ...]]:
        return list(crawlrunner.query(pg_url, "SELECT sku, _run_id, _removed_run FROM items ORDER BY sku"))

    first = crawlrunner.run(spec, output=pg_url)
    site.pages[1] = [A]
    site.failing = {2}
    failed = crawlrunner.run(spec, output=pg_url)
    assert failed.status == "completed" and failed.failed_by_target == {"items": 1}
    assert [mark for _, _, mark in marks()] == [None, None, None]

    site.failing = set()
    second = crawlrunner.run(spec, output=pg_url)
    assert marks() == [("a", second.run_id, None), ("b", first.run_id, second.run_id), ("c", second.run_id, None)]
    assert [r for r in history() if r[0] == second.run_id] == [
        (second.run_id, '["b",2]', "removed", '{"name": "bucket"}', None)
    ]
    ((at, finished),) = crawlrunner.query(
        pg_url, "SELECT h.at, r.finished_at FROM _crawlrunner_history_items AS h, _crawlrunner_runs AS r WHERE h.change = 'removed' AND r.id = $1",
        [second.run_id],
    )  # fmt: skip
    assert at == finished
    lines = cli.invoke(main, ["changes", pg_url, "items", "-f", "jsonl"]).stdout.splitlines()
    assert [(r["change"], r["key"]) for r in map(json.loads, lines)] == [("removed", ["b", 2])]

    third = crawlrunner.run(spec, output=pg_url)  # still gone: not removed again
    assert [r for r in history() if r[0] == third.run_id] == []

    site.pages[1] = [A, B]
    fourth = crawlrunner.run(spec, output=pg_url)
    assert marks()[1] == ("b", fourth.run_id, None)
    assert [r for r in history() if r[0] == fourth.run_id] == [
        (fourth.run_id, '["b",2]', "restored", '{"name": "bucket"}', '{"name": "bucket"}')
    ]


def test_an_upsert_table_without_the_column_gets_it_on_postgresql(shop: tuple[Shop, str], pg_url: str) -> None:
    from crawlrunner import runtime

    site, base = shop
    spec = load_spec_text(SPEC.format(base=base))
    first = crawlrunner.run(spec, output=pg_url)

    async def drop_column() -> None:  # as the release before this one made the table
        import asyncpg

        conn = await asyncpg.connect(pg_url, timeout=10)
        try:
            await conn.execute("ALTER TABLE items DROP COLUMN _removed_run")
        finally:
            await conn.close(timeout=10)

    runtime.run(drop_column())
    assert [row[1] for row in crawlrunner.changes(pg_url, "items", since=0)] == ["added"] * 3

    site.pages[1] = [A]
    second = crawlrunner.run(spec, output=pg_url)
    assert list(crawlrunner.query(pg_url, "SELECT sku, _removed_run FROM items WHERE _removed_run IS NOT NULL")) == [
        ("b", second.run_id)
    ]
    assert [(r[0], r[1], r[2]) for r in crawlrunner.changes(pg_url, "items", since=first.run_id)] == [
        (second.run_id, "removed", ["b", 2])
    ]


def test_a_target_whose_parent_missed_pages_records_no_removal() -> None:
    from crawlrunner.backends.removals import RunGaps, removal_targets

    spec = load_spec_text("""
name: tree
targets:
  - {name: lists, url: "https://x.test/", mode: upsert, key: [id], extract: {fields: {id: id}}}
  - {name: items, parent: lists, url: "https://x.test/{id}", mode: upsert, key: [id], extract: {fields: {id: id}}}
  - {name: pages, url: "https://x.test/p", extract: {fields: {id: id}}}
""")

    def recording(gaps: RunGaps) -> list[str]:
        return [t.name for t in removal_targets(spec.targets, gaps)]

    assert recording(RunGaps()) == ["lists", "items"]  # an append target records none
    assert recording(RunGaps(failed=frozenset({"lists"}))) == []  # the parent's failed page hides children
    assert recording(RunGaps(failed=frozenset({"items"}))) == ["lists"]
    assert recording(RunGaps(skipped=frozenset({"lists"}))) == []  # robots.txt kept a page from being sent
    assert recording(RunGaps(truncated=frozenset({"lists"}))) == []  # max_pages or a loop cut a chain short
    assert recording(RunGaps(truncated=frozenset({"items"}))) == ["lists"]
    assert recording(RunGaps(unfollowed=frozenset({"lists"}))) == []  # follow.max_pages left links out
    assert recording(RunGaps(unfollowed=frozenset({"items"}))) == ["lists"]
    assert recording(RunGaps(empty=frozenset({"items"}))) == ["lists"]
    assert recording(RunGaps(failed=frozenset({"pages"}))) == ["lists", "items"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_unchanged_page_does_not_count_a_removed_key_as_seen(
    shop: tuple[Shop, str], tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    state, base = shop
    output = str(tmp_path / "c.db") if backend == "sqlite" else request.getfixturevalue("pg_url")
    spec = load_spec_text(
        SPEC.format(base=base).replace("    mode: upsert\n", "    mode: upsert\n    conditional: true\n")
    )
    crawlrunner.run(spec, output=output)
    state.pages[1] = [A]  # b is gone from page 1, page 2 is unchanged (304)
    second = crawlrunner.run(spec, output=output)
    third = crawlrunner.run(spec, output=output)  # both pages unchanged: 304s keep a and c

    rows = crawlrunner.query(output, "SELECT sku, _run_id, _removed_run FROM items ORDER BY sku").rows
    assert [tuple(r) for r in rows] == [
        ("a", third.run_id, None), ("b", 1, second.run_id), ("c", third.run_id, None),
    ]  # fmt: skip
    assert third.facts["items"].records == 2
