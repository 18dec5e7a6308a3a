"""Pagination: from one page, the request for the next one, or None to stop.

One small machine per style, each a pure function of the request, the page
and the chain's state (pages so far, items so far, URLs and cursors seen):

    next_url     the next URL is in the body (JMESPath, CSS or XPath)
    link_header  the Link header's rel="next"
    page_number  ?page=N, N+1, ...
    offset       ?offset=K, K+limit, ... (with ?limit=)
    cursor       a token from the body or a header, sent back as a parameter or header

Stop rules shared by all: no next link or cursor, an empty page, a false
``has_more``, a reached ``total``/``total_pages``, ``max_pages``, and a loop
guard: a next URL or cursor already seen in this chain stops it with a
warning instead of looping forever.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urljoin

from .extract.page import Page
from .plan import PageChain, RequestPlan, with_query_param
from .spec.model import Paginate

log = logging.getLogger(__name__)

_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")
_REL_NEXT = re.compile(r"""rel\s*=\s*"?(?:[^";,]*\s)?next(?:\s[^";,]*)?"?""", re.I)


def next_link(header_values: list[str]) -> str | None:
    """The rel="next" target of RFC 8288 Link header values."""
    for value in header_values:
        for match in _LINK.finditer(value):
            if _REL_NEXT.search(match.group(2) or ""):
                return match.group(1).strip()
    return None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "no", "null")
    return bool(value)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def next_page(plan: RequestPlan, page: Page, records: int) -> RequestPlan | None:
    """The request for the page after ``plan``'s, or None when the chain ends."""
    paginate = plan.target.paginate
    if paginate is None:
        return None
    chain = plan.chain or PageChain(seen={plan.url})
    chain.items += records
    if records == 0 and paginate.stop_on_empty:
        return None
    if paginate.has_more is not None and not _truthy(page.first(paginate.has_more)):
        return None
    if chain.pages >= paginate.max_pages:
        log.warning("%s: stopped after max_pages=%d at %s", plan.target.name, paginate.max_pages, page.url)
        return None
    follow_up = _MACHINES[paginate.type](plan, page, paginate, chain, records)
    if follow_up is None:
        return None
    key = (
        follow_up.url + "\x00" + str(follow_up.headers.get(paginate.param, ""))
        if paginate.type == "cursor"
        else follow_up.url
    )
    if key in chain.seen:
        log.warning("%s: pagination loop at %s (next page already seen); chain stopped", plan.target.name, page.url)
        return None
    chain.seen.add(key)
    chain.pages += 1
    return follow_up


def _next_url(plan: RequestPlan, page: Page, paginate: Paginate, chain: PageChain, records: int) -> RequestPlan | None:
    assert paginate.next is not None
    target = page.first(paginate.next)
    if not _truthy(target) or not isinstance(target, str):
        return None
    return plan.with_url(urljoin(page.url, target.strip()), chain=chain)


def _link_header(
    plan: RequestPlan, page: Page, paginate: Paginate, chain: PageChain, records: int
) -> RequestPlan | None:
    target = next_link(page.header_values("Link"))
    return plan.with_url(urljoin(page.url, target), chain=chain) if target else None


def _counter(plan: RequestPlan, page: Page, paginate: Paginate, chain: PageChain, records: int) -> RequestPlan | None:
    step = 1 if paginate.type == "page_number" else (paginate.limit or records)
    if paginate.total is not None:
        total = _number(page.first(paginate.total))
        if total is not None and chain.items >= total:
            return None
    if paginate.total_pages is not None:
        pages = _number(page.first(paginate.total_pages))
        if pages is not None and plan.page - paginate.start + 1 >= pages:
            return None
    if paginate.type == "offset" and paginate.limit is not None and records < paginate.limit:
        return None  # a short page is the last one
    following = plan.page + step
    return plan.with_url(with_query_param(plan.url, paginate.param, following), page=following, chain=chain)


def _cursor(plan: RequestPlan, page: Page, paginate: Paginate, chain: PageChain, records: int) -> RequestPlan | None:
    assert paginate.cursor is not None
    token = page.first(paginate.cursor)
    if not _truthy(token):
        return None
    if paginate.send_cursor_as == "header":
        return plan.with_url(plan.url, headers={**plan.headers, paginate.param: str(token)}, chain=chain)
    return plan.with_url(with_query_param(plan.url, paginate.param, token), chain=chain)


_MACHINES = {
    "next_url": _next_url,
    "link_header": _link_header,
    "page_number": _counter,
    "offset": _counter,
    "cursor": _cursor,
}
