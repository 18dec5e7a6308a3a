"""A real run: test server on 127.0.0.1 → engine → a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from crawlrunner.api import run_async
from crawlrunner.backends.sqlite.schema import SCHEMA_VERSION
from crawlrunner.errors import StorageError
from crawlrunner.spec import load_spec

from .. import server_app
from ..conftest import query

JSON_SPEC = """
name: items
http:
  base_url: {base}
targets:
  - name: listing
    urls: ["/json/list/1?size=5", "/json/list/2?size=5"]
    extract:
      records: items
      fields:
        id: {{jmespath: id, type: int}}
        name: name
        price: {{jmespath: price, type: float}}
        tags: {{jmespath: tags, type: json}}
  - name: item
    urls: [/json/item/1, /json/item/2]
    extract:
      fields:
        id: id
        active: {{jmespath: active, type: bool}}
"""


async def test_json_records_land_in_typed_columns(server: str, write_spec: Callable[..., Path], db_path: Path) -> None:
    spec = load_spec(write_spec(JSON_SPEC, base=server))
    result = await run_async(spec, output=db_path)

    assert result.ok and result.status == "completed"
    rows = query(db_path, "SELECT id, name, price, tags, typeof(price) FROM listing ORDER BY id")
    assert [r[0] for r in rows] == list(range(1, 11))
    assert rows[0][1:] == ("item 1", 1.5, '["t", "1"]', "real")
    assert query(db_path, "SELECT id, active FROM item ORDER BY id") == [(1, 0), (2, 1)]
    declared = {row[1]: row[2] for row in query(db_path, "PRAGMA table_info(listing)")}
    assert declared == {
        "_run_id": "INTEGER", "_url": "TEXT", "_fetched_at": "TEXT",
        "id": "INTEGER", "name": "TEXT", "price": "REAL", "tags": "TEXT",  # untyped: read off its values
    }  # fmt: skip
    assert [row[1] for row in query(db_path, "PRAGMA table_info(listing)")][:4] == ["id", "name", "price", "tags"]


async def test_provenance_runs_row_and_fetch_log(server: str, write_spec: Callable[..., Path], db_path: Path) -> None:
    spec = load_spec(write_spec(JSON_SPEC, base=server))
    result = await run_async(spec, output=db_path)

    urls = {r[0] for r in query(db_path, "SELECT DISTINCT _url FROM listing WHERE _run_id = ?", result.run_id)}
    assert urls == {f"{server}/json/list/1?size=5", f"{server}/json/list/2?size=5"}
    run = query(
        db_path,
        "SELECT spec_name, status, requests, ok, failed, records, finished_at IS NOT NULL FROM _crawlrunner_runs",
    )
    assert run == [("items", "completed", 4, 4, 0, 12, 1)]
    log = query(
        db_path, "SELECT target, method, status, records, attempts, error_kind FROM _crawlrunner_fetch_log ORDER BY id"
    )
    assert sorted(log) == sorted([("listing", "GET", 200, 5, 1, None)] * 2 + [("item", "GET", 200, 1, 1, None)] * 2)
    assert all(b > 0 and ms >= 0 for b, ms in query(db_path, "SELECT bytes, elapsed_ms FROM _crawlrunner_fetch_log"))


async def test_second_run_appends_and_keeps_runs_apart(
    server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    spec = load_spec(write_spec(JSON_SPEC, base=server))
    first = await run_async(spec, output=db_path)
    second = await run_async(spec, output=db_path)

    assert second.run_id == first.run_id + 1
    counts = query(db_path, "SELECT _run_id, count(*) FROM listing GROUP BY _run_id ORDER BY _run_id")
    assert counts == [(first.run_id, 10), (second.run_id, 10)]


async def test_html_extraction_with_css_and_xpath(server: str, write_spec: Callable[..., Path], db_path: Path) -> None:
    spec = load_spec(
        write_spec(
            """
name: pages
http: {{base_url: "{base}"}}
targets:
  - name: page
    urls: [/html/1, /html/2]
    extract:
      format: html
      fields:
        title: h1
        price: {{css: "p.price::attr(data-value)", type: float}}
        head_title: {{xpath: "//title/text()"}}
  - name: rows
    url: /html/7
    extract:
      format: html
      records: li.row
      fields:
        n: {{css: "::attr(data-n)", type: int}}
        label: a::text
        href: {{xpath: ".//a/@href"}}
