"""``link_header``: the next page is the ``Link`` header's ``rel="next"`` (RFC 8288)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from .base import paginator

if TYPE_CHECKING:
    from ..document import Page
    from ..plan import PageChain, RequestPlan
    from ..spec.model import Paginate

_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")
_REL_NEXT = re.compile(r"""rel\s*=\s*"?(?:[^";,]*\s)?next(?:\s[^";,]*)?"?""", re.I)


def next_link(header_values: list[str]) -> str | None:
    """The rel="next" target of RFC 8288 Link header values."""
    for value in header_values:
        for match in _LINK.finditer(value):
            if _REL_NEXT.search(match.group(2) or ""):
                return match.group(1).strip()
    return None


@paginator("link_header")
def link_header(
    plan: RequestPlan, page: Page, paginate: Paginate, chain: PageChain, records: int
) -> RequestPlan | None:
    target = next_link(page.header_values("Link"))
    return plan.with_url(urljoin(page.url, target), chain=chain) if target else None
