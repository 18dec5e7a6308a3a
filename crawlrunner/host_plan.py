"""Per host: the requests a spec is known to make, and the least time politeness lets them take.

``crawlrunner plan`` shows it before a crawl starts, so that a spec whose
rate limit makes a crawl take two days is found out before the two days.
Nothing is fetched: what an earlier run learnt (a robots.txt ``Crawl-delay``,
how fast the host answered, how often it refused) comes in as ``KnownHosts``,
read from the database by the caller.

The bound is a floor, never an estimate: requests to one host are spaced by
the largest of the target's ``rate_limit`` interval and, for link-following
targets that obey robots.txt, its ``Crawl-delay``; with a latency known
from an earlier run, ``per_host`` requests at a time cannot go faster than
that latency allows either.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .origins import origin
from .plan import count_requests, plan_target
from .spec.model import Spec, Target

# Start requests read to learn their hosts when the URL template does not fix
# the host; a larger target is counted in full but its hosts from this many.
HOST_SCAN_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class Pushback:
    """How much a host held the last complete run back (its ``host_stats`` row): not a bound, a warning."""

    throttled: int  # 429 answers
    unavailable: int  # 503 answers
    cooldown_seconds: float  # the time it was left alone


@dataclass(frozen=True, slots=True)
class KnownHosts:
    """What earlier runs learnt about hosts, keyed by origin (``scheme://host[:port]``)."""

    crawl_delays: Mapping[str, float] = field(default_factory=dict)
    latencies: Mapping[str, float] = field(default_factory=dict)  # median seconds per request
    pushback: Mapping[str, Pushback] = field(default_factory=dict)  # hosts that refused or paused the last run


@dataclass(slots=True)
class HostPlan:
    """One host's share of a crawl."""

    origin: str
    requests: int = 0  # known before crawling: start requests
    more_from: set[str] = field(default_factory=set)  # targets whose pages, links or records add requests
    # Known requests per pacing interval: each target's rate limit paces its
    # own requests to the host (``HostSlots`` keeps one clock per rate limit).
    paced: dict[float, int] = field(default_factory=dict)
    crawl_delay: float | None = None  # robots.txt's, from an earlier run
    connections: int = 0  # requests at once (limits.per_host); 0: no limit
    latency: float | None = None  # seconds per request, from an earlier run
    pushback: Pushback | None = None  # its 429s, 503s and pauses in the last complete run, if any
    scanned_all: bool = True  # False when the hosts of a large target were read from its first requests only

    @property
    def min_seconds(self) -> float | None:
        """The least wall time the known requests can take; None when nothing bounds it."""
        if not self.requests:
            return None
        bounds = [(count - 1) * interval for interval, count in self.paced.items() if interval and count]
        if self.latency is not None:
            bounds.append(self.requests * self.latency / (self.connections or self.requests))
        return max(bounds) if bounds else None

    @property
    def interval(self) -> float:
        """The slowest pace of the host's targets: least seconds between two of their requests."""
        return max(self.paced, default=0.0)


def host_plans(spec: Spec, *, only: Iterable[str] | None = None, known: KnownHosts | None = None) -> list[HostPlan]:
    """Per host, in the order the spec first reaches it: its known requests and the pace they must keep."""
    known = known or KnownHosts()
    wanted = None if only is None else set(only)
    hosts: dict[str, HostPlan] = {}
    for target in spec.targets:
        if wanted is not None and target.name not in wanted:
            continue
        for key, count, scanned_all in _target_hosts(spec, target):
            host = hosts.get(key)
            if host is None:
                host = hosts[key] = HostPlan(key, connections=spec.http.limits.per_host)
                host.latency = known.latencies.get(key)
                host.pushback = known.pushback.get(key)
            host.requests += count
            host.scanned_all &= scanned_all
            if target.parent or target.paginate or target.follow or target.sitemap:
                host.more_from.add(target.name)
            interval = target.fetch.rate_limit.interval
            if target.follow is not None and target.follow.robots:
                delay = known.crawl_delays.get(key)
                if delay is not None:
                    host.crawl_delay = delay
                    interval = max(interval, delay)
            host.paced[interval] = host.paced.get(interval, 0) + count
    return list(hosts.values())


def _target_hosts(spec: Spec, target: Target) -> Iterable[tuple[str, int, bool]]:
    """(origin, known requests, whether every request was read) for the target's hosts."""
    if target.parent is not None:
        fixed = _fixed_origin(spec, target)
        return [(fixed, 0, True)] if fixed else []
    total = count_requests(target) or 0
    first = next(iter(plan_target(target)), None)
    if first is None:
        return []
    if _fixed_origin(spec, target) is not None:
        return [(origin(first.url), total, True)]
    counts: dict[str, int] = {}
    for plan in itertools.islice(plan_target(target), HOST_SCAN_LIMIT):
        key = origin(plan.url)
        counts[key] = counts.get(key, 0) + 1
    if total <= HOST_SCAN_LIMIT:
        return [(key, count, True) for key, count in counts.items()]
    # Share the rest out as the first requests were: a floor on a sample is still a fair floor.
    scale = total / HOST_SCAN_LIMIT
    return [(key, round(count * scale), False) for key, count in counts.items()]


def _fixed_origin(spec: Spec, target: Target) -> str | None:
    """The one origin all of the target's URLs go to, when its templates fix it; else None."""
    origins = set()
    for template in target.request.urls:
        source = template.source
        if source.startswith(("http://", "https://")):
            head = source.split("/", 3)
            if "{" in "/".join(head[:3]):
                return None
            origins.add(origin(source))
        elif target.request.base_url and not source.startswith("{"):
            origins.add(origin(target.request.base_url))
        else:
            return None
    return origins.pop() if len(origins) == 1 else None
