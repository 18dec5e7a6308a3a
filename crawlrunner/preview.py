"""What a spec would fetch, without fetching: the data behind ``crawlrunner plan`` and ``run --dry-run``.

::

    import crawlrunner

    for target in crawlrunner.preview_plan(crawlrunner.load_spec("shop.yaml"), first=3):
        print(target.target, target.count, [r.url for r in target.requests])

Everything returned is safe to show: values that came from the environment
are masked in URLs and headers by the spec's redactor, and the headers that
auth adds (``Authorization``, an API-key header) are always ``***``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from .plan import count_requests, plan_target
from .secrets import MASK
from .spec.model import Spec, Target


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    """One start request, as it would be sent, secrets masked."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    gateway: str | None = None  # the rendering API's endpoint the request goes through
    invalid: str | None = None  # why the request cannot be sent, if it cannot


@dataclass(frozen=True, slots=True)
class TargetPlan:
    """A target's requests: how many start requests, the first few, and where more come from.

    A child target (``parent`` set) has no start requests (``count`` is
    None): it makes one request per record of its parent, to the URL in the
    record's ``url_field`` or to ``url_template`` filled from the record.
    """

    target: str
    count: int | None
    requests: tuple[PlannedRequest, ...] = ()
    pagination: str | None = None  # the pagination type, when pages add requests
    follow_depth: int | None = None  # the link-following depth, when links add requests
    sitemaps: bool = False  # its start requests are sitemaps: the pages they list add requests
    parent: str | None = None
    url_field: str | None = None
    url_template: str | None = None


def preview_plan(spec: Spec, *, only: Iterable[str] | None = None, first: int = 5) -> list[TargetPlan]:
    """The plan of each of ``spec``'s targets (or the ``only`` ones), with its ``first`` requests.

    Nothing is fetched. An unknown name in ``only`` raises ``UnknownTargetError``.
    """
    wanted = None if only is None else list(only)
    if wanted is not None:
        spec.check_targets(wanted)
    return [_target_plan(spec, t, first) for t in spec.targets if wanted is None or t.name in wanted]


def count_start_requests(spec: Spec) -> tuple[int, bool]:
    """How many start requests ``spec`` has, and whether pages, links or parent records add more."""
    counts = [count_requests(t) for t in spec.targets]
    start = sum(c for c in counts if c is not None)
    dynamic = any(c is None or t.paginate or t.follow or t.sitemap for c, t in zip(counts, spec.targets, strict=True))
    return start, dynamic


def _target_plan(spec: Spec, target: Target, first: int) -> TargetPlan:
    count = count_requests(target)
    plan = TargetPlan(
        target.name,
        count,
        pagination=target.paginate.type if target.paginate else None,
        follow_depth=target.follow.max_depth if target.follow else None,
        sitemaps=target.sitemap is not None,
        parent=target.parent,
    )
    if count is not None:
        return replace(plan, requests=_first_requests(spec, target, first))
    if target.url_field:
        return replace(plan, url_field=target.url_field)
    return replace(plan, url_template=spec.redactor(target.request.urls[0].source))


def _first_requests(spec: Spec, target: Target, first: int) -> tuple[PlannedRequest, ...]:
    # Imported here: auth pulls in aiohttp, which `crawlrunner validate` (a user of
    # count_start_requests) should not pay for.
    from .http.auth import credentials

    redact = spec.redactor
    auth = credentials(target.fetch.auth).headers
    gateway = redact(target.fetch.gateway.endpoint) if target.fetch.gateway is not None else None
    return tuple(
        PlannedRequest(
            request.method,
            redact(request.url),
            # Auth's own headers are masked whole: a Basic token is a secret even though
            # it is not spelled like any value from the environment.
            {name: MASK if name in auth else redact(value) for name, value in {**request.headers, **auth}.items()},
            gateway,
            redact(request.invalid) if request.invalid else None,
        )
        for request in itertools.islice(plan_target(target), first)
    )
