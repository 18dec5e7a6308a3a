"""preview_plan: what a spec would fetch, as data, with secrets masked; and the --base-url check."""

from __future__ import annotations

import pytest

import crawlrunner
from crawlrunner.console.plan import plan_lines
from crawlrunner.overrides import check_base_url
from crawlrunner.preview import PlannedRequest, TargetPlan, count_start_requests
from crawlrunner.spec import load_spec_text

TOKEN = "tok-prev-5b1e9c"
KEY = "gw-prev-0d7a44"

SPEC = """
name: prev
http:
  base_url: https://api.example
  headers: {X-Token: "${env.CR_PREV_TOKEN}"}
  auth: {type: bearer, token: "${env.CR_PREV_TOKEN}"}
targets:
  - name: pages
    url: /items?page={n}&k=${env.CR_PREV_TOKEN}
    vars: {n: {from: 1, to: 7}}
    paginate: {type: next_url, next: next}
    extract: {records: items, fields: {id: id, link: link}}
  - name: details
    parent: pages
    url: /items/{id}?k=${env.CR_PREV_TOKEN}
  - name: linked
    parent: pages
    url_field: link
  - name: site
    url: https://site.example/
    follow: {max_depth: 2}
  - name: rendered
    url: https://shop.example/p/1
    gateway: {endpoint: "https://gateway.example/", api_key: "${env.CR_PREV_KEY}"}
"""


@pytest.fixture
def spec() -> crawlrunner.Spec:
    return load_spec_text(SPEC, environ={"CR_PREV_TOKEN": TOKEN, "CR_PREV_KEY": KEY})


def test_preview_plan_returns_each_targets_count_first_requests_and_sources(spec: crawlrunner.Spec) -> None:
    plans = crawlrunner.preview_plan(spec, first=2)

    assert [(p.target, p.count) for p in plans] == [
        ("pages", 7),
        ("details", None),
        ("linked", None),
        ("site", 1),
        ("rendered", 1),
    ]
    pages, details, linked, site, rendered = plans
    assert isinstance(pages, TargetPlan) and pages.pagination == "next_url" and pages.follow_depth is None
    assert [r.url for r in pages.requests] == [
        "https://api.example/items?page=1&k=***",
        "https://api.example/items?page=2&k=***",
    ]
    assert pages.requests[0].headers["X-Token"] == "***"
    assert pages.requests[0].headers["Authorization"] == "***"  # auth's own header: masked whole
    assert pages.requests[0].method == "GET" and pages.requests[0].invalid is None
    assert (details.parent, details.url_template, details.url_field) == ("pages", "/items/{id}?k=***", None)
    assert (linked.parent, linked.url_field, linked.url_template, linked.requests) == ("pages", "link", None, ())
    assert site.follow_depth == 2 and site.pagination is None
    assert rendered.requests == (
        PlannedRequest(
            "GET", "https://shop.example/p/1", rendered.requests[0].headers, gateway="https://gateway.example/"
        ),
    )
    assert TOKEN not in repr(plans) and KEY not in repr(plans)


def test_preview_plan_of_some_targets_and_unknown_names(spec: crawlrunner.Spec) -> None:
    assert [p.target for p in crawlrunner.preview_plan(spec, only=["site", "details"], first=0)] == ["details", "site"]
    assert crawlrunner.preview_plan(spec, only=["pages"], first=0)[0].requests == ()

    with pytest.raises(crawlrunner.UnknownTargetError, match="no target named 'nope'"):
        crawlrunner.preview_plan(spec, only=["nope"])


def test_plan_lines_render_what_the_plan_command_prints(spec: crawlrunner.Spec) -> None:
    lines = list(plan_lines(crawlrunner.preview_plan(spec, only=["pages", "details", "rendered"], first=1), 1))

    assert lines[:6] == [
        "pages: 7 start requests; more from next_url pagination",
        "  GET https://api.example/items?page=1&k=***",
        lines[2],  # User-Agent
        "      X-Token: ***",
        "      Authorization: ***",
        "  ... 6 more",
    ]
    assert lines[6] == "details: one request per record of 'pages', to '/items/{id}?k=***'"
    assert lines[7] == "rendered: 1 start request"
    assert lines[8] == "  GET https://shop.example/p/1 (through https://gateway.example/)"


def test_count_start_requests_says_whether_more_may_come(spec: crawlrunner.Spec) -> None:
    assert count_start_requests(spec) == (9, True)
    fixed = load_spec_text("name: f\ntargets:\n  - {name: t, url: 'https://x.example/{n}', vars: {n: [1, 2]}}\n")
    assert count_start_requests(fixed) == (2, False)


@pytest.mark.parametrize("url", ["ftp://x", "/relative", "example.com", "http:///nohost"])
def test_a_base_url_override_must_be_an_absolute_http_url(url: str) -> None:
    with pytest.raises(
        crawlrunner.UsageError, match=rf"--base-url: expected an absolute http:// or https:// URL, got '{url}'"
    ):
        check_base_url(url, name="--base-url")


@pytest.mark.parametrize("url", [None, "http://127.0.0.1:8080", "https://staging.example/api/"])
def test_a_good_or_absent_base_url_override_passes(url: str | None) -> None:
    check_base_url(url)


def test_the_plan_shows_the_first_pages_body_numbered_and_masked() -> None:
    spec = load_spec_text(
        """
name: search
targets:
  - name: hits
    url: https://api.example/search
    method: POST
    json: {query: shoes, key: "${env.CR_PREV_TOKEN}"}
    paginate: {type: page_number, in: body, param: page.number}
  - name: form
    url: https://api.example/search
    method: POST
    form: {q: red shoes}
    paginate: {type: offset, in: body, limit: 10}
""",
        environ={"CR_PREV_TOKEN": TOKEN},
    )
    hits, form = crawlrunner.preview_plan(spec, first=1)

    assert hits.requests[0].body == '{"query": "shoes", "key": "***", "page": {"number": 1}}'
    assert form.requests[0].body == "q=red+shoes&offset=0&limit=10"
    lines = list(plan_lines([hits], 1))
    assert lines[0] == "hits: 1 start request; more from page_number pagination"
    assert lines[-1] == '      body: {"query": "shoes", "key": "***", "page": {"number": 1}}'
    assert TOKEN not in repr(hits)
