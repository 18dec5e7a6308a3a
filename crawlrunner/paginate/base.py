"""The pagination registry: style name → the machine that finds the next page.

A machine is a pure function of the request, its page, the ``paginate``
settings, the chain's state and the number of records the page held; it
returns the next request, or why there is none: a ``ChainStop`` of its own
(a reached total, a short page) or None (no next page). The stop rules every style shares (an
empty page, ``has_more``, ``max_pages``, the loop guard) are applied around
it by ``next_page``, so a machine only knows where its next page is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..spec.registry import Registry

if TYPE_CHECKING:
    from ..document import Page
    from ..plan import PageChain, RequestPlan
    from ..results import ChainStop
    from ..spec.model import Paginate

Advance = Callable[["RequestPlan", "Page", "Paginate", "PageChain", int], "RequestPlan | ChainStop | None"]


@dataclass(frozen=True, slots=True)
class Paginator:
    """One style: its machine. (What tells its pages apart is ``plan.page_key``, the same for every style.)"""

    advance: Advance


PAGINATORS: Registry[Paginator] = Registry("pagination style")


def paginator(*names: str) -> Callable[[Advance], Advance]:
    """Register the decorated machine as the pagination style(s) ``names``."""

    def register(advance: Advance) -> Advance:
        PAGINATORS.register(*names)(Paginator(advance))
        return advance

    return register


def truthy(value: Any) -> bool:
    """A JSON or HTML value as a yes/no: "false", "0", "no" and "null" are no."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "no", "null")
    return bool(value)


def number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
