"""What a conditional page led to: remembered when it is fetched whole, stored, and replayed on a 304 (no sockets)."""

from __future__ import annotations

import json

from multidict import CIMultiDict

from crawlrunner.backends.recrawl import expected_keys, led_to_text, restore_led_to
from crawlrunner.extract import process
from crawlrunner.plan import RequestPlan, plan_target
from crawlrunner.results import FetchResult, LedTo
from crawlrunner.spec import load_spec_text
from crawlrunner.spec.model import Spec

TOKEN = "tok-123456789"

SPEC = """
name: r
http: {{base_url: "http://shop.test", headers: {{X-Key: "${{env.KEY}}"}}}}
targets:
  - name: pages
    url: /
    conditional: true
    follow: {{max_depth: {depth}}}
    extract: {{format: html, records: li, fields: {{id: "::attr(id)"}}}}
  - name: details
    parent: pages
    url: /details/{{id}}
    extract: {{format: html, fields: {{n: h1}}}}
"""


def _spec(depth: int = 1) -> Spec:
    return load_spec_text(SPEC.format(depth=depth), environ={"KEY": TOKEN})


def _fetched(plan: RequestPlan, body: str = "", status: int = 200) -> FetchResult:
    return FetchResult(
        plan.target.name, "GET", plan.url, "now", final_url=plan.url, status=status,
        content_type="text/html", headers=CIMultiDict({"ETag": '"v1"'}), body=body.encode(),
    )  # fmt: skip


PAGE = "<ul><li id='a'></li><li id='b'></li></ul><a href='/x'>x</a><a href='/y'>y</a>"


def test_the_validated_spec_takes_conditional_with_follow_pagination_and_a_parent() -> None:
    spec = load_spec_text("""
name: ok
http: {base_url: "http://shop.test"}
targets:
  - {name: links, url: /, conditional: true, follow: {}, extract: {format: html, fields: {t: h1}}}
  - {name: pages, url: /api, conditional: true, paginate: {type: next_url, next: next}, extract: {fields: {t: t}}}
  - {name: kids, parent: pages, url: "/kids/{t}", conditional: true, extract: {fields: {t: t}}}
""")
    assert [t.conditional for t in spec.targets] == [True, True, True]


def test_a_whole_page_remembers_its_links_and_child_requests_and_a_304_derives_them_again() -> None:
    spec = _spec()
    plan = next(plan_target(spec.targets[0]))
    children = spec.children("pages")

    whole = process(plan, _fetched(plan, PAGE), children=children)
    assert whole.led_to is not None
    stored = led_to_text(whole.led_to, spec.redactor)
    assert stored is not None and TOKEN not in stored  # the header is kept as a reference to the secret
    data = json.loads(stored)
    assert data["links"] == ["http://shop.test/x", "http://shop.test/y"]
    assert [(c["target"], c["url"]) for c in data["children"]] == [
        ("details", "http://shop.test/details/a"), ("details", "http://shop.test/details/b"),
    ]  # fmt: skip

    unchanged = restore_led_to(spec, stored, plan)
    replayed = process(plan, _fetched(plan, status=304), children=children, unchanged=unchanged)

    assert replayed.records == [] and replayed.led_to is None  # nothing to store: what is stored stays
    assert [(r.target.name, r.url, r.depth, r.parent) for r in replayed.derived] == [
        (r.target.name, r.url, r.depth, r.parent) for r in whole.derived
    ]
    assert all(r.headers.get("X-Key") == TOKEN for r in replayed.derived)
    # Without its child target (--target pages), a 304 makes no child request.
    assert [r.target.name for r in process(plan, _fetched(plan, status=304), unchanged=unchanged).derived] == [
        "pages",
        "pages",
    ]


def test_a_page_too_deep_to_follow_remembers_its_links_for_a_run_that_reaches_it_sooner() -> None:
    spec = _spec(depth=1)
    deep = RequestPlan(spec.targets[0], "http://shop.test/deep", depth=1)

    whole = process(deep, _fetched(deep, PAGE))
    assert [r for r in whole.derived if r.target.name == "pages"] == []  # at max_depth: nothing followed
    assert whole.led_to is not None
    unchanged = restore_led_to(spec, led_to_text(whole.led_to, spec.redactor) or "", deep)

    sooner = RequestPlan(spec.targets[0], deep.url, depth=0)
    replayed = process(sooner, _fetched(sooner, status=304), unchanged=unchanged)
    assert [(r.url, r.depth) for r in replayed.derived] == [("http://shop.test/x", 1), ("http://shop.test/y", 1)]
    assert process(deep, _fetched(deep, status=304), unchanged=unchanged).derived == []


def test_a_stored_request_of_a_target_the_spec_no_longer_has_is_dropped() -> None:
    spec = _spec()
    plan = next(plan_target(spec.targets[0]))
    child = RequestPlan(spec.targets[1], "http://shop.test/details/a", parent={"id": "a"})
    stored = led_to_text(LedTo(children=[child], child_targets=("details",)), spec.redactor)
    assert stored is not None

    without_child = load_spec_text(SPEC.format(depth=1).split("  - name: details")[0], environ={"KEY": TOKEN})
    assert restore_led_to(without_child, stored, plan).children == []
    assert [r.parent for r in restore_led_to(spec, stored, plan).children] == [{"id": "a"}]


def test_a_page_that_led_nowhere_stores_nothing_and_only_targets_that_lead_somewhere_need_a_digest() -> None:
    spec = _spec()
    assert led_to_text(LedTo(items=3), spec.redactor) is None
    assert set(expected_keys(spec, spec.targets)) == {"pages"}  # details is not conditional
    only_pages = expected_keys(spec, [spec.targets[0]])
    assert only_pages["pages"] != expected_keys(spec, spec.targets)["pages"]  # its child targets count
    plain = load_spec_text('name: p\ntargets:\n  - {name: t, url: "http://x.test/", conditional: true}\n')
    assert expected_keys(plain, plain.targets) == {}
