"""``cursor``: a token from the body or a header, sent back as a query parameter or a header."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..plan import with_query_param
from .base import paginator, truthy

if TYPE_CHECKING:
    from ..document import Page
    from ..plan import PageChain, RequestPlan
    from ..spec.model import Paginate


def cursor_key(plan: RequestPlan, paginate: Paginate) -> str:
    # A cursor sent as a header leaves the URL unchanged: the loop guard
    # must tell the pages apart by the header.
    return plan.url + "\x00" + str(plan.headers.get(paginate.param, ""))


@paginator("cursor", seen_key=cursor_key)
def cursor(plan: RequestPlan, page: Page, paginate: Paginate, chain: PageChain, records: int) -> RequestPlan | None:
    assert paginate.cursor is not None  # the spec requires it for this style
    token = page.first(paginate.cursor)
    if not truthy(token):
        return None
    if paginate.send_cursor_as == "header":
        return plan.with_url(plan.url, headers={**plan.headers, paginate.param: str(token)}, chain=chain)
    return plan.with_url(with_query_param(plan.url, paginate.param, token), chain=chain)
