"""Incremental sync against a local API that answers "what changed since": the cursor, run after run.

The API filters orders by the ``since`` it is sent (as instants, offsets
and all) and records every value it was asked with, so each test says what
a run sent: ``initial`` first, then the largest value a completed run
stored minus ``lag``; never a value from a run that was cut short, whose
request failed, or that is being resumed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

import crawlrunner
from crawlrunner.api import run_async
from crawlrunner.cli import main
from crawlrunner.spec import load_spec

from ..conftest import ThreadedServer, query

Spec = Callable[..., Path]


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass
class Asked:
    path: str
    since: Any


@dataclass
class Shop:
    """Orders per customer (and region), served as "changed since"; what each request asked is kept."""

    orders: list[dict[str, Any]] = field(default_factory=list)
    customers: list[int] = field(default_factory=list)
    asked: list[Asked] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)  # query strings (page=2) answering 500
    per_page: int = 0  # 0: one page
    delay: float = 0.0  # seconds each /api/orders answer takes
    after: bool = False  # "changed after" (strictly) rather than "since"

    def add(self, order_id: int, updated_at: str, *, customer: int = 0, region: str = "eu", seq: int = 0) -> None:
        """An order: a customer's (``customer``), or of a region's (``region``, without a customer)."""
        region = "" if customer else region
        self.orders.append(
            {"id": order_id, "updated_at": updated_at, "customer": customer, "region": region, "seq": seq}
        )

    def since(self, path: str) -> list[Any]:
        return [a.since for a in self.asked if a.path == path]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/orders", self.all_orders)
        app.router.add_get("/api/customers", self.customer_list)
        app.router.add_get("/api/customers/{id}/orders", self.customer_orders)
        app.router.add_post("/api/events", self.events)
        return app

    def _changed(self, since: str, **match: Any) -> list[dict[str, Any]]:
        return [
            o
            for o in self.orders
            if all(o[k] == v for k, v in match.items()) and self._newer(_instant(o["updated_at"]), _instant(since))
        ]

    def _newer(self, changed: datetime, since: datetime) -> bool:
        return changed > since if self.after else changed >= since

    async def all_orders(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay)
        since = request.query["updated_since"]
        page = int(request.query.get("page", "1"))
        if page == 1:
            self.asked.append(Asked(request.path, since))
        if f"page={page}" in self.failing:
            return web.Response(status=500)
        region = request.query.get("region")
        found = self._changed(since, customer=0, **({"region": region} if region else {}))
        if not self.per_page:
            return web.json_response({"orders": found})
        shown = found[(page - 1) * self.per_page : page * self.per_page]
        more = len(found) > page * self.per_page
        following = f"{request.path}?{request.query_string.split('&page=')[0]}&page={page + 1}" if more else None
        return web.json_response({"orders": shown, "next": following})

    async def customer_list(self, request: web.Request) -> web.Response:
        return web.json_response([{"id": c} for c in self.customers])

    async def customer_orders(self, request: web.Request) -> web.Response:
        since = request.query["since"]
        self.asked.append(Asked(request.path, since))
        return web.json_response(self._changed(since, customer=int(request.match_info["id"])))

    async def events(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.asked.append(Asked("body", body["after"]))
        self.asked.append(Asked("header", request.headers["X-After"]))
        return web.json_response([o for o in self.orders if o["seq"] > body["after"]])


@pytest.fixture
def shop() -> Iterator[tuple[Shop, str]]:
    api = Shop()
    with ThreadedServer(api.app()) as running:
        yield api, running.url


ORDERS = """
name: sync
http: {{base_url: "{base}", retry: null}}
targets:
  - name: orders
    url: /api/orders
    params: {{updated_since: "{{incremental}}"}}
    incremental: {{cursor: updated_at, initial: "2024-01-01T00:00:00Z", lag: {lag}}}
    mode: upsert
    key: [id]
    extract:
      records: orders
      fields:
        id: {{jmespath: id, type: int}}
        updated_at: {{jmespath: updated_at, type: datetime}}
