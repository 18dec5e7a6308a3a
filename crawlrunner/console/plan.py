"""A spec's plan preview as the lines ``crawlrunner plan`` prints (the data: ``crawlrunner.preview``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..preview import PlannedRequest, TargetPlan


def plan_lines(plans: Iterable[TargetPlan], first: int) -> Iterator[str]:
    """Per target: how many start requests and where more come from, then its ``first`` requests."""
    for plan in plans:
        if plan.count is None:
            source = f"its field {plan.url_field!r}" if plan.url_field else repr(plan.url_template)
            yield f"{plan.target}: one request per record of {plan.parent!r}, to {source}"
            continue
        yield f"{plan.target}: {plan.count} start request{'s' if plan.count != 1 else ''}{_more(plan)}"
        for request in plan.requests:
            yield from _request_lines(request)
        if plan.count > first:
            yield f"  ... {plan.count - first} more"


def _more(plan: TargetPlan) -> str:
    sources = []
    if plan.sitemaps:
        sources.append("the pages the sitemaps list")
    if plan.pagination:
        sources.append(f"{plan.pagination} pagination")
    if plan.follow_depth is not None:
        sources.append(f"links to depth {plan.follow_depth}")
    return f"; more from {' and '.join(sources)}" if sources else ""


def _request_lines(request: PlannedRequest) -> Iterator[str]:
    shown = request.url if request.gateway is None else f"{request.url} (through {request.gateway})"
    yield f"  {request.method} {shown}" + (f"  [invalid: {request.invalid}]" if request.invalid else "")
    for name, value in request.headers.items():
        yield f"      {name}: {value}"


def planned(start: int, dynamic: bool) -> str:
    """``validate``'s note on a spec's size: "12 start requests, more from pages"."""
    return f"{start} start request{'s' if start != 1 else ''}{', more from pages' if dynamic else ''}"
