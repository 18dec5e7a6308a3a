"""Incremental cursors without sockets: how values compare and move back, scopes, and the sink's bookkeeping."""

from __future__ import annotations

from typing import Any

import pytest

from crawlrunner.backends.cursors import merged, reached, start_points
from crawlrunner.incremental import Cursors, Incremental, Known, largest, order_key
from crawlrunner.plan import RequestPlan, child_requests, plan_target
from crawlrunner.results import FetchResult, Outcome
from crawlrunner.secrets import Redactor
from crawlrunner.spec import load_spec_text
from crawlrunner.spec.model import Spec

SPEC = """
name: shop
http: {base_url: "https://api.example"}
targets:
  - name: orders
    url: /orders
    params: {since: "{incremental}"}
    incremental: {cursor: updated_at, initial: 2024-01-01T00:00:00Z, lag: 90}
    extract: {records: orders, fields: {id: id, updated_at: {jmespath: updated_at, type: datetime}}}
  - name: lines
    parent: orders
    url: /orders/{id}/lines?after={incremental}
    incremental: {cursor: version, initial: 10, lag: 2}
    extract: {fields: {version: {jmespath: version, type: int}}}
"""


@pytest.fixture
def spec() -> Spec:
    return load_spec_text(SPEC)


@pytest.mark.parametrize(
    ("values", "type_", "expected"),
    [
        # The larger text, the earlier instant: offsets count.
        (["2024-05-01T12:00:00+02:00", "2024-05-01T11:00:00+00:00"], "datetime", "2024-05-01T11:00:00+00:00"),
        (["2024-05-01T06:30:00-04:00", "2024-05-01T10:00:00Z"], "datetime", "2024-05-01T06:30:00-04:00"),
        # Without an offset: UTC.
        (["2024-05-01T10:00:00", "2024-05-01T11:00:00+02:00"], "datetime", "2024-05-01T10:00:00"),
        (["2024-05-09", "2024-05-10", "2023-12-31"], "date", "2024-05-10"),
        ([9, 10, 2], "int", 10),  # as text, "9" would win
        ([1.5, 12.25, -3.0], "number", 12.25),
    ],
)
def test_values_compare_as_what_they_are(values: list[Any], type_: Any, expected: Any) -> None:
    assert largest(values, type_) == expected


@pytest.mark.parametrize(("value", "type_"), [("7", "int"), (True, "int"), (3, "date"), ("soon", "datetime")])
def test_a_value_of_another_type_does_not_compare(value: Any, type_: Any) -> None:
    with pytest.raises(ValueError):
        order_key(value, type_)


@pytest.mark.parametrize(
    ("incremental", "stored", "sent"),
    [
        (
            Incremental("t", "datetime", "2024-01-01T00:00:00Z", 3600),
            "2024-05-01T10:00:00+00:00",
            "2024-05-01T09:00:00Z",
        ),
        # Z style: other offsets are written in UTC too.
        (Incremental("t", "datetime", "2024-01-01T00:00:00Z", 0), "2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00Z"),
        # Otherwise the value keeps its own offset, or its lack of one.
        (
            Incremental("t", "datetime", "2024-01-01T00:00:00+00:00", 60),
            "2024-05-01T12:00:00+02:00",
            "2024-05-01T11:59:00+02:00",
        ),
        (
            Incremental("t", "datetime", "2024-01-01T00:00:00Z", 1.5),
            "2024-05-01T12:00:00",
            "2024-05-01T11:59:58.500000",
        ),
        # A date goes back whole days, rounded up.
        (Incremental("t", "date", "2024-01-01", 0), "2024-05-10", "2024-05-10"),
        (Incremental("t", "date", "2024-01-01", 3600), "2024-05-10", "2024-05-09"),
        (Incremental("t", "date", "2024-01-01", 2 * 86400), "2024-03-01", "2024-02-28"),
        # The field's date_format: how the site writes dates, so how it reads them.
        (Incremental("t", "date", "01/01/2024", 86400, date_format="%d/%m/%Y"), "2024-05-10", "09/05/2024"),
        (Incremental("t", "int", 0, 5), 120, 115),
        (Incremental("t", "number", 0.0, 0.5), 12.25, 11.75),
    ],
)
def test_the_next_run_starts_lag_behind_the_largest_value_written_as_the_field_writes_it(
    incremental: Incremental, stored: Any, sent: Any
) -> None:
    assert incremental.behind(stored) == sent


def test_a_childs_cursor_is_scoped_by_the_parent_values_its_request_uses(spec: Spec) -> None:
    lines = spec.target("lines").incremental
    assert lines is not None and lines.scope_names == ("id",)
    assert lines.scope({"id": 5, "updated_at": "2024-05-01T10:00:00+00:00"}) == '{"id":5}'
    assert lines.scope(None) == ""
    linked = Incremental("v", "int", 0, scope_names=("url",), url_field="link")
    assert linked.scope({"link": "/a?b=1", "id": 3}) == '{"url":"/a?b=1"}'


