"""Each pagination machine, fed hand-made pages: no sockets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from multidict import CIMultiDict

from crawlrunner.backends.rows import COLUMNS, request_row, restore_plan
from crawlrunner.document import Page
from crawlrunner.paginate import next_link, next_page, unchanged_page
from crawlrunner.plan import RequestPlan, plan_target
from crawlrunner.results import ChainEnd, ChainStop, FetchResult
from crawlrunner.spec import load_spec_text
from crawlrunner.spec.model import Spec


def _first_plan(paginate: str, url: str = "/items", fmt: str = "json") -> RequestPlan:
    spec = load_spec_text(
        f"""
name: p
http: {{base_url: "http://api.test"}}
targets:
  - name: t
    url: {url}
    paginate: {paginate}
    extract: {{format: {fmt}, fields: {{x: {"x" if fmt == "json" else "p"}}}}}
"""
    )
    return next(plan_target(spec.targets[0]))


def _page(plan: RequestPlan, body: Any, headers: dict[str, str] | None = None, fmt: str = "json") -> Page:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    fetch = FetchResult(
        "t", "GET", plan.url, "now", final_url=plan.url, status=200, headers=CIMultiDict(headers or {}), body=raw
    )
    return Page(fetch, fmt)  # type: ignore[arg-type]


def _next(found: RequestPlan | ChainEnd | None) -> RequestPlan:
    assert isinstance(found, RequestPlan), found
    return found


def _stop(found: RequestPlan | ChainEnd | None) -> tuple[str, int]:
    """Why the chain ended, and after how many pages."""
    assert isinstance(found, ChainEnd), found
    return found.reason, found.pages


def test_next_url_follows_the_body_and_resolves_relative_urls() -> None:
    plan = _first_plan("{type: next_url, next: links.next}")
    follow_up = _next(next_page(plan, _page(plan, {"links": {"next": "/items?after=40"}}), records=40))

    assert follow_up.url == "http://api.test/items?after=40"
    assert _stop(next_page(follow_up, _page(follow_up, {"links": {"next": None}}), records=40)) == ("no_next", 2)


def test_next_url_from_html_with_css() -> None:
    plan = _first_plan("{type: next_url, next: 'a.next::attr(href)'}", url="/list/1.html", fmt="html")
    page = _page(plan, "<p>x</p><a class='next' href='2.html'>next</a>", fmt="html")

    follow_up = _next(next_page(plan, page, records=1))
    assert follow_up.url == "http://api.test/list/2.html"


def test_a_next_url_already_seen_in_the_chain_stops_it() -> None:
    plan = _first_plan("{type: next_url, next: next}")
    second = _next(next_page(plan, _page(plan, {"next": "/items?p=2"}), records=1))
    # Page 2 points back at page 2: the loop guard ends the chain.
    assert _stop(next_page(second, _page(second, {"next": "/items?p=2"}), records=1)) == ("loop", 2)
    # ...and back at the first page, too.
    assert _stop(next_page(second, _page(second, {"next": "/items"}), records=1)) == ("loop", 2)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            '<https://api.test/items?page=2>; rel="next", <https://api.test/items?page=9>; rel="last"',
            "https://api.test/items?page=2",
        ),
        ('<https://api.test/items?page=9>; rel="last", </items?page=3>; rel=next', "/items?page=3"),
        ('<https://api.test/a>; rel="prev next"', "https://api.test/a"),
        ('<https://api.test/items?page=9>; rel="last"', None),
        ("", None),
    ],
)
def test_link_header_parsing(header: str, expected: str | None) -> None:
    assert next_link([header]) == expected


def test_page_number_counts_up_and_stops_on_an_empty_page() -> None:
    plan = _first_plan("{type: page_number, param: p, start: 0}")
    assert plan.url == "http://api.test/items?p=0" and plan.page == 0

    second = _next(next_page(plan, _page(plan, [1]), records=1))
    assert second.url == "http://api.test/items?p=1"
    assert _stop(next_page(second, _page(second, []), records=0)) == ("empty_page", 2)


def test_page_number_stops_at_total_pages_and_total_items() -> None:
    plan = _first_plan("{type: page_number, total_pages: pages}")
    second = _next(next_page(plan, _page(plan, {"pages": 2}), records=10))
    assert _stop(next_page(second, _page(second, {"pages": 2}), records=10)) == ("total_reached", 2)

    plan = _first_plan("{type: page_number, total: count}")
    second = _next(next_page(plan, _page(plan, {"count": 15}), records=10))
    assert _stop(next_page(second, _page(second, {"count": 15}), records=5)) == ("total_reached", 2)


def test_offset_advances_by_limit_and_stops_on_a_short_page() -> None:
    plan = _first_plan("{type: offset, limit: 50}")
    assert plan.url == "http://api.test/items?offset=0&limit=50"
    second = _next(next_page(plan, _page(plan, []), records=50))
    assert second.url == "http://api.test/items?limit=50&offset=50"
    assert _stop(next_page(second, _page(second, []), records=20)) == ("short_page", 2)


def test_cursor_from_body_as_param_and_from_header_as_header() -> None:
    plan = _first_plan("{type: cursor, cursor: meta.next}")
    second = _next(next_page(plan, _page(plan, {"meta": {"next": "abc"}}), records=5))
    assert second.url == "http://api.test/items?cursor=abc"
    assert _stop(next_page(second, _page(second, {"meta": {"next": ""}}), records=5)) == ("no_next", 2)

    plan = _first_plan("{type: cursor, cursor: {header: X-Next}, param: X-Cursor, send_cursor_as: header}")
    second = _next(next_page(plan, _page(plan, {}, {"X-Next": "t2"}), records=5))
    assert second.headers["X-Cursor"] == "t2" and second.url == plan.url
    # The same cursor again is a loop.
    assert _stop(next_page(second, _page(second, {}, {"X-Next": "t2"}), records=5)) == ("loop", 2)


def test_has_more_false_and_max_pages_stop() -> None:
    plan = _first_plan("{type: next_url, next: next, has_more: more}")
    assert _stop(next_page(plan, _page(plan, {"next": "/b", "more": False}), records=3)) == ("has_more_false", 1)

    plan = _first_plan("{type: next_url, next: next, max_pages: 2}")
    second = _next(next_page(plan, _page(plan, {"next": "/b"}), records=3))
    assert _stop(next_page(second, _page(second, {"next": "/c"}), records=3)) == ("max_pages", 2)


# ``in: body``: the page number, offset or cursor in the request body (POST search APIs, GraphQL).


def _body_plan(paginate: str, body: str, *, vars_: str = "") -> RequestPlan:
    """The first request of a POST target whose body is ``body`` (a YAML ``json:`` or ``form:`` line)."""
    spec = load_spec_text(
        f"""
