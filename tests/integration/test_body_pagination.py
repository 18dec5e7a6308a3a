"""Pagination inside request bodies, against a local API that reads its page from the POST body only.

A search API numbered by a JSON body's ``page.number``, another by a form's
``from``/``size``, and a GraphQL endpoint whose cursor travels in
``variables.after``: every page has the same URL, so each test also shows
that the pages are told apart by their bodies (no page taken for another,
the loop guard still working), that an interrupted run resumes with its
pending page's body, and that PostgreSQL stores and restores the same.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import crawlrunner
from crawlrunner.api import reextract_async, run_async
from crawlrunner.secrets import MASK
from crawlrunner.spec import load_spec

from ..conftest import ThreadedServer

pytestmark = pytest.mark.timeout(120)

ITEMS = [{"id": n, "name": f"item {n}"} for n in range(45)]
PRODUCTS = ITEMS[:7]


class Api:
    """The API's catalogue and what it was asked: the page, offset or cursor of each request, per route."""

    def __init__(self) -> None:
        self.asked: dict[str, list[Any]] = {"search": [], "form": [], "graphql": [], "loop": []}
        self.requested: Callable[[int], None] | None = None  # called with each search page number
        self.delay = 0.0  # seconds each search answer takes
        self.loop_cursor = "same"  # the cursor graphql_loop gives on every page

    async def search(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("query") != "shoes":
            return web.json_response({"error": "no query"}, status=400)
        number, size = body["page"]["number"], body["page"]["size"]
        self.asked["search"].append(number)
        if self.requested is not None:
            self.requested(number)
        await asyncio.sleep(self.delay)
        return web.json_response({"hits": ITEMS[(number - 1) * size : number * size], "total": len(ITEMS)})

    async def form_search(self, request: web.Request) -> web.Response:
        form = await request.post()
        start, size = int(str(form["from"])), int(str(form["size"]))
        self.asked["form"].append(start)
        return web.json_response({"results": ITEMS[start : start + size]} if form["q"] == "shoes" else {})

    async def graphql(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "prodcts" in body["query"]:
            message = "Cannot query field 'prodcts' on type 'Query'. Did you mean 'products'?"
            return web.json_response({"errors": [{"message": message}], "data": None})
        first, after = body["variables"]["first"], body["variables"]["after"]
        self.asked["graphql"].append(after)
        start = 0 if after is None else int(after.removeprefix("cursor:")) + 1
        nodes = PRODUCTS[start : start + first]
        info = {"endCursor": f"cursor:{start + len(nodes) - 1}", "hasNextPage": start + first < len(PRODUCTS)}
        return web.json_response({"data": {"products": {"edges": [{"node": n} for n in nodes], "pageInfo": info}}})

    async def graphql_loop(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.asked["loop"].append(body["variables"]["after"])
        # A broken server: the same cursor on every page.
        info = {"endCursor": self.loop_cursor, "hasNextPage": True}
        return web.json_response({"data": {"products": {"edges": [{"node": PRODUCTS[0]}], "pageInfo": info}}})


@pytest.fixture
def api() -> Iterator[tuple[Api, str]]:
    state = Api()
    app = web.Application()
    app.router.add_post("/search", state.search)
    app.router.add_post("/form-search", state.form_search)
    app.router.add_post("/graphql", state.graphql)
    app.router.add_post("/graphql-loop", state.graphql_loop)
    with ThreadedServer(app) as running:
        yield state, running.url


HEAD = """
name: body_pages
http: {base_url: "BASE", retry: null, limits: {connections: 1}}
targets:
"""
SEARCH = """
  - name: hits
    url: /search
    method: POST
    json: {query: shoes, page: {size: 20}}
    paginate: {type: page_number, in: body, param: page.number}
    extract: {records: hits, fields: {id: id, name: name}}
"""
FORM = """
  - name: found
    url: /form-search
    method: POST
    form: {q: shoes}
    paginate: {type: offset, in: body, param: from, limit: 20, limit_param: size}
    extract: {records: results, fields: {id: id}}
"""
GRAPHQL = """
  - name: products
    url: /graphql
    method: POST
    json:
      query: >-
        query($first: Int, $after: String) { products(first: $first, after: $after)
        { edges { node { id name } } pageInfo { endCursor hasNextPage } } }
      variables: {first: 3, after: null}
    paginate:
      type: cursor
      in: body
      param: variables.after
      cursor: data.products.pageInfo.endCursor
      has_more: data.products.pageInfo.hasNextPage
    extract: {records: "data.products.edges[].node", fields: {id: id, name: name}}
"""


def _spec(write_spec: Callable[..., Path], base: str, *targets: str) -> crawlrunner.Spec:
    return load_spec(write_spec((HEAD + "".join(targets)).replace("BASE", base)))


async def _rows(output: str | Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows from either backend, through the public reader (it runs its own event loop: a thread)."""
    table = await asyncio.to_thread(crawlrunner.query, output, sql)
    return [tuple(row) for row in table]


async def test_a_post_search_api_paginated_by_a_page_number_in_its_json_body(
    api: tuple[Api, str], write_spec: Callable[..., Path], db_path: Path
) -> None:
    state, base = api
    result = await run_async(_spec(write_spec, base, SEARCH), output=db_path)

    assert result.ok, result.stats
    # Pages 1-3 hold 45 items; page 4 is empty and ends the chain. Same URL each time, no page asked twice.
    assert state.asked["search"] == [1, 2, 3, 4]
    assert await _rows(db_path, "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM hits") == [(45, 45, 0, 44)]
    assert await _rows(db_path, "SELECT DISTINCT url FROM _crawlrunner_fetch_log") == [(f"{base}/search",)]
    assert await _rows(db_path, "SELECT reason, pages, items FROM _crawlrunner_chain_ends") == [("empty_page", 4, 45)]


async def test_an_offset_and_limit_in_a_form_body(
    api: tuple[Api, str], write_spec: Callable[..., Path], db_path: Path
) -> None:
    state, base = api
    result = await run_async(_spec(write_spec, base, FORM), output=db_path)

    assert result.ok, result.stats
    assert state.asked["form"] == [0, 20, 40]  # 40 gives 5 items: a short page is the last
    assert await _rows(db_path, "SELECT count(*), count(DISTINCT id) FROM found") == [(45, 45)]
    assert await _rows(db_path, "SELECT reason FROM _crawlrunner_chain_ends") == [("short_page",)]


async def test_graphql_cursor_pagination_through_the_variables(
    api: tuple[Api, str], write_spec: Callable[..., Path], db_path: Path
) -> None:
    state, base = api
    result = await run_async(_spec(write_spec, base, GRAPHQL), output=db_path)

    assert result.ok, result.stats
    assert state.asked["graphql"] == [None, "cursor:2", "cursor:5"]
    assert await _rows(db_path, "SELECT id, name FROM products ORDER BY id") == [(p["id"], p["name"]) for p in PRODUCTS]
    assert await _rows(db_path, "SELECT reason, pages FROM _crawlrunner_chain_ends") == [("has_more_false", 3)]


LOOPING = GRAPHQL.replace("name: products", "name: looping").replace("url: /graphql", "url: /graphql-loop")


def _loop_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "pagination loop" in r.getMessage()]


async def test_a_graphql_server_returning_the_same_cursor_ends_the_chain_as_a_loop(
    api: tuple[Api, str], write_spec: Callable[..., Path], db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state, base = api
    with caplog.at_level("WARNING", logger="crawlrunner"):
        result = await run_async(_spec(write_spec, base, LOOPING), output=db_path)

    assert result.ok, result.stats
    # Page 2 asks for "same" and gets "same" back: page 3 would be page 2 again.
    assert state.asked["loop"] == [None, "same"]
    assert await _rows(db_path, "SELECT reason, pages FROM _crawlrunner_chain_ends") == [("loop", 2)]
    # Every page has the same URL: the warning says which cursor came back.
    assert _loop_warnings(caplog) == [
        f"looping: pagination loop at {base}/graphql-loop: the next page (variables.after='same') "
        "was already fetched in this chain; chain stopped"
    ]


async def test_the_loop_warning_masks_a_secret_in_the_repeated_page(
    api: tuple[Api, str],
    write_spec: Callable[..., Path],
    db_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state, base = api
    # A server that hands back a credential as its cursor: the log line must not show it.
    secret = "sk-live-0123456789abcdef"
    state.loop_cursor = secret
    monkeypatch.setenv("SHOP_KEY", secret)
    spec = _spec(
        write_spec, base, LOOPING.replace("    json:", "    headers: {X-Key: '${env.SHOP_KEY}'}\n    json:", 1)
    )
    with caplog.at_level("WARNING", logger="crawlrunner"):
        result = await run_async(spec, output=db_path)

    assert result.ok, result.stats
    assert state.asked["loop"] == [None, secret]
    (warning,) = _loop_warnings(caplog)
    assert secret not in warning and f"(variables.after='{MASK}')" in warning, warning


async def test_graphql_errors_without_data_fail_the_request_with_the_servers_message(
    api: tuple[Api, str], write_spec: Callable[..., Path], db_path: Path
) -> None:
    _, base = api
    result = await run_async(_spec(write_spec, base, GRAPHQL.replace("{ products(", "{ prodcts(")), output=db_path)

    assert result.failed_by_target == {"products": 1}
    assert await _rows(db_path, "SELECT status, error_kind, error FROM _crawlrunner_fetch_log") == [
        (
            200,
            "extract_error",
            "GraphQL errors and no data: Cannot query field 'prodcts' on type 'Query'. Did you mean 'products'?",
        )
    ]
    assert await _rows(db_path, "SELECT reason FROM _crawlrunner_chain_ends") == [("failed",)]


async def test_an_interrupted_run_resumes_its_pending_page_with_its_body(
    api: tuple[Api, str], write_spec: Callable[..., Path], output: str | Path
) -> None:
    state, base = api
    spec = _spec(write_spec, base, SEARCH.replace("size: 20", "size: 5"))  # 9 pages of 5, and an empty one
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    state.requested = lambda page: loop.call_soon_threadsafe(stop.set) if page == 3 else None
    state.delay = 0.2  # page 3 is still being answered when the stop comes

    interrupted = await run_async(spec, output=output, stop=stop)
    assert interrupted.status == "interrupted"
    # What is left to do is a page of the chain, its number in its stored body.
    pending = await _rows(output, "SELECT url, body FROM _crawlrunner_requests WHERE state = 'pending'")
    assert len(pending) == 1 and pending[0][0] == f"{base}/search"
    left = json.loads(pending[0][1])["json"]["page"]["number"]
    assert left in (3, 4) and json.loads(pending[0][1])["json"]["query"] == "shoes"
    asked_before = len(state.asked["search"])

    state.requested, state.delay = None, 0.0
    resumed = await run_async(spec, output=output, resume=True)

    assert resumed.ok and resumed.run_id == interrupted.run_id
    # The resumed run starts at the pending page (not at page 1), and goes on to the end.
    assert state.asked["search"][asked_before:] == list(range(left, 11))
    assert await _rows(output, "SELECT count(*), count(DISTINCT id) FROM hits") == [(45, 45)]
    assert await _rows(output, "SELECT reason, pages, items FROM _crawlrunner_chain_ends") == [("empty_page", 10, 45)]


async def test_graphql_pagination_on_postgresql(
    api: tuple[Api, str], write_spec: Callable[..., Path], pg_url: str
) -> None:
    state, base = api
    result = await run_async(_spec(write_spec, base, GRAPHQL, SEARCH), output=pg_url)

    assert result.ok, result.stats
    assert state.asked["graphql"] == [None, "cursor:2", "cursor:5"] and state.asked["search"] == [1, 2, 3, 4]
    assert await _rows(pg_url, "SELECT count(*), count(DISTINCT id) FROM products") == [(7, 7)]
    assert await _rows(pg_url, "SELECT count(*), count(DISTINCT id) FROM hits") == [(45, 45)]
    assert sorted(await _rows(pg_url, "SELECT target, reason FROM _crawlrunner_chain_ends")) == [
        ("hits", "empty_page"),
        ("products", "has_more_false"),
    ]


async def test_reextract_rebuilds_every_page_of_a_body_paginated_chain(
    api: tuple[Api, str], write_spec: Callable[..., Path], db_path: Path
) -> None:
    _, base = api
    stored = GRAPHQL.replace("    paginate:", "    store_bodies: true\n    paginate:")
    spec = _spec(write_spec, base, stored)
    assert (await run_async(spec, output=db_path)).ok

    # Three pages share one URL: each is its own stored page, told apart by the request body.
    result = await reextract_async(spec, output=db_path)
    assert result.ok and result.status == "reextracted"
    assert await _rows(db_path, f"SELECT count(DISTINCT id) FROM products WHERE _run_id = {result.run_id}") == [(7,)]


def test_try_shows_the_next_pages_body(api: tuple[Api, str], write_spec: Callable[..., Path]) -> None:
    from crawlrunner.console.trial import trial_lines
    from crawlrunner.trial import try_page

    _, base = api
    trial = try_page(_spec(write_spec, base, GRAPHQL), "products")

    assert trial.next_page is not None and trial.next_page.url == f"{base}/graphql"
    assert trial.next_page.body is not None and '"variables": {"first": 3, "after": "cursor:2"}' in trial.next_page.body
    (line,) = [line for line in trial_lines(trial, 1) if line.startswith("next page: ")]
    assert line.startswith(f'next page: POST {base}/graphql, body {{"query": "query($first: Int')
