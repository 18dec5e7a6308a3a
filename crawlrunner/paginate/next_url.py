"""``next_url``: the next page's URL is in the body (JMESPath, CSS or XPath)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urljoin

from .base import paginator, truthy

if TYPE_CHECKING:
    from ..document import Page
    from ..plan import PageChain, RequestPlan
    from ..spec.model import Paginate


@paginator("next_url")
def next_url(plan: RequestPlan, page: Page, paginate: Paginate, chain: PageChain, records: int) -> RequestPlan | None:
    assert paginate.next is not None  # the spec requires it for this style
    target = page.first(paginate.next)
    if not truthy(target) or not isinstance(target, str):
        return None
    return plan.with_url(urljoin(page.url, target.strip()), chain=chain)
