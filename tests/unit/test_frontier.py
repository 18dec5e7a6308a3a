"""The frontier's ordering and its end-of-crawl detection, without sockets."""

from __future__ import annotations

import asyncio

from crawlrunner.frontier import Frontier
from crawlrunner.plan import RequestPlan, plan_target
from crawlrunner.spec import load_spec_text


def _plans(n: int) -> list[RequestPlan]:
    spec = load_spec_text(
        f"name: p\nhttp: {{base_url: 'http://h'}}\ntargets:\n  - {{name: t, url: '/{{i}}', vars: {{i: {{from: 1, to: {n}}}}}}}\n"
    )
    return list(plan_target(spec.targets[0]))


async def test_derived_work_is_served_before_more_start_requests_and_the_end_waits_for_it() -> None:
    start = _plans(3)
    derived = _plans(5)[3:]
    frontier = Frontier(iter(start))

    first = await frontier.get()
    assert first is start[0]
    await frontier.done([derived[0]])
    assert await frontier.get() is derived[0]

    # Nothing left to start, but a request is in flight: the next get waits for it.
    second, third = await frontier.get(), await frontier.get()
    assert (second, third) == (start[1], start[2])
    waiter = asyncio.create_task(frontier.get())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await frontier.done([derived[1]])
    assert await waiter is derived[1]

    for _ in range(3):
        await frontier.done()
    async with asyncio.timeout(1):
        assert await frontier.get() is None


async def test_every_waiting_worker_learns_the_crawl_is_over() -> None:
    frontier = Frontier(iter(_plans(1)))
    taken = await frontier.get()
    assert taken is not None
    waiters = [asyncio.create_task(frontier.get()) for _ in range(4)]
    await asyncio.sleep(0.01)
    await frontier.done()
    async with asyncio.timeout(1):
        assert await asyncio.gather(*waiters) == [None] * 4