""",
            base=server,
        )
    )
    result = await run_async(spec, output=db_path)

    assert result.ok
    assert query(db_path, "SELECT title, price, head_title FROM page ORDER BY price") == [
        ("Page 1", 1.25, "Page 1"),
        ("Page 2", 2.25, "Page 2"),
    ]
    assert query(db_path, "SELECT n, label, href FROM rows ORDER BY n") == [
        (0, "Row 0", "/html/0"),
        (1, "Row 1", "/html/1"),
        (2, "Row 2", "/html/2"),
    ]


async def test_failed_requests_are_recorded_and_the_run_goes_on(
    server: str, closed_port: int, write_spec: Callable[..., Path], db_path: Path
) -> None:
    spec = load_spec(
        write_spec(
            """
name: failures
http:
  base_url: "{base}"
  timeout: {{total: 0.5}}
  max_body_bytes: 1000
  retry: null
targets:
  - name: mixed
    urls:
      - /json/item/1
      - /status/404
      - /status/503
      - /slow/failures-timeout/5
      - /big/5000
      - http://127.0.0.1:{port}/nothing-listens-here
      - /json/item/2
    extract:
      fields: {{id: id}}
""",
            base=server,
            port=closed_port,
        )
    )
    result = await run_async(spec, output=db_path)

    assert not result.ok and result.status == "completed"
    assert result.totals.ok == 2 and result.totals.failed == 5
    kinds = dict(query(db_path, "SELECT url, error_kind FROM _crawlrunner_fetch_log"))
    assert kinds == {
        f"{server}/json/item/1": None,
        f"{server}/status/404": "http_status",
        f"{server}/status/503": "http_status",
        f"{server}/slow/failures-timeout/5": "timeout",
        f"{server}/big/5000": "body_too_large",
        f"http://127.0.0.1:{closed_port}/nothing-listens-here": "connect_error",
        f"{server}/json/item/2": None,
    }
    assert query(db_path, "SELECT status, error FROM _crawlrunner_fetch_log WHERE url LIKE '%/status/404'") == [
        (404, "HTTP 404 Not Found")
    ]
    assert query(db_path, "SELECT id FROM mixed ORDER BY id") == [(1,), (2,)]
    assert query(db_path, "SELECT ok, failed FROM _crawlrunner_runs") == [(2, 5)]


async def test_connection_limit_bounds_requests_in_flight(
    server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    urls = "\n".join(f"      - /slow/limit-total/0.05?n={i}" for i in range(24))
    spec = load_spec(
        write_spec(
            f"""
name: limits
http:
  base_url: "{server}"
  limits: {{connections: 3, per_host: 0}}
targets:
  - name: slow
    urls:
{urls}
"""
        )
    )
    result = await run_async(spec, output=db_path)

    assert result.ok
    assert server_app.hits["limit-total"] == 24
    assert 2 <= server_app.peak_in_flight["limit-total"] <= 3


async def test_per_host_limit_bounds_one_host(server: str, write_spec: Callable[..., Path], db_path: Path) -> None:
    urls = "\n".join(f"      - /slow/limit-host/0.05?n={i}" for i in range(12))
    spec = load_spec(
        write_spec(
            f"""
name: limits
http:
  base_url: "{server}"
  limits: {{connections: 10, per_host: 2}}
targets:
  - name: slow
    urls:
{urls}
"""
        )
    )
    await run_async(spec, output=db_path)

    assert server_app.peak_in_flight["limit-host"] == 2


async def test_method_headers_params_and_json_body_are_sent(
    server: str, write_spec: Callable[..., Path], db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CR_TEST_TOKEN", "tok-3141592653")
    spec = load_spec(
        write_spec(
            """
name: echo
http:
  base_url: "{base}"
  headers: {{X-Run: run-wide, X-Both: run-wide}}
targets:
  - name: sent
    url: /echo
    method: POST
    headers: {{X-Both: target, Authorization: "Bearer ${{env.CR_TEST_TOKEN}}"}}
    params: {{q: shoes, page: 2, fresh: true}}
    json: {{filter: {{colour: red}}}}
    extract:
      fields:
        method: method
        query: {{jmespath: query, type: json}}
        run_header: '"headers"."X-Run"'
        both_header: '"headers"."X-Both"'
        user_agent: '"headers"."User-Agent"'
        content_type: '"headers"."Content-Type"'
        body: body
""",
            base=server,
        )
    )
    result = await run_async(spec, output=db_path)

    assert result.ok
    row = query(
        db_path, "SELECT method, query, run_header, both_header, user_agent, content_type, body, _url FROM sent"
    )[0]
    assert row[:6] == (
        "POST", '{"fresh": "true", "page": "2", "q": "shoes"}', "run-wide", "target",
        row[4], "application/json",
    )  # fmt: skip
    assert row[4].startswith("crawlrunner/")
    assert row[6] == '{"filter": {"colour": "red"}}'
    assert row[7] == f"{server}/echo?q=shoes&page=2&fresh=true"


async def test_secret_from_environment_never_reaches_the_database(
    server: str, write_spec: Callable[..., Path], db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = "canary-7d1f0c9e5b"
    monkeypatch.setenv("CR_API_KEY", canary)
    spec = load_spec(
        write_spec(
            """
