"""The in-process frontier's ordering, end-of-crawl detection, ids, de-duplication and limits, without sockets."""

from __future__ import annotations

import asyncio

from crawlrunner.backends.base import RunLimits
from crawlrunner.backends.local import LocalFrontier, LocalState, numbered
from crawlrunner.plan import RequestPlan, plan_target
from crawlrunner.results import FetchResult, Outcome
from crawlrunner.spec import load_spec_text
from crawlrunner.spec.model import Spec


def _spec(n: int) -> Spec:
    return load_spec_text(
        f"name: p\nhttp: {{base_url: 'http://h'}}\ntargets:\n  - {{name: t, url: '/{{i}}', vars: {{i: {{from: 1, to: {n}}}}}}}\n"
    )


def _plans(n: int) -> list[RequestPlan]:
    return list(plan_target(_spec(n).targets[0]))


def _frontier(start: list[RequestPlan], limits: RunLimits | None = None) -> LocalFrontier:
    return LocalFrontier([start[0].target] if start else [], LocalState(1, start=iter(start)), limits)


def _outcome(plan: RequestPlan, derived: list[RequestPlan] = (), records: int = 0) -> Outcome:  # type: ignore[assignment]
    fetch = FetchResult(plan.target.name, plan.method, plan.url, "")
    return Outcome(fetch, plan, records=[{}] * records, derived=list(derived))


async def test_derived_work_is_served_before_more_start_requests_and_the_end_waits_for_it() -> None:
    start = _plans(3)
    derived = _plans(5)[3:]
    frontier = _frontier(start)

    first = await frontier.claim()
    assert first is start[0]
    await frontier.complete(first, _outcome(first, [derived[0]]))
    assert await frontier.claim() is derived[0]

    # Nothing left to start, but a request is in flight: the next claim waits for it.
    second, third = await frontier.claim(), await frontier.claim()
    assert (second, third) == (start[1], start[2])
    waiter = asyncio.create_task(frontier.claim())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await frontier.complete(derived[0], _outcome(derived[0], [derived[1]]))
    assert await waiter is derived[1]

    for plan in (second, third, derived[1]):
        assert plan is not None
        await frontier.complete(plan, None)
    async with asyncio.timeout(1):
        assert await frontier.claim() is None


async def test_every_waiting_worker_learns_the_crawl_is_over() -> None:
    frontier = _frontier(_plans(1))
    taken = await frontier.claim()
    assert taken is not None
    waiters = [asyncio.create_task(frontier.claim()) for _ in range(4)]
    await asyncio.sleep(0.01)
    await frontier.release(taken)
    async with asyncio.timeout(1):
        assert await asyncio.gather(*waiters) == [None] * 4


async def test_claimed_and_admitted_requests_get_ids_from_the_run_range_and_start_requests_keep_their_number() -> None:
    spec = _spec(4)
    state = LocalState(100, start=numbered(plan_target(spec.targets[0]), skip_below=1, skip={2}))
    frontier = LocalFrontier(spec.targets, state)
    first = await frontier.claim()
    assert first is not None and (first.seq, first.request_id) == (1, 100)
    derived = frontier.admit(first, _plans(2))
    assert [(p.request_id, p.seq) for p in derived] == [(101, None), (102, None)]
    await frontier.complete(first, _outcome(first, derived))
    second = await frontier.claim()  # a derived request first; it keeps its id
    assert second is derived[0] and second.request_id == 101
    third = await frontier.claim()
    assert third is derived[1]
    fourth = await frontier.claim()  # then the plan again, without the start request already done
    assert fourth is not None and (fourth.seq, fourth.request_id) == (3, 103)


async def test_max_requests_and_max_records_close_the_frontier_and_say_so() -> None:
    frontier = _frontier(_plans(5), RunLimits(max_requests=2))
    assert await frontier.claim() is not None
    assert not frontier.limited
    assert await frontier.claim() is not None
    assert frontier.limited
    assert await frontier.claim() is None

    frontier = _frontier(_plans(5), RunLimits(max_records=3))
    plan = await frontier.claim()
    assert plan is not None
    await frontier.complete(plan, _outcome(plan, records=3))
    assert frontier.limited
    assert await frontier.claim() is None


def _follow_spec() -> Spec:
    return load_spec_text(
        "name: f\ntargets:\n"
        "  - name: site\n    urls: [http://a.test/, http://a.test/#top, http://b.test/x]\n"
        "    follow: {links: a, max_pages: 5}\n"
    )


async def test_followed_links_are_de_duplicated_across_the_run_and_kept_on_the_start_hosts() -> None:
    spec = _follow_spec()
    target = spec.targets[0]
    frontier = LocalFrontier(spec.targets, LocalState(1, start=numbered(plan_target(target))))
    page = await frontier.claim()
    assert page is not None and page.url == "http://a.test/"
    # The same URL with a fragment was a start request already: it is not claimed again.
    other = await frontier.claim()
    assert other is not None and other.url == "http://b.test/x"

    def link(url: str) -> RequestPlan:
        return RequestPlan(target, url, depth=1)

    admitted = frontier.admit(page, [link("http://a.test/1"), link("http://b.test/2"), link("http://c.test/3")])
    assert [p.url for p in admitted] == ["http://a.test/1", "http://b.test/2"]
    assert frontier.admit(page, [link("http://a.test/1")]) == []  # seen this run
    # max_pages (5) counts every URL the target requested: 4 so far.
    assert [p.url for p in frontier.admit(page, [link("http://a.test/4"), link("http://a.test/5")])] == [
        "http://a.test/4"
    ]


async def test_a_resumed_frontier_remembers_what_the_run_followed() -> None:
    spec = _follow_spec()
    target = spec.targets[0]
    state = LocalState(10, followed=[("site", "http://a.test/", 0), ("site", "http://a.test/1", 1)])
    frontier = LocalFrontier(spec.targets, state)
    page = RequestPlan(target, "http://a.test/")
    admitted = frontier.admit(page, [RequestPlan(target, u, depth=1) for u in ("http://a.test/1", "http://a.test/2")])
    assert [p.url for p in admitted] == ["http://a.test/2"]
    # b.test was never a start host of this run's resumed part: its links stay out.
    assert frontier.admit(page, [RequestPlan(target, "http://b.test/y", depth=1)]) == []
