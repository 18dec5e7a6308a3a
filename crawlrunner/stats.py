"""Counters and latency histograms, per target, shared by progress and summary.

Latencies go into fixed log-scale buckets (about 5% wide), so memory stays
constant however many requests a run makes and percentiles stay accurate
to within a bucket.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from .results import Outcome

_BUCKET_GROWTH = 1.05
_SMALLEST = 1e-4  # 0.1 ms
_BUCKETS = 400  # up to ~ 3e4 s
_LOG_GROWTH = math.log(_BUCKET_GROWTH)


@dataclass
class LatencyHistogram:
    counts: list[int] = field(default_factory=lambda: [0] * _BUCKETS)
    total: int = 0
    maximum: float = 0.0

    def add(self, seconds: float) -> None:
        # What math.log(x, base) computes, with log(base) worked out once, and
        # comparisons rather than min()/max() calls: this runs for every request.
        index = 0 if seconds <= _SMALLEST else int(math.log(seconds / _SMALLEST) / _LOG_GROWTH) + 1
        self.counts[index if index < _BUCKETS else _BUCKETS - 1] += 1
        self.total += 1
        if seconds > self.maximum:
            self.maximum = seconds

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (0-100) in seconds: the upper edge of its bucket."""
        if not self.total:
            return None
        rank = max(1, math.ceil(self.total * q / 100))
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return min(_SMALLEST * _BUCKET_GROWTH**index, self.maximum)
        return self.maximum

    def merge(self, other: LatencyHistogram) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=False)]
        self.total += other.total
        self.maximum = max(self.maximum, other.maximum)


@dataclass
class TargetStats:
    requests: int = 0
    ok: int = 0
    failed: int = 0
    records: int = 0
    dropped: int = 0
    field_errors: int = 0
    robots_denied: int = 0
    retries: int = 0
    throttled: int = 0  # 429 answers, retried attempts included
    unavailable: int = 0  # 503 answers, likewise
    unchanged: int = 0  # 304 answers to conditional requests: the rows stored before are kept
    bytes: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)  # by the final answer's HTTP status; 0: none came
    # The first failed request of each kind, ``url: error`` with secrets masked: what the summary shows.
    failure_examples: dict[str, str] = field(default_factory=dict)
    # Requests that succeeded with something to say (an empty HTML page), by
    # what they said: the fetch log's ``error`` on a row whose error_kind is null.
    warnings: Counter[str] = field(default_factory=Counter)
    field_error_examples: dict[str, str] = field(default_factory=dict)
    unconverted: Counter[str] = field(default_factory=Counter)  # field → values that could not be converted
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    def add(self, outcome: Outcome, redact: Callable[[str], str] = str) -> None:
        """Count ``outcome``; ``redact`` masks the spec's secrets in the failure example kept."""
        # Runs for every request: the counters that are usually 0 are only
        # touched when they are not.
        fetch = outcome.fetch
        self.requests += 1
        self.bytes += fetch.size
        self.latency.add(fetch.elapsed)
        self.statuses[fetch.status or 0] += 1
        self.records += len(outcome.records)
        if fetch.attempts > 1:
            self.retries += fetch.attempts - 1
        if fetch.throttled or fetch.unavailable:
            self.throttled += fetch.throttled
            self.unavailable += fetch.unavailable
        if fetch.ok:
            self.ok += 1
            if fetch.status == 304:
                self.unchanged += 1
            if fetch.error and outcome.sitemap_cut is None:  # a sitemap's cut has a note of its own
                self.warnings[fetch.error] += 1
        else:
            self.failed += 1
            kind = fetch.error_kind or "unknown"
            self.failures[kind] += 1
            if kind not in self.failure_examples:
                self.failure_examples[kind] = redact(f"{fetch.url}: {fetch.error}" if fetch.error else fetch.url)
        if outcome.dropped or outcome.field_errors:
            self.dropped += outcome.dropped
            self.field_errors += outcome.field_errors
            for name, message in outcome.field_error_examples.items():
                self.field_error_examples.setdefault(name, message)
        if outcome.unconverted is not None:
            self.unconverted.update(outcome.unconverted)

    def merge(self, other: TargetStats) -> None:
        for name in (
            "requests",
            "ok",
            "failed",
            "records",
            "dropped",
            "field_errors",
            "robots_denied",
            "retries",
            "throttled",
            "unavailable",
            "unchanged",
            "bytes",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failures.update(other.failures)
        self.statuses.update(other.statuses)
        for kind, example in other.failure_examples.items():
            self.failure_examples.setdefault(kind, example)
        self.warnings.update(other.warnings)
        self.unconverted.update(other.unconverted)
        for name, message in other.field_error_examples.items():
            self.field_error_examples.setdefault(name, message)
        self.latency.merge(other.latency)


@dataclass
class HostStats:
    """How polite one origin needed us to be in this session: the ``host_stats`` row, the summary, the live view."""

    requests: int = 0  # sent to it, retries and redirect hops included
    throttled: int = 0  # 429 answers
    unavailable: int = 0  # 503 answers
    cooldowns: int = 0  # pauses: times it was left alone for a while
    cooldown_seconds: float = 0.0
    crawl_delay: float | None = None  # what its robots.txt asks for (Crawl-delay, Request-rate), as applied
    cooling_until: float = 0.0  # time.perf_counter() when the current pause ends (past: none)


@dataclass
class RunStats:
    targets: dict[str, TargetStats] = field(default_factory=dict)
    hosts: dict[str, HostStats] = field(default_factory=dict)  # by origin, scheme://host[:port]

    def add(self, outcome: Outcome, redact: Callable[[str], str] = str) -> None:
        name = outcome.fetch.target
        stats = self.targets.get(name)
        if stats is None:
            stats = self.targets[name] = TargetStats()
        stats.add(outcome, redact)

    @property
    def totals(self) -> TargetStats:
        total = TargetStats()
        for stats in self.targets.values():
            total.merge(stats)
        return total
