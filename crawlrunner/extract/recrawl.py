"""Re-crawls that cost nothing: what a page led to, remembered for its next 304, and replayed.

A 304 has no body to find the next page, the links or the records in. So
when a conditional target's page is fetched whole, ``remembered`` notes what
it led to: the requests extract derived from it (before the frontier's
admission), and where its pagination chain went. The sink keeps that with
the page's ETag (``validators.led_to``). When a later run's conditional
request for the page gets a 304, ``replay`` derives the same requests again,
from where this run stands: the next page goes on with this chain's counters,
links are one level deeper than this page, child requests carry the parent
records they had. The frontier admits them like any derived request, so an
unchanged site is crawled along the same graph without a single body.
"""

from __future__ import annotations

from dataclasses import replace

from ..document import Page
from ..follow import link_request, links
from ..paginate import unchanged_page
from ..plan import RequestPlan
from ..results import ChainEnd, LedTo, Outcome
from ..spec.model import Target


def remembered(plan: RequestPlan, page: Page, outcome: Outcome, children: tuple[Target, ...]) -> LedTo:
    """What ``plan``'s page led to (``outcome.derived``, not yet admitted), to replay on a later 304 of it."""
    led = LedTo(items=outcome.items, child_targets=tuple(child.name for child in children))
    if outcome.chain_end is not None:
        led.stop = outcome.chain_end.reason
    for request in outcome.derived:
        if request.target is not plan.target:
            led.children.append(request)
        elif request.depth > plan.depth:
            led.links.append(request)
        else:
            led.next_page = request
    rules = plan.target.follow
    if rules is not None and plan.depth >= rules.max_depth:
        # Too deep to follow now; but the order pages are found in varies, and
        # a later run may reach this page at a smaller depth: keep its links too.
        led.links = links(replace(plan, depth=0), page)
    return led


def replay(plan: RequestPlan, led: LedTo, outcome: Outcome, children: tuple[Target, ...]) -> None:
    """Fill the outcome of a 304 with what the unchanged page led to last time, derived from here."""
    derived: list[RequestPlan] = []
    if plan.target.paginate is not None:
        follow_up = unchanged_page(plan, led.next_page, led.stop, led.items)
        if isinstance(follow_up, ChainEnd):
            outcome.chain_end = follow_up
        elif follow_up is not None:
            derived.append(follow_up)
    rules = plan.target.follow
    if rules is not None and plan.depth < rules.max_depth:
        derived.extend(link_request(plan, link.url) for link in led.links)
    # Only the child targets this run has: --target may leave some out.
    wanted = {child.name for child in children}
    derived.extend(request for request in led.children if request.target.name in wanted)
    outcome.derived = derived
