"""Pagination: from one page, the request for the next one, or None to stop.

One small machine per style, each in its own module and registered under
its ``type`` in ``PAGINATORS`` (``base.paginator``):

    next_url     the next URL is in the body (JMESPath, CSS or XPath)
    link_header  the Link header's rel="next"
    page_number  ?page=N, N+1, ...                     (counter.py)
    offset       ?offset=K, K+limit, ... (with ?limit=)  (counter.py)
    cursor       a token from the body or a header, sent back as a parameter or header

Adding a style: a module here registering its machine, its keys in
``spec.pagination.STYLES`` and its name in the schema's enum (a test holds
the three together).

Stop rules shared by all: no next link or cursor, an empty page, a false
``has_more``, a reached ``total``/``total_pages``, ``max_pages``, and a loop
guard: a next URL or cursor already seen in this chain stops it with a
warning instead of looping forever.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..plan import PageChain, RequestPlan

# Importing a style's module registers it.
from . import counter, cursor, next_url  # noqa: F401
from .base import PAGINATORS, truthy
from .link_header import next_link

if TYPE_CHECKING:
    from ..document import Page

__all__ = ["PAGINATORS", "next_link", "next_page"]

log = logging.getLogger(__name__)


def next_page(plan: RequestPlan, page: Page, records: int) -> RequestPlan | None:
    """The request for the page after ``plan``'s, or None when the chain ends."""
    paginate = plan.target.paginate
    if paginate is None:
        return None
    chain = plan.chain or PageChain(seen={plan.url})
    chain.items += records
    if records == 0 and paginate.stop_on_empty:
        return None
    if paginate.has_more is not None and not truthy(page.first(paginate.has_more)):
        return None
    if chain.pages >= paginate.max_pages:
        log.warning("%s: stopped after max_pages=%d at %s", plan.target.name, paginate.max_pages, page.url)
        return None
    style = PAGINATORS[paginate.type]
    follow_up = style.advance(plan, page, paginate, chain, records)
    if follow_up is None:
        return None
    key = style.seen_key(follow_up, paginate)
    if key in chain.seen:
        log.warning("%s: pagination loop at %s (next page already seen); chain stopped", plan.target.name, page.url)
        return None
    chain.seen.add(key)
    chain.pages += 1
    return follow_up