"""


def _cursor_rows(db: Path) -> list[tuple[object, ...]]:
    return query(db, "SELECT run_id, target, scope, value FROM _crawlrunner_cursors ORDER BY run_id, target, scope")


async def test_the_first_run_sends_initial_and_the_next_the_largest_value_minus_lag(
    shop: tuple[Shop, str], write_spec: Spec, db_path: Path
) -> None:
    api, base = shop
    api.add(1, "2024-03-01T00:00:00Z")
    api.add(2, "2024-05-01T10:00:00Z")
    api.add(3, "2024-04-01T00:00:00Z")
    spec = load_spec(write_spec(ORDERS, base=base, lag=3600))

    first = await run_async(spec, output=db_path)
    api.add(4, "2024-05-02T08:00:00Z")
    second = await run_async(spec, output=db_path)

    assert first.ok and second.ok
    assert api.since("/api/orders") == ["2024-01-01T00:00:00Z", "2024-05-01T09:00:00Z"]
    # Run 2 got only what changed since (the lag overlaps the last hour: order 2 again).
    assert query(db_path, "SELECT id FROM orders WHERE _run_id = ? ORDER BY id", second.run_id) == [(2,), (4,)]
    assert _cursor_rows(db_path) == [
        (first.run_id, "orders", "", '"2024-05-01T10:00:00+00:00"'),
        (second.run_id, "orders", "", '"2024-05-02T08:00:00+00:00"'),
    ]


async def test_records_an_incremental_run_did_not_ask_for_are_not_removed(
    shop: tuple[Shop, str], write_spec: Spec, db_path: Path
) -> None:
    api, base = shop
    api.add(1, "2024-03-01T00:00:00Z")
    api.add(2, "2024-05-01T10:00:00Z")
    spec = load_spec(write_spec(ORDERS, base=base, lag=0))

    await run_async(spec, output=db_path)
    api.add(3, "2024-05-02T08:00:00Z")
    second = await run_async(spec, output=db_path)

    # Run 2 asked only for what changed: orders 1 and 2 are unchanged, not gone.
    assert second.ok and api.since("/api/orders")[-1] == "2024-05-01T10:00:00Z"
    assert query(db_path, "SELECT id, _removed_run FROM orders ORDER BY id") == [(1, None), (2, None), (3, None)]
    assert query(db_path, "SELECT count(*) FROM _crawlrunner_history_orders WHERE change = 'removed'") == [(0,)]


async def test_date_times_with_different_offsets_compare_as_instants(
    shop: tuple[Shop, str], write_spec: Spec, db_path: Path
) -> None:
    api, base = shop
    api.add(1, "2024-05-01T12:00:00+02:00")  # 10:00 UTC: the larger text, the earlier instant
    api.add(2, "2024-05-01T11:00:00+00:00")
    api.add(3, "2024-05-01T06:30:00-04:00")  # 10:30 UTC
    spec = load_spec(write_spec(ORDERS, base=base, lag=0))

    await run_async(spec, output=db_path)
    await run_async(spec, output=db_path)

    # Written back in initial's style: UTC as "Z".
    assert api.since("/api/orders") == ["2024-01-01T00:00:00Z", "2024-05-01T11:00:00Z"]


REGIONS = """
name: sync
http: {{base_url: "{base}", retry: null, limits: {{connections: 1}}}}
targets:
  - name: orders
    url: /api/orders
    vars: {{region: [eu, us]}}
    params: {{region: "{{region}}", updated_since: "{{incremental}}"}}
    incremental: {{cursor: updated_at, initial: "2024-01-01T00:00:00Z", lag: 60}}
    mode: upsert
    key: [id]
    extract:
      records: orders
      fields:
        id: {{jmespath: id, type: int}}
        updated_at: {{jmespath: updated_at, type: datetime}}
