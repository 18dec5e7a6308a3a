"""``cursor``: a token from the body or a header, sent back in the query, a header or the request body."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..plan import with_page_value
from .base import paginator, truthy

if TYPE_CHECKING:
    from ..document import Page
    from ..plan import PageChain, RequestPlan
    from ..spec.model import Paginate


@paginator("cursor")
def cursor(plan: RequestPlan, page: Page, paginate: Paginate, chain: PageChain, records: int) -> RequestPlan | None:
    assert paginate.cursor is not None  # the spec requires it for this style
    token = page.first(paginate.cursor)
    if not truthy(token):
        return None
    return with_page_value(plan, paginate, paginate.param, token, chain=chain)