name: secret
http: {{base_url: "{base}"}}
targets:
  - name: keyed
    urls: ["/json/item/1?api_key=${{env.CR_API_KEY}}", "/status/500?api_key=${{env.CR_API_KEY}}"]
    extract:
      fields: {{id: id}}
""",
            base=server,
        )
    )
    await run_async(spec, output=db_path)

    logged = [r[0] for r in query(db_path, "SELECT url FROM _crawlrunner_fetch_log ORDER BY id")]
    assert sorted(logged) == sorted([f"{server}/json/item/1?api_key=***", f"{server}/status/500?api_key=***"])
    for path in db_path.parent.glob("out.db*"):
        assert canary.encode() not in path.read_bytes(), path


async def test_identifiers_that_are_sql_keywords_are_quoted(
    server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    spec = load_spec(
        write_spec(
            """
name: keywords
http: {{base_url: "{base}"}}
targets:
  - name: select
    url: /json/item/4
    extract:
      fields: {{order: id, group: name, "from": active}}
""",
            base=server,
        )
    )
    await run_async(spec, output=db_path)

    assert query(db_path, 'SELECT "order", "group", "from" FROM "select"') == [(4, "item 4", 1)]


async def test_database_is_in_wal_mode_and_consistent(
    server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    await run_async(load_spec(write_spec(JSON_SPEC, base=server)), output=db_path)

    assert query(db_path, "PRAGMA journal_mode") == [("wal",)]
    assert query(db_path, "PRAGMA integrity_check") == [("ok",)]
    assert query(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


async def test_a_new_field_adds_a_column_to_an_existing_table(
    server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    before = "name: grow\nhttp: {{base_url: '{base}'}}\ntargets:\n  - name: item\n    url: /json/item/1\n    extract:\n      fields: {{id: id}}\n"
    await run_async(load_spec(write_spec(before, base=server)), output=db_path)
    after = before.replace("{{id: id}}", "{{id: id, name: name}}")
    await run_async(load_spec(write_spec(after, base=server)), output=db_path)

    assert query(db_path, "SELECT id, name FROM item ORDER BY _run_id") == [(1, None), (1, "item 1")]


async def test_refuses_to_overwrite_a_file_that_is_not_sqlite(
    server: str, write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    precious = tmp_path / "notes.db"
    precious.write_text("my notes, not a database\n")

    with pytest.raises(StorageError, match="not an SQLite database"):
        await run_async(load_spec(write_spec(JSON_SPEC, base=server)), output=precious)
    assert precious.read_text() == "my notes, not a database\n"


async def test_cancelled_run_commits_what_was_fetched_and_is_marked_interrupted(
    server: str, write_spec: Callable[..., Path], db_path: Path
) -> None:
    fast = "\n".join(f"      - /json/item/{i}" for i in range(1, 6))
    slow = "\n".join(f"      - /slow/cancel/30?n={i}" for i in range(4))
    spec = load_spec(
        write_spec(
            f"""
name: cancel
http:
  base_url: "{server}"
  limits: {{connections: 4}}
targets:
  - name: quick
    urls:
{fast}
    extract:
      fields: {{id: id}}
  - name: stuck
    urls:
{slow}
"""
        )
    )
    task = asyncio.create_task(run_async(spec, output=db_path))
    async with asyncio.timeout(10):
        while server_app.in_flight["cancel"] < 4:
            await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert query(db_path, "SELECT status, requests, records FROM _crawlrunner_runs") == [("interrupted", 5, 5)]
    assert query(db_path, "SELECT count(*) FROM quick") == [(5,)]
    assert query(db_path, "PRAGMA integrity_check") == [("ok",)]
    with sqlite3.connect(db_path) as conn:  # nothing is left holding a write lock
        conn.execute("BEGIN IMMEDIATE")
        conn.rollback()


def test_unknown_target_names_raise_a_crawlrunner_error_naming_the_known_ones(
    write_spec: Callable[..., Path], db_path: Path
) -> None:
    import crawlrunner
    from crawlrunner.errors import UnknownTargetError, UsageError

    spec = load_spec(write_spec(JSON_SPEC, base="http://127.0.0.1:9"))
    for call in (crawlrunner.run, crawlrunner.api.reextract):
        with pytest.raises(UnknownTargetError) as caught:
            call(spec, output=db_path, only=["listing", "nope", "nada"])
        assert isinstance(caught.value, UsageError) and isinstance(caught.value, KeyError)
        assert str(caught.value) == "no target named 'nope', 'nada' in the spec (targets: listing, item)"
    assert not db_path.exists()  # refused before anything was opened