"""


async def test_a_run_cut_short_leaves_the_cursor_and_its_resume_keeps_the_old_value(
    shop: tuple[Shop, str], write_spec: Spec, db_path: Path
) -> None:
    api, base = shop
    api.add(1, "2024-05-01T10:00:00Z", region="eu")
    api.add(2, "2024-05-01T11:00:00Z", region="us")
    spec = load_spec(write_spec(REGIONS, base=base))
    assert (await run_async(spec, output=db_path)).status == "completed"  # the cursor: 11:00
    api.add(3, "2024-06-01T00:00:00Z", region="eu")
    api.add(4, "2024-06-02T00:00:00Z", region="us")

    cut = await run_async(spec, output=db_path, max_requests=1)  # eu only: it stores 06-01
    assert cut.status == "limited"
    assert (cut.run_id, "orders", "", '"2024-06-01T00:00:00+00:00"') in _cursor_rows(db_path)
    resumed = await run_async(spec, output=db_path, resume=True)
    assert resumed.status == "completed" and resumed.run_id == cut.run_id
    after = await run_async(spec, output=db_path)

    assert api.since("/api/orders") == [
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:00:00Z",
        "2024-05-01T10:59:00Z",  # the cut run: from run 1
        "2024-05-01T10:59:00Z",  # its resume: the same, though the cut run had stored more
        "2024-06-01T23:59:00Z",  # once it completed, from what it stored
        "2024-06-01T23:59:00Z",
    ]
    assert after.status == "completed"


def test_a_failed_request_keeps_its_runs_cursor_where_it_was(
    shop: tuple[Shop, str], write_spec: Spec, db_path: Path, cli: CliRunner
) -> None:
    api, base = shop
    api.per_page = 2
    for i, day in enumerate(["01", "02", "03"], 1):
        api.add(i, f"2024-05-{day}T00:00:00Z")
    text = ORDERS.replace("    mode: upsert", "    paginate: {{type: next_url, next: next}}\n    mode: upsert")
    spec = write_spec(text, base=base, lag=0)
    assert cli.invoke(main, ["run", str(spec), "-o", str(db_path)]).exit_code == 0
    api.add(4, "2024-06-01T00:00:00Z")
    api.add(5, "2024-06-02T00:00:00Z")
    api.add(6, "2024-06-03T00:00:00Z")
    api.failing = {"page=2"}  # 06-03 is on page 2 now: never seen, and older ones may hide there

    failed = cli.invoke(main, ["run", str(spec), "-o", str(db_path)])
    api.failing = set()
    cli.invoke(main, ["run", str(spec), "-o", str(db_path)])

    assert failed.exit_code == 1  # completed, with a failed request
    assert api.since("/api/orders") == ["2024-01-01T00:00:00Z", "2024-05-03T00:00:00Z", "2024-05-03T00:00:00Z"]
    assert query(db_path, "SELECT run_id, value FROM _crawlrunner_cursors WHERE run_id = 2") == [(2, "null")]


def test_a_chain_cut_at_max_pages_keeps_its_runs_cursor_where_it_was(
    shop: tuple[Shop, str], write_spec: Spec, db_path: Path, cli: CliRunner
) -> None:
    api, base = shop
    api.per_page = 1
    for i, day in enumerate(["01", "02", "03"], 1):
        api.add(i, f"2024-05-{day}T00:00:00Z")
    text = ORDERS.replace(
        "    mode: upsert", "    paginate: {{type: next_url, next: next, max_pages: 2}}\n    mode: upsert"
    )
    spec = write_spec(text, base=base, lag=0)

    cli.invoke(main, ["run", str(spec), "-o", str(db_path)])
    cli.invoke(main, ["run", str(spec), "-o", str(db_path)])

    # Run 1 read 2 of 3 pages (the third, unread, may hold older changes): run 2 asks from the start again.
    assert api.since("/api/orders") == ["2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"]
    assert query(db_path, "SELECT run_id, value FROM _crawlrunner_cursors WHERE run_id = 1") == [(1, "null")]


CHILDREN = """
name: sync
http: {{base_url: "{base}", retry: null}}
targets:
  - name: customers
    url: /api/customers
    extract: {{fields: {{id: {{jmespath: id, type: int}}}}, records: "@"}}
  - name: customer_orders
    parent: customers
    url: /api/customers/{{id}}/orders?since={{incremental}}
    incremental: {{cursor: updated_at, initial: "2024-01-01", lag: 86400}}
    mode: upsert
    key: [id]
    extract:
      records: "@"
      fields:
        id: {{jmespath: id, type: int}}
        customer: {{parent: id}}
        updated_at: {{jmespath: updated_at, type: date}}
