"""The in-process frontier's ordering, end-of-crawl detection, ids, de-duplication and limits, without sockets."""

from __future__ import annotations

import asyncio

from crawlrunner.backends.base import RunLimits
from crawlrunner.backends.local import LocalFrontier, LocalState, numbered
from crawlrunner.follow import start_hosts
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
    await frontier.complete(first, [derived[0]])
    assert await frontier.claim() is derived[0]

    # Nothing left to start, but a request is in flight: the next claim waits for it.
    second, third = await frontier.claim(), await frontier.claim()
    assert (second, third) == (start[1], start[2])
    waiter = asyncio.create_task(frontier.claim())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await frontier.complete(derived[0], [derived[1]])
    assert await waiter is derived[1]

    for plan in (second, third, derived[1]):
        assert plan is not None
        await frontier.complete(plan, [])
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
    derived = frontier.admit(first, _outcome(first, _plans(2)))
    assert [(p.request_id, p.seq) for p in derived] == [(101, None), (102, None)]
    await frontier.complete(first, derived)
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
    frontier.admit(plan, _outcome(plan, records=3))  # counted before the outcome is written
    assert frontier.limited
    await frontier.complete(plan, [])
    assert await frontier.claim() is None


def _follow_spec() -> Spec:
    return load_spec_text(
        "name: f\ntargets:\n"
        "  - name: site\n    urls: [http://a.test/, http://a.test/#top, http://b.test/x]\n"
        "    follow: {links: a, max_pages: 5}\n"
        "    extract: {format: html, fields: {id: h1}}\n"
        "  - name: pages\n    parent: site\n    url: 'http://x.test/{id}'\n    follow: {links: a}\n"
    )


def _follower(spec: Spec, state: LocalState) -> LocalFrontier:
    """A frontier opened as a backend opens one: the start hosts worked out from the spec."""
    state.start_hosts = {t.name: start_hosts(t) for t in spec.targets if t.follow is not None}
    return LocalFrontier(spec.targets, state)


def _links(frontier: LocalFrontier, page: RequestPlan, *urls: str) -> list[str]:
    links = [RequestPlan(page.target, url, depth=page.depth + 1) for url in urls]
    return [p.url for p in frontier.admit(page, _outcome(page, links))]


async def test_followed_links_are_de_duplicated_across_the_run_and_kept_on_the_start_hosts() -> None:
    spec = _follow_spec()
    frontier = _follower(spec, LocalState(1, start=numbered(plan_target(spec.targets[0]))))
    page = await frontier.claim()
    assert page is not None and page.url == "http://a.test/"
    # A link to the other start host is admitted before that start URL was even
    # claimed: the hosts come from the spec, not from the order of the crawl.
    assert _links(frontier, page, "http://a.test/1", "http://b.test/2", "http://c.test/3") == [
        "http://a.test/1",
        "http://b.test/2",
    ]
    # The same URL with a fragment was a start request already: it is not claimed again.
    other = await frontier.claim()
    assert other is not None and other.url == "http://b.test/x"
    assert _links(frontier, page, "http://a.test/1") == []  # seen this run
    # max_pages (5) counts every URL the target requested: 4 so far.
    assert _links(frontier, page, "http://a.test/4", "http://a.test/5") == ["http://a.test/4"]


async def test_links_past_max_pages_are_counted_on_their_page_and_seen_or_foreign_ones_are_not() -> None:
    spec = _follow_spec()
    frontier = _follower(spec, LocalState(1, start=numbered(plan_target(spec.targets[0]))))
    page = await frontier.claim()
    assert page is not None

    def outcome(*urls: str) -> Outcome:
        return _outcome(page, [RequestPlan(page.target, url, depth=1) for url in urls])

    first = outcome("http://a.test/1", "http://a.test/2", "http://a.test/3", "http://a.test/4")
    assert len(frontier.admit(page, first)) == 4 and first.unfollowed == 0  # max_pages 5: the start URL and 4
    second = outcome("http://a.test/1", "http://c.test/", "http://a.test/9", "http://b.test/10")
    assert frontier.admit(page, second) == []
    # A link seen before and one off the target's hosts are not left out by max_pages: 9 and 10 are.
    assert second.unfollowed == 2


async def test_a_resumed_or_retrying_frontier_keeps_the_same_hosts_and_remembers_what_was_followed() -> None:
    spec = _follow_spec()
    site = spec.targets[0]
    resumed = _follower(spec, LocalState(10, followed=[("site", "http://a.test/1")]))
    page = RequestPlan(site, "http://b.test/x")  # a retried (or saved) page: no start request this session
    assert _links(resumed, page, "http://a.test/1", "http://a.test/2", "http://b.test/3", "http://c.test/") == [
        "http://a.test/2",
        "http://b.test/3",
    ]


async def test_a_child_target_that_follows_links_stays_on_the_host_of_each_page() -> None:
    spec = _follow_spec()
    pages = spec.targets[1]
    frontier = _follower(spec, LocalState(1))
    first = RequestPlan(pages, "http://x.test/a")
    second = RequestPlan(pages, "http://y.test/b")
    assert _links(frontier, first, "http://x.test/1", "http://y.test/1") == ["http://x.test/1"]
    assert _links(frontier, second, "http://x.test/2", "http://y.test/2") == ["http://y.test/2"]


async def test_a_request_released_by_a_stop_is_not_handed_out_again_in_this_session() -> None:
    frontier = _frontier(_plans(2))
    first = await frontier.claim()
    assert first is not None
    await frontier.release(first)  # it stays to do for the run's resume, from what the sink committed
    second = await frontier.claim()
    assert second is not None and second.url != first.url
    await frontier.complete(second, [])
    assert await frontier.claim() is None
