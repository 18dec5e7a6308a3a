"""The test server of the distributed tests: slow on purpose, and keeping a log of every arrival.

One :class:`Site` per test (served by the ``site`` fixture on a port of its
own), so nothing is shared between tests: each has its own counters, its own
host for the workers' politeness, and its own latency.

Routes:

- ``/api/items?page=N``: a paginated JSON list (``pages`` pages of
  ``per_page`` items with unique ``id``\\ s; ``next`` holds the next page's
  URL, null on the last page). Each item names its detail URL.
- ``/api/items/{id}``: one item's details (the child of a list item).
- ``/site/{n}.html``: an HTML site for link following: ``site_pages``
  pages, each linking to three others (see :func:`site_links`) and to some of
  them twice (once with a fragment), so many pages are linked from many
  others and the workers must agree on who fetches which.
- ``/paced/{n}``: a small JSON document, for pacing tests.
- ``/cool/{n}``: like ``/paced``, except that one request, the one that
  arrives after ``Site.busy_after`` others, is answered ``429`` with
  ``Retry-After`` (so that it comes when every worker is busy; without it
  when ``Site.retry_after`` is empty).
- ``/slow/{n}``: answers after ``slow_seconds``, counting how many requests
  are in the handler at once (``peak``).

Every request's arrival is logged (``time.monotonic()``, in this process:
the workers' clocks never matter) before the latency is slept.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Arrival:
    at: float  # time.monotonic() when the handler started
    host: str  # the Host header: host and port
    path: str  # path and query string
    status: int
    peer: str  # the client's address and port: one per connection


def site_links(n: int, pages: int) -> list[int]:
    """The pages page ``n`` links to: a binary tree's children, and one page further on (wrapping)."""
    return [(2 * n + 1) % pages, (2 * n + 2) % pages, (n * 7 + 3) % pages]


def reachable(pages: int, start: int = 0) -> set[int]:
    """Every page link following reaches from ``start`` (with no depth or page limit)."""
    seen, todo = {start}, [start]
    while todo:
        for m in site_links(todo.pop(), pages):
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return seen


@dataclass
class Site:
    """One test's server: its settings and what it saw."""

    url: str = ""  # set once it is served
    pages: int = 20  # of the JSON list
    per_page: int = 10
    site_pages: int = 60
    latency: tuple[float, float] = (0.02, 0.05)  # seconds, uniform, slept by every route but /slow
    slow_seconds: float = 0.3
    busy_after: int = 0  # /cool/: the request arriving after this many others is answered 429 (0: none)
    retry_after: str = "1"
    arrivals: list[Arrival] = field(default_factory=list)
    served: Counter[str] = field(default_factory=Counter)  # path and query → 2xx answers
    in_flight: int = 0
    peak: int = 0
    _cool_arrivals: int = 0

    # -- what the test expects ------------------------------------------------------------

    @property
    def item_ids(self) -> set[int]:
        return set(range(1, self.pages * self.per_page + 1))

    def list_path(self, page: int) -> str:
        return f"/api/items?page={page}"

    @property
    def list_paths(self) -> set[str]:
        return {self.list_path(page) for page in range(1, self.pages + 1)}

    @property
    def detail_paths(self) -> set[str]:
        return {f"/api/items/{i}" for i in self.item_ids}

    @property
    def site_numbers(self) -> set[int]:
        return reachable(self.site_pages)

    @property
    def site_paths(self) -> set[str]:
        return {f"/site/{n}.html" for n in self.site_numbers}

    def arrivals_at(self, prefix: str) -> list[Arrival]:
        return [a for a in self.arrivals if a.path.startswith(prefix)]

    # -- the routes ------------------------------------------------------------------------

    def _arrive(self, request: web.Request, status: int = 200) -> None:
        at = time.monotonic()
        peer = request.transport.get_extra_info("peername") if request.transport is not None else None
        self.arrivals.append(Arrival(at, request.host, request.path_qs, status, f"{peer[0]}:{peer[1]}" if peer else ""))

    async def _sleep(self) -> None:
        await asyncio.sleep(random.uniform(*self.latency))

    def _ok(self, request: web.Request) -> None:
        self.served[request.path_qs] += 1

    async def items(self, request: web.Request) -> web.Response:
        self._arrive(request)
        await self._sleep()
        page = int(request.query.get("page", "1"))
        if not 1 <= page <= self.pages:
            return web.json_response({"items": [], "next": None}, status=404)
        first = (page - 1) * self.per_page + 1
        items = [{"id": i, "detail": f"/api/items/{i}"} for i in range(first, first + self.per_page)]
        following = self.list_path(page + 1) if page < self.pages else None
        self._ok(request)
        return web.json_response({"page": page, "items": items, "next": following})

    async def item(self, request: web.Request) -> web.Response:
        self._arrive(request)
        await self._sleep()
        item_id = int(request.match_info["id"])
        self._ok(request)
        return web.json_response({"id": item_id, "name": f"item {item_id}", "price": item_id * 1.5})

    async def page(self, request: web.Request) -> web.Response:
        self._arrive(request)
        await self._sleep()
        n = int(request.match_info["n"])
        links = site_links(n, self.site_pages)
        anchors = "".join(f"<li><a href='/site/{m}.html'>page {m}</a></li>" for m in links)
        # The same pages again, one with a fragment: duplicates within a page too.
        anchors += f"<li><a href='/site/{links[0]}.html#top'>again</a></li><li><a href='{n}.html'>self</a></li>"
        self._ok(request)
        return web.Response(
            text=f"<html><body><h1 data-n='{n}'>Page {n}</h1><ul>{anchors}</ul></body></html>",
            content_type="text/html",
        )

    async def paced(self, request: web.Request) -> web.Response:
        self._arrive(request)
        await self._sleep()
        self._ok(request)
        return web.json_response({"n": int(request.match_info["n"])})

    async def cool(self, request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        self._cool_arrivals += 1
        if self._cool_arrivals == self.busy_after + 1 and self.busy_after:
            self._arrive(request, 429)
            said = {"Retry-After": self.retry_after} if self.retry_after else {}  # "": no Retry-After
            return web.json_response({"error": "slow down"}, status=429, headers=said)
        self._arrive(request)
        await self._sleep()
        self._ok(request)
        return web.json_response({"n": n})

    async def slow(self, request: web.Request) -> web.Response:
        self._arrive(request)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.slow_seconds)
        finally:
            self.in_flight -= 1
        self._ok(request)
        return web.json_response({"n": int(request.match_info["n"])})

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/items", self.items)
        app.router.add_get("/api/items/{id:\\d+}", self.item)
        app.router.add_get("/site/{n:\\d+}.html", self.page)
        app.router.add_get("/paced/{n:\\d+}", self.paced)
        app.router.add_get("/cool/{n:\\d+}", self.cool)
        app.router.add_get("/slow/{n:\\d+}", self.slow)
        return app