"""


async def test_a_child_target_keeps_a_cursor_per_parent_record(
    shop: tuple[Shop, str], write_spec: Spec, db_path: Path
) -> None:
    api, base = shop
    api.customers = [1, 2]
    api.add(1, "2024-05-10", customer=1)
    api.add(2, "2024-03-01", customer=2)
    spec = load_spec(write_spec(CHILDREN, base=base))

    first = await run_async(spec, output=db_path)
    api.customers = [1, 2, 3]
    api.add(3, "2024-05-20", customer=1)
    second = await run_async(spec, output=db_path)

    assert first.ok and second.ok
    asked = {a.path: [] for a in api.asked}
    for a in api.asked:
        asked[a.path].append(a.since)
    assert asked == {
        "/api/customers/1/orders": ["2024-01-01", "2024-05-09"],  # a date cursor goes back whole days
        "/api/customers/2/orders": ["2024-01-01", "2024-02-29"],
        "/api/customers/3/orders": ["2024-01-01"],  # a new parent: initial
    }
    assert query(
        db_path, "SELECT scope, value FROM _crawlrunner_cursors WHERE run_id = ? ORDER BY scope", second.run_id
    ) == [
        ('{"id":1}', '"2024-05-20"'),
        ('{"id":2}', '"2024-03-01"'),
    ]


EVENTS = """
name: events
http: {{base_url: "{base}", retry: null}}
targets:
  - name: events
    url: /api/events
    method: POST
    headers: {{X-After: "{{incremental}}"}}
    json: {{after: "{{incremental}}"}}
    incremental: {{cursor: seq, initial: 0, lag: 2}}
    extract: {{records: "@", fields: {{id: id, seq: {{jmespath: seq, type: int}}}}}}