name: p
http: {{base_url: "http://api.test"}}
targets:
  - name: t
    url: /search
    method: POST
    {body}
    {vars_}
    paginate: {paginate}
    extract: {{records: hits, fields: {{x: x}}}}
"""
    )
    return next(plan_target(spec.targets[0]))


def test_page_number_in_a_json_body_at_a_nested_path_with_the_page_size() -> None:
    plan = _body_plan(
        "{type: page_number, in: body, param: page.number, limit: 20, limit_param: page.size}",
        "json: {query: shoes, page: {sort: price}}",
    )
    # The first page is numbered in the body; the URL carries nothing.
    assert plan.url == "http://api.test/search" and plan.page == 1
    assert plan.json_body == {"query": "shoes", "page": {"sort": "price", "number": 1, "size": 20}}

    second = _next(next_page(plan, _page(plan, {"hits": [1]}), records=20))
    assert second.url == plan.url and second.page == 2
    assert second.json_body == {"query": "shoes", "page": {"sort": "price", "number": 2, "size": 20}}
    assert plan.json_body["page"]["number"] == 1  # copied, not changed in place: page 1 may not be stored yet
    # Every page has the same URL, and the loop guard does not take page 3 for page 2.
    third = _next(next_page(second, _page(second, {}), records=20))
    assert third.json_body["page"]["number"] == 3
    assert _stop(next_page(third, _page(third, {}), records=0)) == ("empty_page", 3)


def test_offset_and_limit_in_a_form_body() -> None:
    plan = _body_plan("{type: offset, in: body, limit: 50, param: from, limit_param: size}", "form: {q: shoes}")
    assert plan.data == {"q": "shoes", "from": "0", "size": "50"} and plan.json_body is None

    second = _next(next_page(plan, _page(plan, {}), records=50))
    assert second.data == {"q": "shoes", "from": "50", "size": "50"} and second.url == plan.url
    assert _stop(next_page(second, _page(second, {}), records=7)) == ("short_page", 2)


GRAPHQL = """json:
      query: "query($first: Int, $after: String) { products(first: $first, after: $after) { edges { node { x } } } }"
      variables: {first: 2, after: null}"""
GRAPHQL_PAGINATE = (
    "{type: cursor, in: body, param: variables.after, cursor: data.products.pageInfo.endCursor,"
    " has_more: data.products.pageInfo.hasNextPage}"
)


def _graphql_page(plan: RequestPlan, cursor: str | None, more: bool) -> Page:
    return _page(plan, {"data": {"products": {"pageInfo": {"endCursor": cursor, "hasNextPage": more}}}})


def test_graphql_cursor_goes_into_the_variables() -> None:
    plan = _body_plan(GRAPHQL_PAGINATE, GRAPHQL)
    # The first page sends the template as written: after is null.
    assert plan.json_body["variables"] == {"first": 2, "after": None}

    second = _next(next_page(plan, _graphql_page(plan, "c1", True), records=2))
    assert second.json_body["variables"] == {"first": 2, "after": "c1"}
    assert second.json_body["query"] == plan.json_body["query"] and plan.json_body["variables"]["after"] is None
    third = _next(next_page(second, _graphql_page(second, "c2", True), records=2))
    assert third.json_body["variables"]["after"] == "c2"
    assert _stop(next_page(third, _graphql_page(third, "c3", False), records=1)) == ("has_more_false", 3)


def test_a_cursor_in_the_body_that_comes_back_is_a_loop() -> None:
    plan = _body_plan(GRAPHQL_PAGINATE, GRAPHQL)
    second = _next(next_page(plan, _graphql_page(plan, "c1", True), records=2))
    # Same URL on every page: only the body tells the server returned the same cursor again.
    assert _stop(next_page(second, _graphql_page(second, "c1", True), records=2)) == ("loop", 2)


def test_a_cursor_chain_may_start_from_a_cursor_in_a_variable() -> None:
    # The one value the page may replace: a cursor chain sends its first body as written.
    plan = _body_plan(
        "{type: cursor, in: body, param: variables.after, cursor: next}",
        "json: {query: '{ a }', variables: {after: '{start}'}}",
        vars_="vars: {start: [c0]}",
    )
    assert plan.json_body == {"query": "{ a }", "variables": {"after": "c0"}}

    second = _next(next_page(plan, _page(plan, {"next": "c1"}), records=1))
    assert second.json_body == {"query": "{ a }", "variables": {"after": "c1"}}


def test_a_json_path_creates_the_objects_it_needs() -> None:
    plan = _body_plan("{type: cursor, in: body, param: variables.after, cursor: next}", "json: {query: '{ a }'}")
    assert plan.json_body == {"query": "{ a }"}  # nothing added to the first page

    second = _next(next_page(plan, _page(plan, {"next": "t2"}), records=1))
    assert second.json_body == {"query": "{ a }", "variables": {"after": "t2"}}


def test_a_body_variable_in_the_way_of_the_path_makes_the_request_invalid() -> None:
    # Only a template variable can put a non-object there: the spec's own structure is checked when it loads.
    plan = _body_plan(
        "{type: page_number, in: body, param: page.number}", "json: {page: '{p}'}", vars_="vars: {p: [3]}"
    )
    assert plan.invalid == "cannot put the page into the JSON body: 'page' is a number, not an object"


def test_in_header_is_send_cursor_as_header() -> None:
    plan = _first_plan("{type: cursor, cursor: {header: X-Next}, param: X-Cursor, in: header}")
    second = _next(next_page(plan, _page(plan, {}, {"X-Next": "t2"}), records=5))
    assert second.headers["X-Cursor"] == "t2" and second.url == plan.url


def test_a_cursor_header_that_comes_back_is_a_loop_named_by_its_value(caplog: pytest.LogCaptureFixture) -> None:
    plan = _first_plan("{type: cursor, cursor: {header: X-Next}, param: X-Cursor, in: header}")
    second = _next(next_page(plan, _page(plan, {}, {"X-Next": "t2"}), records=5))
    with caplog.at_level("WARNING", logger="crawlrunner"):
        assert _stop(next_page(second, _page(second, {}, {"X-Next": "t2"}), records=5)) == ("loop", 2)
    assert "the next page (X-Cursor='t2') was already fetched in this chain" in caplog.text


def test_an_unchanged_page_continues_its_chain_with_the_chains_own_counters() -> None:
    first = _first_plan("{type: next_url, next: next, max_pages: 3}")
    second = _next(next_page(first, _page(first, {"next": "/items?p=2"}), records=4))
    # What the second page led to when a run fetched it whole (another chain's state, another depth).
    stored = RequestPlan(first.target, "http://api.test/items?p=3", depth=7)

    third = _next(unchanged_page(second, stored, None, items=5))

    assert third.url == stored.url and third.depth == second.depth
    assert third.chain is second.chain and (third.chain.pages, third.chain.items) == (3, 9)
    # max_pages holds on a chain of 304s too; and a stored end is ended the same way, on these counters.
    assert _stop(unchanged_page(third, RequestPlan(first.target, "http://api.test/items?p=4"), None, 5)) == (
        "max_pages",
        3,
    )
    end = unchanged_page(second, None, ChainStop.EMPTY_PAGE, items=0)  # the chain has 3 pages, 14 items by now
    assert isinstance(end, ChainEnd) and (end.reason, end.pages, end.items) == ("empty_page", 3, 14)


def test_an_unchanged_page_that_leads_back_into_its_chain_stops_it_as_a_loop() -> None:
    first = _first_plan("{type: next_url, next: next}")
    second = _next(next_page(first, _page(first, {"next": "/items?p=2"}), records=1))

    assert _stop(unchanged_page(second, RequestPlan(first.target, first.url), None, items=1)) == ("loop", 2)


def test_a_first_page_written_in_the_body_as_the_chain_sends_it_is_accepted() -> None:
    spec = load_spec_text(
        "name: p\nhttp: {base_url: 'http://api.test'}\ntargets:\n"
        "  - {name: t, url: /search, method: POST, json: {q: lamp, page: {number: 1, size: 20}},\n"
        "     paginate: {type: page_number, in: body, param: page.number, limit_param: page.size, limit: 20}}\n"
    )

    (first,) = plan_target(spec.targets[0])

    assert first.json_body == {"q": "lamp", "page": {"number": 1, "size": 20}}


def _saved_and_resumed(spec: Spec, plan: RequestPlan) -> RequestPlan:
    """``plan`` saved for resume as the writer saves it, and read back as a resumed run reads it."""
    row = request_row(plan, 1, spec.redactor, "pending")
    restored = restore_plan(spec, tuple(v for c, v in zip(COLUMNS, row, strict=True) if c not in ("run_id", "state")))
    assert restored is not None
    return restored


def test_a_saved_next_page_keeps_its_place_in_the_chain_though_the_chain_moves_on() -> None:
    """The row saved for resume says where the page stood when it was found, not where the chain is now.

    The writer saves a next page with the outcome of the page that found it,
    often after later pages moved the shared chain on; resumed from a row
    with later counters, a ``max_pages`` chain would stop early.
    """
    spec = load_spec_text(
        "name: p\nhttp: {base_url: 'http://api.test'}\ntargets:\n  - name: t\n    url: /items\n"
        "    paginate: {type: page_number, max_pages: 4}\n    extract: {format: json, fields: {x: x}}\n"
    )
    first = next(plan_target(spec.targets[0]))
    second = _next(next_page(first, _page(first, [{"x": 1}] * 10), records=10))
    third = _next(next_page(second, _page(second, [{"x": 1}] * 7), records=7))  # the chain moves on

    columns = [COLUMNS.index("chain_pages"), COLUMNS.index("chain_items")]
    assert [request_row(second, 1, spec.redactor, "pending")[i] for i in columns] == [2, 10]
    assert [request_row(third, 1, spec.redactor, "pending")[i] for i in columns] == [3, 17]
    # Resumed at the second page, the chain goes on to its fourth page and ends as the first run does.
    resumed = _saved_and_resumed(spec, second)
    again = _next(next_page(resumed, _page(resumed, [{"x": 1}] * 7), records=7))
    assert [request_row(again, 1, spec.redactor, "pending")[i] for i in columns] == [3, 17]
    fourth = _next(next_page(again, _page(again, [{"x": 1}] * 5), records=5))
    uninterrupted = _next(next_page(third, _page(third, [{"x": 1}] * 5), records=5))
    ends = [next_page(p, _page(p, [{"x": 1}] * 5), records=5) for p in (fourth, uninterrupted)]
    assert ends[0] == ends[1] == ChainEnd(ChainStop.MAX_PAGES, 4, 27)
    # Resumed at the fourth page: the same end.
    assert next_page(_saved_and_resumed(spec, fourth), _page(fourth, [{"x": 1}] * 5), records=5) == ends[0]


def test_a_resumed_page_whose_next_link_is_itself_ends_its_chain_as_a_loop() -> None:
    spec = load_spec_text(
        "name: p\nhttp: {base_url: 'http://api.test'}\ntargets:\n  - name: t\n    url: /a\n"
        "    paginate: {type: next_url, next: next}\n    extract: {format: json, fields: {x: x}}\n"
    )
    first = next(plan_target(spec.targets[0]))
    second = _saved_and_resumed(spec, _next(next_page(first, _page(first, {"next": "/b"}), records=3)))

    assert _stop(next_page(second, _page(second, {"next": "/b"}), records=3)) == ("loop", 2)
