"""The frontier: what is left to fetch, and how to know the crawl is over.

Start requests come lazily from the plan; derived requests (next pages,
followed links, child requests) are queued by workers as pages are processed
and are served first, so chains keep moving and memory stays small. The crawl
is over when the plan is exhausted, nothing is queued and no request is in
flight (an in-flight page may still derive more work).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from .plan import RequestPlan


class Frontier:
    def __init__(self, start: Iterator[RequestPlan], admit: Callable[[RequestPlan], bool] | None = None) -> None:
        self._start: Iterator[RequestPlan] | None = start
        self._admit = admit
        self._derived: deque[RequestPlan] = deque()
        self._in_flight = 0
        self._closed = False
        self._changed = asyncio.Condition()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def _next_start(self) -> RequestPlan | None:
        while self._start is not None:
            plan = next(self._start, None)
            if plan is None:
                self._start = None
            elif self._admit is None or self._admit(plan):
                return plan
        return None

    async def get(self) -> RequestPlan | None:
        """The next request to fetch, or None once the crawl is over."""
        async with self._changed:
            while True:
                if self._closed:
                    return None
                plan = self._derived.popleft() if self._derived else self._next_start()
                if plan is not None:
                    self._in_flight += 1
                    return plan
                if self._in_flight == 0:
                    self._changed.notify_all()
                    return None
                await self._changed.wait()

    async def done(self, derived: Iterable[RequestPlan] = ()) -> None:
        """A request taken with ``get`` is finished; queue what it led to."""
        async with self._changed:
            before = len(self._derived)
            self._derived.extend(derived)
            self._in_flight -= 1
            if self._in_flight == 0:
                self._changed.notify_all()  # maybe the end: every waiter must see it
            elif len(self._derived) > before:
                self._changed.notify(len(self._derived) - before)

    async def close(self) -> None:
        """Hand out no more work (a graceful stop); requests in flight may finish."""
        async with self._changed:
            self._closed = True
            self._changed.notify_all()