"""


async def test_headers_and_json_bodies_carry_the_cursor_a_json_value_keeping_its_type(
    shop: tuple[Shop, str], write_spec: Spec, db_path: Path
) -> None:
    api, base = shop
    for seq in (3, 7, 5):
        api.add(seq, "2024-01-01T00:00:00Z", seq=seq)
    spec = load_spec(write_spec(EVENTS, base=base))

    await run_async(spec, output=db_path)
    await run_async(spec, output=db_path)

    assert api.since("body") == [0, 5]  # numbers stay numbers
    assert api.since("header") == ["0", "5"]


def _plan(cli: CliRunner, *args: str) -> list[str]:
    result = cli.invoke(main, ["plan", *args])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_plan_shows_the_value_the_next_run_would_use(
    shop: tuple[Shop, str], write_spec: Spec, tmp_path: Path, cli: CliRunner
) -> None:
    api, base = shop
    api.add(1, "2024-05-01T10:00:00Z")
    api.add(2, "2024-05-10", customer=1)
    api.customers = [1]
    text = ORDERS.format(base=base, lag=3600)
    children = CHILDREN.split("targets:\n", 1)[1].format()
    database = tmp_path / "sync.db"
    spec = write_spec(text.replace("name: sync", f"name: sync\noutput: {database}") + children)

    before = _plan(cli, str(spec))
    assert cli.invoke(main, ["run", str(spec)]).exit_code == 0
    after = _plan(cli, str(spec))

    assert "orders: incremental updated_since = 2024-01-01T00:00:00Z (initial: no completed run yet)" in before
    assert f"  GET {base}/api/orders?updated_since=2024-01-01T00%3A00%3A00Z" in before
    assert (
        "customer_orders: incremental url = 2024-01-01 for each parent record (initial: no completed run yet)" in before
    )
    assert "orders: incremental updated_since = 2024-05-01T09:00:00Z (from run 1, lag 3600 s)" in after
    assert f"  GET {base}/api/orders?updated_since=2024-05-01T09%3A00%3A00Z" in after
    assert (
        "customer_orders: incremental url: per parent record, 1 from completed runs (the latest run 1, lag 86400 s);"
        " others 2024-01-01 (initial)"
    ) in after
    other = cli.invoke(main, ["run", str(spec), "--dry-run", "-o", str(tmp_path / "x.db")]).output
    assert "orders: incremental updated_since = 2024-01-01T00:00:00Z (initial: no completed run yet)" in other
    assert not (tmp_path / "x.db").exists()  # plan reads, never makes a database


def test_plan_says_unknown_when_the_database_cannot_be_read(write_spec: Spec, cli: CliRunner, closed_port: int) -> None:
    text = ORDERS.replace("name: sync", f"name: sync\noutput: postgresql://crawl@127.0.0.1:{closed_port}/crawls")
    spec = write_spec(text, base="http://127.0.0.1:1", lag=0)

    (line,) = [line for line in _plan(cli, str(spec)) if "incremental" in line]

    assert line.startswith("orders: incremental updated_since = unknown: ")
    assert line.endswith("(initial: 2024-01-01T00:00:00Z)")


def test_the_cursor_moves_between_completed_runs_on_postgresql(
    shop: tuple[Shop, str], write_spec: Spec, pg_url: str, cli: CliRunner
) -> None:
    api, base = shop
    api.add(1, "2024-05-01T10:00:00Z", region="eu")
    api.add(2, "2024-05-01T12:00:00+02:00", region="us")
    api.customers = [1, 2]
    api.add(10, "2024-05-10", customer=1)
    children = CHILDREN.split("targets:\n", 1)[1]
    spec = str(write_spec(REGIONS + children, base=base))

    def run(*args: str) -> int:
        return cli.invoke(main, ["run", spec, "-o", pg_url, *args]).exit_code

    assert run() == 0
    api.add(3, "2024-06-01T00:00:00Z", region="eu")
    api.add(11, "2024-06-10", customer=2)
    assert run("--max-requests", "1") == 0  # limited: eu's orders only
    assert run("--resume") == 0
    assert run() == 0

    assert api.since("/api/orders") == [
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:00:00Z",
        "2024-05-01T09:59:00Z",  # the cut run, from run 1 (10:00Z is later than 12:00+02:00)
        "2024-05-01T09:59:00Z",  # its resume
        "2024-05-31T23:59:00Z",
        "2024-05-31T23:59:00Z",
    ]
    assert api.since("/api/customers/1/orders") == ["2024-01-01", "2024-05-09", "2024-05-09"]
    assert api.since("/api/customers/2/orders") == ["2024-01-01", "2024-01-01", "2024-06-09"]
    plan = _plan(cli, str(write_spec(REGIONS.replace("name: sync", f"name: sync\noutput: {pg_url}"), base=base)))
    assert "orders: incremental updated_since = 2024-05-31T23:59:00Z (from run 3, lag 60 s)" in plan
    rows = crawlrunner.query(
        pg_url, "SELECT run_id, target, scope, value FROM _crawlrunner_cursors ORDER BY run_id, target, scope"
    )
    assert list(rows) == [
        (1, "customer_orders", '{"id":1}', '"2024-05-10"'),
        (1, "orders", "", '"2024-05-01T10:00:00+00:00"'),
        (2, "customer_orders", '{"id":1}', '"2024-05-10"'),  # within the lag: asked again
        (2, "customer_orders", '{"id":2}', '"2024-06-10"'),
        (2, "orders", "", '"2024-06-01T00:00:00+00:00"'),
        (3, "customer_orders", '{"id":1}', '"2024-05-10"'),
        (3, "customer_orders", '{"id":2}', '"2024-06-10"'),
        (3, "orders", "", '"2024-06-01T00:00:00+00:00"'),
    ]


async def test_the_workers_of_a_shared_run_agree_on_its_cursor(
    shop: tuple[Shop, str], write_spec: Spec, pg_url: str
) -> None:
    api, base = shop
    api.delay = 0.05  # long enough for both workers to take requests
    regions = [f"r{n}" for n in range(1, 13)]
    for n, region in enumerate(regions, 1):
        api.add(n, f"2024-05-{n:02d}T00:00:00Z", region=region)
    spec = load_spec(write_spec(REGIONS.replace("[eu, us]", f"[{', '.join(regions)}]"), base=base))

    # Two workers at once: the second joins the run the first opened, and both
    # write the run's one cursor for the target.
    first = await asyncio.gather(run_async(spec, output=pg_url), run_async(spec, output=pg_url))
    api.asked.clear()
    second = await asyncio.gather(run_async(spec, output=pg_url), run_async(spec, output=pg_url))

    assert [r.run_id for r in first] == [1, 1] and [r.run_id for r in second] == [2, 2]
    assert all(r.status == "completed" for r in first + second)
    assert list(
        crawlrunner.query(pg_url, "SELECT count(DISTINCT worker_id) FROM _crawlrunner_fetch_log WHERE run_id = 1")
    ) == [(2,)]
    assert list(
        crawlrunner.query(pg_url, "SELECT run_id, scope, value FROM _crawlrunner_cursors WHERE run_id = 1")
    ) == [(1, "", '"2024-05-12T00:00:00+00:00"')]
    assert api.since("/api/orders") == ["2024-05-11T23:59:00Z"] * 12  # every worker sent the same value


async def test_a_304_parent_leads_to_its_incremental_childs_requests_with_this_runs_cursor(
    write_spec: Spec, db_path: Path
) -> None:
    asked: list[str] = []

    async def parents(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304, headers={"ETag": '"v1"'})
        return web.json_response({"items": [{"id": 1}]}, headers={"ETag": '"v1"'})

    async def child(request: web.Request) -> web.Response:
        asked.append(request.query["since"])
        return web.json_response({"items": [{"u": 5 * len(asked)}]})

    app = web.Application()
    app.router.add_get("/parents", parents)
    app.router.add_get("/c/{id}", child)
    with ThreadedServer(app) as server:
        spec = load_spec(
            write_spec(
                "name: ri\nhttp: {{base_url: '{base}', retry: null}}\ntargets:\n"
                "  - {{name: parents, url: /parents, conditional: true,"
                " extract: {{records: items, fields: {{id: {{jmespath: id, type: int}}}}}}}}\n"
                "  - {{name: kids, parent: parents, url: '/c/{{id}}?since={{incremental}}',"
                " incremental: {{cursor: u, initial: 0}}, extract: {{records: items, fields: {{u: {{jmespath: u, type: int}}}}}}}}\n",
                base=server.url,
            )
        )
        for _ in range(3):
            assert (await run_async(spec, output=db_path)).ok

    # Runs 2 and 3 got a 304 for the parent page: its child request is made again, with the cursor as it now stands.
    assert asked == ["0", "5", "10"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_run_that_finds_nothing_new_is_the_quiet_state_not_a_broken_selector(
    shop: tuple[Shop, str],
    write_spec: Spec,
    db_path: Path,
    cli: CliRunner,
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    api, base = shop
    api.add(1, "2024-05-01T10:00:00Z")
    api.after = True
    output = str(db_path) if backend == "sqlite" else request.getfixturevalue("pg_url")
    spec = str(write_spec(ORDERS, base=base, lag=0))

    first = cli.invoke(main, ["run", spec, "-o", output])
    quiet = cli.invoke(main, ["run", spec, "-o", output])  # nothing changed since: {"orders": []}

    assert first.exit_code == 0, first.output
    assert quiet.exit_code == 0, quiet.output
    assert "matched nothing" not in quiet.output
    assert "exit status 0: everything succeeded" in quiet.output
    assert api.since("/api/orders") == ["2024-01-01T00:00:00Z", "2024-05-01T10:00:00Z"]
    pages = crawlrunner.query(output, "SELECT run_id, items FROM _crawlrunner_fetch_log ORDER BY id")
    assert [tuple(row) for row in pages] == [(1, 1), (2, 0)]


def test_changes_that_fit_on_one_page_are_not_pagination_that_broke(
    shop: tuple[Shop, str], write_spec: Spec, db_path: Path, cli: CliRunner
) -> None:
    api, base = shop
    api.per_page = 10
    for i in range(1, 4):
        api.add(i, f"2024-05-0{i}T00:00:00Z")
    text = ORDERS.replace("    mode: upsert", "    paginate: {{type: next_url, next: next}}\n    mode: upsert")

    result = cli.invoke(main, ["run", str(write_spec(text, base=base, lag=0)), "-o", str(db_path)])

    assert result.exit_code == 0, result.output
    assert "never found a next page" not in result.output
