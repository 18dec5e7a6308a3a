"""Pagination: from one page, the request for the next one, or None to stop.

One small machine per style, each in its own module and registered under
its ``type`` in ``PAGINATORS`` (``base.paginator``):

    next_url     the next URL is in the body (JMESPath, CSS or XPath)
    link_header  the Link header's rel="next"
    page_number  ?page=N, N+1, ...                     (counter.py)
    offset       ?offset=K, K+limit, ... (with ?limit=)  (counter.py)
    cursor       a token from the body or a header, sent back with the next request

Counters and cursors go where ``in`` says (``plan.with_page_value``): the
query, a header (cursors), or the request body, a JSON path or a form field.

Adding a style: a module here registering its machine, its keys in
``spec.pagination.STYLES`` and its name in the schema's enum (a test holds
the three together).

Stop rules shared by all: no next link or cursor, an empty page, a false
``has_more``, a reached ``total``/``total_pages``, ``max_pages``, and a loop
guard: a next page already seen in this chain (``plan.page_key``: its URL,
and its body or header when the page is there) stops it with a warning
instead of looping forever. Every end is a ``ChainEnd`` with its
``ChainStop`` reason, which the page's outcome carries to the database.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..plan import PageChain, RequestPlan, page_key
from ..results import ChainEnd, ChainStop

# Importing a style's module registers it.
from . import counter, cursor, next_url  # noqa: F401
from .base import PAGINATORS, truthy
from .link_header import next_link

if TYPE_CHECKING:
    from ..document import Page
    from ..spec.model import Paginate

__all__ = ["PAGINATORS", "failed_page", "next_link", "next_page", "unchanged_page"]

log = logging.getLogger(__name__)


def next_page(plan: RequestPlan, page: Page, records: int) -> RequestPlan | ChainEnd | None:
    """The request for the page after ``plan``'s, or where and why the chain ends (None: no pagination)."""
    paginate = plan.target.paginate
    if paginate is None:
        return None
    chain = plan.chain or PageChain(seen={page_key(plan, paginate)})
    chain.items += records

    def end(reason: ChainStop) -> ChainEnd:
        return ChainEnd(reason, chain.pages, chain.items)

    if records == 0 and paginate.stop_on_empty:
        return end(ChainStop.EMPTY_PAGE)
    if paginate.has_more is not None and not truthy(page.first(paginate.has_more)):
        return end(ChainStop.HAS_MORE_FALSE)
    if chain.pages >= paginate.max_pages:
        log.warning("%s: stopped after max_pages=%d at %s", plan.target.name, paginate.max_pages, page.url)
        return end(ChainStop.MAX_PAGES)
    style = PAGINATORS[paginate.type]
    follow_up = style.advance(plan, page, paginate, chain, records)
    if follow_up is None:
        return end(ChainStop.NO_NEXT)
    if isinstance(follow_up, ChainStop):
        return end(follow_up)
    return _onward(plan, follow_up, chain, page.url)


def unchanged_page(
    plan: RequestPlan, follow_up: RequestPlan | None, stop: ChainStop | None, items: int
) -> RequestPlan | ChainEnd | None:
    """For a page that did not change (a 304): where ``next_page`` went from it last time, on this chain.

    ``follow_up`` (the next page then) or ``stop`` (why the chain ended
    then) and ``items`` are what the page gave when it was fetched whole. The
    chain's counters go on from ``plan``'s, and ``max_pages`` and the loop
    guard hold as for a page with a body. None: no pagination.
    """
    paginate = plan.target.paginate
    if paginate is None:
        return None
    chain = plan.chain or PageChain(seen={page_key(plan, paginate)})
    chain.items += items
    if stop is not None or follow_up is None:
        return ChainEnd(stop or ChainStop.NO_NEXT, chain.pages, chain.items)
    if chain.pages >= paginate.max_pages:
        log.warning("%s: stopped after max_pages=%d at %s", plan.target.name, paginate.max_pages, plan.url)
        return ChainEnd(ChainStop.MAX_PAGES, chain.pages, chain.items)
    return _onward(plan, replace(follow_up, depth=plan.depth, chain=chain), chain, plan.url)


def _onward(plan: RequestPlan, follow_up: RequestPlan, chain: PageChain, where: str) -> RequestPlan | ChainEnd:
    """``follow_up`` as the chain's next page, unless the chain fetched it already (a loop)."""
    paginate = plan.target.paginate
    assert paginate is not None
    key = page_key(follow_up, paginate)
    if key in chain.seen:
        # With in: body or header every page has one URL: the value sent is what tells which page came back.
        log.warning(
            "%s: pagination loop at %s: the next page (%s) was already fetched in this chain; chain stopped",
            plan.target.name, where, _which_page(follow_up, paginate),
        )  # fmt: skip
        return ChainEnd(ChainStop.LOOP, chain.pages, chain.items)
    chain.seen.add(key)
    chain.pages += 1
    return replace(follow_up, chain_at=(chain.pages, chain.items))


_SHOWN = 80  # characters of a page's value in a log line: a cursor can be a long opaque token


def _which_page(plan: RequestPlan, paginate: Paginate) -> str:
    """The page ``plan`` asks for, as a person tells it: its URL, or the value sent at ``param``, cut short."""
    if paginate.location == "query":
        return plan.url
    if paginate.location == "header":
        value: Any = plan.headers.get(paginate.param)
    elif isinstance(plan.data, Mapping):
        value = plan.data.get(paginate.param)
    else:
        value = plan.json_body
        for name in paginate.param.split("."):
            value = value.get(name) if isinstance(value, dict) else None
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return f"{paginate.param}={text if len(text) <= _SHOWN else text[: _SHOWN - 1] + '…'}"


def failed_page(plan: RequestPlan) -> ChainEnd | None:
    """The end of ``plan``'s chain when its page could not be fetched or read; None without pagination."""
    if plan.target.paginate is None:
        return None
    chain = plan.chain
    return ChainEnd(ChainStop.FAILED, chain.pages if chain else 1, chain.items if chain else 0)