def test_the_spec_keeps_initial_as_written_even_unquoted(spec: Spec) -> None:
    orders = spec.target("orders").incremental
    assert orders == Incremental("updated_at", "datetime", "2024-01-01T00:00:00Z", 90)
    assert orders.zulu


def test_requests_render_initial_without_cursors_and_each_parents_own_cursor_with_them(spec: Spec) -> None:
    orders, lines = spec.target("orders"), spec.target("lines")
    known = {("orders", ""): Known("2024-05-01T10:00:00+00:00", 3), ("lines", '{"id":5}'): Known(40, 3)}
    cursors = Cursors(known)

    assert [p.url for p in plan_target(orders)] == ["https://api.example/orders?since=2024-01-01T00%3A00%3A00Z"]
    assert [p.url for p in plan_target(orders, cursors)] == [
        "https://api.example/orders?since=2024-05-01T09%3A58%3A30Z"
    ]
    assert [p.url for p in child_requests(lines, {"id": 5}, "https://api.example/orders", cursors)] == [
        "https://api.example/orders/5/lines?after=38"
    ]
    assert [p.url for p in child_requests(lines, {"id": 6}, "https://api.example/orders", cursors)] == [
        "https://api.example/orders/6/lines?after=10"  # a parent without a cursor: initial
    ]


def _outcome(spec: Spec, target: str, records: list[dict[str, Any]], *, parent: Any = None, ok: bool = True) -> Outcome:
    plan = RequestPlan(spec.target(target), "https://api.example/x", parent=parent)
    fetch = FetchResult(target, "GET", plan.url, "2024-01-01T00:00:00+00:00", status=200 if ok else 500)
    if not ok:
        from crawlrunner.errors import ErrorKind

        fetch.error_kind = ErrorKind.HTTP_STATUS
    return Outcome(fetch, plan, records=records)


def test_a_batch_reaches_the_largest_value_per_scope_and_a_failure_marks_its_scope(spec: Spec) -> None:
    batch = [
        _outcome(spec, "orders", [{"updated_at": "2024-05-01T12:00:00+02:00"}, {"updated_at": None}]),
        _outcome(spec, "orders", [{"updated_at": "2024-05-01T11:00:00+00:00"}]),
        _outcome(spec, "lines", [{"version": 4}, {"version": 9}], parent={"id": 1}),
        _outcome(spec, "lines", [], parent={"id": 2}, ok=False),
        _outcome(spec, "lines", [{"version": 12}], parent={"id": 2}),  # after the failure: still not moved
    ]

    assert reached(batch, Redactor()) == {
        ("orders", ""): "2024-05-01T11:00:00+00:00",
        ("lines", '{"id":1}'): 9,
        ("lines", '{"id":2}'): None,
    }


def test_a_run_keeps_its_largest_value_and_a_failed_scope_stays_null(spec: Spec) -> None:
    found = {("lines", '{"id":1}'): 9, ("lines", '{"id":2}'): 12, ("lines", '{"id":3}'): None, ("lines", '{"id":4}'): 1}
    stored = {("lines", '{"id":1}'): "20", ("lines", '{"id":2}'): "null", ("lines", '{"id":3}'): "5"}

    assert merged(found, stored, spec) == [("lines", '{"id":3}', "null"), ("lines", '{"id":4}', "1")]


def test_a_run_starts_from_the_largest_value_of_completed_runs(spec: Spec, caplog: pytest.LogCaptureFixture) -> None:
    rows = [
        ("orders", "", '"2024-05-01T10:00:00+00:00"', 1),
        ("orders", "", '"2024-05-01T11:00:00+02:00"', 2),  # earlier, though the larger text
        ("lines", '{"id":1}', "7", 1),
        ("lines", '{"id":1}', "null", 2),  # a failure in run 2: run 1's value stands
        ("lines", '{"id":2}', "3", 1),
        ("lines", '{"id":2}', "3", 2),  # a tie: the later run is named
        ("lines", '{"id":3}', '"2024-01-01"', 2),  # not an int (the field's type changed): ignored
        ("gone", "", "5", 2),  # a target no longer in the spec
    ]

    cursors = start_points(rows, spec)

    assert cursors.known == {
        ("orders", ""): Known("2024-05-01T10:00:00+00:00", 1),
        ("lines", '{"id":1}'): Known(7, 1),
        ("lines", '{"id":2}'): Known(3, 2),
    }
    assert "lines: cursor '2024-01-01' of run 2 is not a int; ignored" in caplog.text
    assert cursors.value(spec.target("lines"), {"id": 1}) == 5
