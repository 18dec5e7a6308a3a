"""Re-crawls that cost nothing: what a page led to, remembered for its next 304, and replayed.

A 304 has no body to find the next page, the links or the records in. So
when a conditional target's page is fetched whole, ``remembered`` notes what
it led to: the requests extract derived from it (before the frontier's
admission), and where its pagination chain went. The sink keeps that with
the page's ETag (``validators.led_to``). When a later run's conditional
request for the page gets a 304, ``replay`` derives the same requests again,
from where this run stands: the next page goes on with this chain's counters,
links are one level deeper than this page, child requests carry the parent
records they had (an incremental child's are rendered again with this run's
cursor). The frontier admits them like any derived request, so an
unchanged site is crawled along the same graph without a single body.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

from ..document import Page
from ..follow import link_request, links
from ..incremental import Cursors
from ..paginate import unchanged_page
from ..plan import RequestPlan, child_requests
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


def replay(
    plan: RequestPlan, led: LedTo, outcome: Outcome, children: tuple[Target, ...], cursors: Cursors | None = None
) -> None:
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
    derived.extend(_child_requests(plan, led, children, cursors))
    outcome.derived = derived


def _child_requests(
    plan: RequestPlan, led: LedTo, children: tuple[Target, ...], cursors: Cursors | None
) -> Iterator[RequestPlan]:
    """The stored child requests of the targets this run has (``--target`` may leave some out).

    An incremental child's were rendered with the cursor of the run that
    fetched the page whole: they are rendered again, from the parent record
    they carry, with this run's.
    """
    wanted = {child.name: child for child in children}
    rendered: set[tuple[str, str]] = set()
    for request in led.children:
        child = wanted.get(request.target.name)
        if child is None:
            continue
        if child.incremental is None or request.parent is None:
            yield request
            continue
        record = json.dumps(request.parent, sort_keys=True, default=str)
        if (child.name, record) not in rendered:  # one stored request per URL template: render them once
            rendered.add((child.name, record))
            yield from child_requests(child, request.parent, plan.url, cursors)
