"""``page_number`` and ``offset``: a counter in a query parameter or the request body.

``page_number`` counts pages (``?page=N``, N+1, ...); ``offset`` counts items
(``?offset=K``, K+limit, ...), and a page shorter than ``limit`` is the last.
Both stop at a ``total`` of items; ``page_number`` also at ``total_pages``.
The first request of a chain carries the counter too (``plan`` numbers it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..plan import with_page_value
from ..results import ChainStop
from .base import number, paginator

if TYPE_CHECKING:
    from ..document import Page
    from ..plan import PageChain, RequestPlan
    from ..spec.model import Paginate


@paginator("page_number", "offset")
def counter(
    plan: RequestPlan, page: Page, paginate: Paginate, chain: PageChain, records: int
) -> RequestPlan | ChainStop:
    step = 1 if paginate.type == "page_number" else (paginate.limit or records)
    if paginate.total is not None:
        total = number(page.first(paginate.total))
        if total is not None and chain.items >= total:
            return ChainStop.TOTAL_REACHED
    if paginate.total_pages is not None:
        pages = number(page.first(paginate.total_pages))
        if pages is not None and plan.page - paginate.start + 1 >= pages:
            return ChainStop.TOTAL_REACHED
    if paginate.type == "offset" and paginate.limit is not None and records < paginate.limit:
        return ChainStop.SHORT_PAGE  # a short page is the last one
    following = plan.page + step
    return with_page_value(plan, paginate, paginate.param, following, page=following, chain=chain)
