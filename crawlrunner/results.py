"""What flows from the fetcher through extraction to storage.

Plain dataclasses with no I/O, so every stage can be tested on its own.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .errors import ErrorKind

if TYPE_CHECKING:
    from .plan import RequestPlan


_second_text: tuple[int, str] = (-1, "")


def utc_now() -> str:
    """The current time as an ISO 8601 UTC string, as stored in the database.

    ``2026-01-02T03:04:05.678+00:00``, as ``isoformat(timespec="milliseconds")``
    writes it; the text up to the second is made once per second, since this
    runs several times per request.
    """
    global _second_text
    now = time.time()
    second = int(now)
    if _second_text[0] != second:
        _second_text = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{_second_text[1]}.{int((now - second) * 1000):03d}+00:00"


@dataclass(slots=True)
class FetchResult:
    """The outcome of one request: a response, or the reason there is none."""

    target: str
    method: str
    url: str
    fetched_at: str
    final_url: str | None = None
    status: int | None = None
    content_type: str | None = None
    charset: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    body: bytes = field(default=b"", repr=False)
    body_path: str | None = None  # where a downloaded body was written
    body_bytes: int = 0  # its size
    elapsed: float = 0.0
    attempts: int = 1
    error_kind: ErrorKind | None = None  # a constant, never a string of its own
    error: str | None = None
    throttled: int = 0  # attempts answered 429 (a host slowing us down)
    unavailable: int = 0  # attempts answered 503

    @property
    def ok(self) -> bool:
        return self.error_kind is None

    @property
    def size(self) -> int:
        """Bytes received: in memory, or written to ``body_path``."""
        return self.body_bytes if self.body_path else len(self.body)


class ChainStop(StrEnum):
    """Why a pagination chain ended, as stored in the ``chain_ends`` table."""

    NO_NEXT = "no_next"  # no next link, URL or cursor on the page
    EMPTY_PAGE = "empty_page"  # the page held no records (stop_on_empty)
    HAS_MORE_FALSE = "has_more_false"  # the page's has_more said no
    TOTAL_REACHED = "total_reached"  # total / total_pages reached
    SHORT_PAGE = "short_page"  # an offset page shorter than its limit
    MAX_PAGES = "max_pages"  # the spec's max_pages cut it
    LOOP = "loop"  # the next page was one the chain had already fetched
    FAILED = "failed"  # the page's request failed


# The stops that cut a chain short: pages the site has were not fetched.
TRUNCATING_STOPS = frozenset({ChainStop.MAX_PAGES, ChainStop.LOOP, ChainStop.FAILED})


@dataclass(frozen=True, slots=True)
class ChainEnd:
    """The page where a pagination chain ended, and why."""

    reason: ChainStop
    pages: int  # pages the chain fetched, this one included
    items: int  # records its pages held (before any was dropped)

    @property
    def truncated(self) -> bool:
        return self.reason in TRUNCATING_STOPS


@dataclass(slots=True)
class LedTo:
    """What a page led to when it was last fetched whole: kept with its validators, replayed on its 304.

    The candidates extract derived from it, before the frontier's admission,
    so that the run replaying them decides again which it makes (links seen
    before, ``max_pages``, hosts). See ``extract.recrawl``.
    """

    next_page: RequestPlan | None = None  # pagination: the page after this one
    stop: ChainStop | None = None  # or why its chain ended on it
    items: int = 0  # records the page held (kept or dropped): the chain's count goes on from them
    links: list[RequestPlan] = field(default_factory=list)  # links to follow, past max_depth too
    children: list[RequestPlan] = field(default_factory=list)  # child-target requests of its records
    child_targets: tuple[str, ...] = ()  # the child targets they were derived for


@dataclass(slots=True)
class SitemapCut:
    """What a sitemap document's limits left out (``seeds: {sitemap: ...}``): on its outcome when one was reached."""

    bytes_read: int | None = None  # max_bytes stopped the reading after this many bytes
    sitemaps: int = 0  # nested sitemaps beyond max_depth, not read
    urls: int = 0  # page URLs beyond max_urls (this document's, or the run's), not fetched


@dataclass(slots=True)
class Outcome:
    """A fetch and what extraction made of it: the unit the store commits.

    ``derived`` holds the requests the page led to (next page, followed
    links, child requests); they go back to the frontier, not to the store.
    """

    fetch: FetchResult
    plan: RequestPlan | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    items: int = 0  # records found in the document, kept or dropped
    extracted: bool = False  # the target's records selector ran on the page (``items`` is its count)
    dropped: int = 0
    field_errors: int = 0
    field_error_examples: dict[str, str] = field(default_factory=dict)  # field → first message
    unconverted: Counter[str] | None = None  # field → values that could not be converted (None: none)
    derived: list[RequestPlan] = field(default_factory=list)
    chain_end: ChainEnd | None = None  # this page ended its pagination chain
    led_to: LedTo | None = None  # a conditional target's whole page: what it led to, for its next 304
    skipped: str | None = None  # why the request was not sent (robots.txt): no fetch, a "skipped" request
    sitemap_cut: SitemapCut | None = None  # a sitemap document a limit cut short
    unfollowed: int = 0  # new links on the page that follow.max_pages left out (set by the frontier)
