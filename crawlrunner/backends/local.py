"""The frontier: what is left to fetch, and how to know the crawl is over.

Start requests come lazily from the plan; derived requests (next pages,
followed links, child requests) are queued by workers as pages are processed
and are served first, so chains keep moving and memory stays small. The crawl
is over when the plan is exhausted, nothing is queued and no request is in
flight (an in-flight page may still derive more work).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .plan import PageChain, RequestPlan
from .secrets import MissingSecret
from .spec.model import Spec


class Frontier:
    def __init__(self, start: Iterator[RequestPlan], admit: Callable[[RequestPlan], bool] | None = None) -> None:
        self._start: Iterator[RequestPlan] | None = start
        self._admit = admit
        self._derived: deque[RequestPlan] = deque()
        self._in_flight = 0
        self._closed = False
        self._waiting = 0
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
        # No await between looking and taking: on one event loop that is atomic,
        # so the lock is needed only to wait.
        while True:
            if self._closed:
                return None
            plan = self._derived.popleft() if self._derived else self._next_start()
            if plan is not None:
                self._in_flight += 1
                return plan
            if self._in_flight == 0:
                await self._wake_all()
                return None
            async with self._changed:
                self._waiting += 1
                try:
                    # Checked again under the lock: a request may have finished
                    # while this one was getting it, with nobody to notify yet.
                    await self._changed.wait_for(self._may_change)
                finally:
                    self._waiting -= 1

    def _may_change(self) -> bool:
        return self._closed or bool(self._derived) or self._start is not None or self._in_flight == 0

    async def _wake_all(self) -> None:
        if self._waiting:
            async with self._changed:
                self._changed.notify_all()

    async def done(self, derived: Iterable[RequestPlan] = (), *, taken: bool = True) -> None:
        """A request taken with ``get`` is finished; queue what it led to.

        ``taken=False`` queues requests without finishing one (a resume's
        saved requests).
        """
        before = len(self._derived)
        self._derived.extend(derived)
        if taken:
            self._in_flight -= 1
        if not self._waiting:
            return
        async with self._changed:
            if self._in_flight == 0:
                self._changed.notify_all()  # maybe the end: every waiter must see it
            elif len(self._derived) > before:
                self._changed.notify(len(self._derived) - before)

    async def close(self) -> None:
        """Hand out no more work (a graceful stop); requests in flight may finish."""
        async with self._changed:
            self._closed = True
            self._changed.notify_all()


def restore_plan(spec: Spec, row: tuple[Any, ...]) -> RequestPlan | None:
    """A request saved by the writer, back as a plan (None if its target is gone).

    Secrets were stored as references; they are filled in from the spec and
    environment of this run. A secret that is no longer there makes the
    request invalid (recorded as failed) rather than sent without it.
    """
    request_id, target_name, seq, method, url, headers, body, depth, page, chain_pages, chain_items, parent = row
    try:
        target = spec.target(target_name)
    except KeyError:
        return None
    detokenize = spec.redactor.detokenize
    chain = None
    if target.paginate is not None:
        chain = PageChain(pages=chain_pages or 1, items=chain_items or 0)
    try:
        payload = json.loads(detokenize(body)) if body else {}
        plan = RequestPlan(
            target,
            detokenize(url),
            method,
            json.loads(detokenize(headers)) if headers else {},
            json_body=payload.get("json"),
            data=payload.get("data"),
            depth=depth,
            page=page,
            chain=chain,
            parent=json.loads(detokenize(parent)) if parent else None,
            seq=seq,
            request_id=request_id,
        )
    except MissingSecret as exc:
        return RequestPlan(target, redacted_url(url), method, invalid=str(exc), request_id=request_id, seq=seq)
    return plan


def redacted_url(url: str) -> str:
    return re.sub(r"\$\{secret:[^}]*\}", "***", url)


def numbered(
    plans: Iterator[RequestPlan], *, skip_below: int = 0, skip: set[int] | None = None
) -> Iterator[RequestPlan]:
    """Start requests numbered in plan order, without those already done."""
    for seq, plan in enumerate(plans):
        if seq < skip_below or (skip and seq in skip):
            continue
        plan.seq = seq  # a fresh plan, not yet shared
        yield plan
