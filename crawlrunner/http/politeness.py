"""How polite to be with a host, from what it answers: the decisions, and the tracker that carries them out.

The decisions are pure functions of a host's ``HostState``, its ``Answer``
and the clock, tested without sockets:

- **Pauses** (``answered``). A 429 or 503 with ``Retry-After`` leaves the host
  alone for exactly that (at most ``retry.max_retry_after``); without it, for
  ``COOLDOWN_START`` seconds, doubling with each further 429/503 while the host
  keeps answering so, up to ``rate_limit.cooldown``; a success starts again
  from the short pause. Only an answer to a request sent after the last pause
  began counts as "further": the requests in flight when a host starts
  refusing all come back refused, and that is one refusal, not eight. A
  rate-limit header saying no request remains (``http.budget``) pauses the
  host until its reset, whatever the status; so does one saying no more
  remain than the requests sent after it and still on their way (the host
  counted none of those yet: each takes one of the remaining).
- **Pace** (``gap``): the least gap between two requests to the host, a
  floor under the target's own ``rate_limit`` interval. A budget running low
  is spread evenly over the time until it renews: what remains beyond the
  requests on their way, one every reset ÷ that many seconds, from the very
  next send. Low is: what remains beyond the requests on their way is no more
  than the host has had on their way at once, plus ``LOW_BUDGET_MARGIN`` (as
  many may leave together the moment their turns free), or the budget is under
  ``LOW_BUDGET_SHARE`` of its limit (``LOW_BUDGET_REQUESTS`` or fewer when the
  limit is not said). An answer whose budgets are none of them low (a fresh
  window) ends the spreading at once, for requests already waiting too.
  With ``rate_limit.adaptive``, the gap also follows the host's latency, as
  Scrapy's AutoThrottle does: aiming at ``target_concurrency`` requests in
  the host's hands, it rises at once with the latency, falls halfway towards
  it while the host is healthy, doubles on a 429/503, and never falls on an
  error page (those come back fast). Every gap is capped by ``max_delay``.

The tracker, ``HostPoliteness``, is the fetcher's: one state per origin,
asked for the gap before each send, told each answer; it hands pauses to the
host gate (``HostGate.cool_down``: ``HostSlots``, or a shared run's
``ClusterSlots``, so every worker pauses) and counts everything in
``stats.HostStats``. What it learns is this process's own: in a shared run
each worker paces by its own answers, within the run's common reservations.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..origins import origin
from ..settings import FetchSettings, RateLimit
from ..stats import HostStats
from .budget import Budget, read_budgets
from .retry import parse_retry_after

if TYPE_CHECKING:  # an interface the engine hands over: HostSlots, or a backend's shared one
    from ..backends.base import HostGate

log = logging.getLogger(__name__)

COOLDOWN_STATUSES = frozenset({429, 503})
COOLDOWN_START = 1.0  # seconds: the first pause for a 429/503 without Retry-After (at most rate_limit.cooldown)
ADAPTIVE_START = 0.5  # seconds between requests to a host before its first answer, in adaptive mode
LOW_BUDGET_SHARE = 0.1  # a budget under this share of its limit is paced over its window
LOW_BUDGET_REQUESTS = 10  # ... and, when the limit is not said, one of this many requests or fewer
LOW_BUDGET_MARGIN = 2  # ... and one with no more left than a burst of the host's concurrency and this many
_MAX_DOUBLINGS = 30  # 2**30 s is far beyond any cooldown cap; the bound keeps the float finite


@dataclass(slots=True)
class HostState:
    """What the policy remembers of one host."""

    streak: int = 0  # 429/503 answers in a row (to requests sent after the pause before them began)
    paused_at: float = -math.inf  # when the last pause began
    delay: float | None = None  # adaptive: the gap kept between requests (None: no answer yet)
    budget_gap: float = 0.0  # the gap that spreads a low budget over its window ...
    budget_until: float = 0.0  # ... until the budget renews


@dataclass(frozen=True, slots=True)
class Answer:
    """One response of the host, as far as politeness is concerned."""

    status: int
    sent_at: float  # when the request left, on the clock ``now`` is read on
    latency: float  # seconds from sending to the response's headers
    retry_after: float | None = None  # seconds, parsed from Retry-After
    budgets: tuple[Budget, ...] = ()
    later: int = 0  # requests to the host sent after this one and not answered yet: the budgets do not count them
    at_once: int = 0  # the most requests the host has had on their way at once: as many may leave together


@dataclass(frozen=True, slots=True)
class Pause:
    """Leave the host alone for ``seconds`` (0: carry on), because of ``reason``."""

    seconds: float
    reason: str = ""


NO_PAUSE = Pause(0.0)


def gap(state: HostState, rate: RateLimit, now: float) -> float:
    """The least gap to keep before the next request to the host, beyond ``rate``'s own interval (0: none)."""
    least = state.budget_gap if state.budget_until > now else 0.0
    if rate.adaptive:
        least = max(least, adaptive_start(rate) if state.delay is None else state.delay)
    return least


def adaptive_start(rate: RateLimit) -> float:
    """The gap before a host has answered once, in adaptive mode: careful, within the configured bounds."""
    return min(max(ADAPTIVE_START, rate.interval), rate.max_delay)


def answered(state: HostState, answer: Answer, rate: RateLimit, max_wait: float, now: float) -> Pause:
    """What the host's ``answer`` means: a pause to leave it alone for (``NO_PAUSE``: none).

    ``state`` learns from it (the streak of refusals, the budget's pace, the
    adaptive gap); ``max_wait`` caps a pause the host asks for
    (``retry.max_retry_after``).
    """
    fresh = answer.sent_at >= state.paused_at
    pause = _pause(state, answer, rate, max_wait, fresh)
    _pace_budget(state, answer, rate, now)
    if rate.adaptive:
        _adapt(state, answer, rate, fresh)
    if pause.seconds > 0:
        state.paused_at = now
    return pause


def _pause(state: HostState, answer: Answer, rate: RateLimit, max_wait: float, fresh: bool) -> Pause:
    status = answer.status
    # Used up: nothing left, or nothing the requests already on their way will not take.
    used_up = max(
        (b.reset for b in answer.budgets if b.remaining <= answer.later and b.reset is not None), default=None
    )
    if status not in COOLDOWN_STATUSES:
        if fresh and status < 400:
            state.streak = 0
        if used_up:
            return Pause(min(used_up, max_wait), f"HTTP {status}: no request left until its rate limit resets")
        return NO_PAUSE
    if fresh:
        state.streak += 1
    if answer.retry_after is not None:
        return Pause(min(answer.retry_after, max_wait), f"HTTP {status}, Retry-After: {answer.retry_after:g}")
    if used_up:
        return Pause(min(used_up, max_wait), f"HTTP {status}, rate limit used up until its reset")
    doublings = min(max(state.streak, 1) - 1, _MAX_DOUBLINGS)
    seconds = min(rate.cooldown, min(COOLDOWN_START, rate.cooldown) * 2**doublings)
    return Pause(seconds, f"HTTP {status} ({_ordinal(max(state.streak, 1))} in a row), no Retry-After")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _pace_budget(state: HostState, answer: Answer, rate: RateLimit, now: float) -> None:
    """Spread a low budget over the time until it renews; an answer with budgets and none low ends that."""
    if not answer.budgets:
        return  # a host that says nothing this time keeps the pace it asked for until its reset
    least, until = 0.0, 0.0
    for budget in answer.budgets:
        left = budget.remaining - answer.later  # what new sends may still use before the reset
        if budget.reset is None or left <= 0 or not _low(budget, left, answer.at_once):
            continue  # (none left: the host is paused until the reset instead)
        least = max(least, budget.reset / left)
        until = max(until, now + budget.reset)
    state.budget_gap, state.budget_until = min(least, rate.max_delay), until


def _low(budget: Budget, left: int, at_once: int) -> bool:
    if left <= at_once + LOW_BUDGET_MARGIN:
        return True
    if budget.limit:
        return budget.remaining < LOW_BUDGET_SHARE * budget.limit
    return budget.remaining <= LOW_BUDGET_REQUESTS


def _adapt(state: HostState, answer: Answer, rate: RateLimit, fresh: bool) -> None:
    """AutoThrottle's rule, with a back-off: the gap follows latency / target_concurrency."""
    current = adaptive_start(rate) if state.delay is None else state.delay
    target = answer.latency / rate.target_concurrency
    if answer.status in COOLDOWN_STATUSES:
        # Too fast: half the rate (once per refusal, as the streak counts them).
        new = 2 * max(current, rate.interval, target) if fresh else current
    else:
        # Rising latency raises the gap at once; a falling one lowers it halfway.
        new = max(target, (current + target) / 2)
        if answer.status >= 400:
            new = max(new, current)  # error pages come back fast: they must not speed us up
    state.delay = min(new, rate.max_delay)


class _Host:
    __slots__ = ("at_once", "on_the_way", "origin", "state", "stats")

    def __init__(self, origin: str, stats: HostStats) -> None:
        self.origin = origin
        self.state = HostState()
        self.stats = stats
        self.on_the_way: list[float] = []  # when each request to the host not answered yet was sent
        self.at_once = 0  # the most requests it had on their way at once


class HostPoliteness:
    """The fetcher's politeness per origin: asks the policy, tells the gate, counts in ``stats``.

    ``stats`` (origin → ``HostStats``) is filled as hosts are met; the engine
    shares it with ``RunStats.hosts``. ``clock`` is ``time.perf_counter``,
    the fetcher's: answers carry their send time on it.
    """

    def __init__(
        self,
        gate: HostGate,
        stats: dict[str, HostStats] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._gate = gate
        self._hosts: dict[str, _Host] = {}
        self.stats: dict[str, HostStats] = stats if stats is not None else {}
        self._clock = clock

    def host(self, url: str) -> _Host:
        """``url``'s origin (``scheme://host[:port]``, lowercased) and what is known of it.

        Without the URL's userinfo: the origin is stored (``host_stats``) and
        shown, and ``user:password@`` is a secret.
        """
        key = origin(url)
        host = self._hosts.get(key)
        if host is None:
            stats = self.stats.setdefault(key, HostStats())
            host = self._hosts[key] = _Host(key, stats)
        return host

    def gap(self, host: _Host, rate: RateLimit, crawl_delay: float = 0.0) -> float:
        """The least gap before the next request to ``host``: its robots.txt delay, a low budget, adaptive pacing."""
        state = host.state
        if not (rate.adaptive or state.budget_until):
            return crawl_delay  # the usual case: no clock read
        return max(crawl_delay, gap(state, rate, self._clock()))

    def sending(self, host: _Host) -> float:
        """A request to ``host`` leaves now: counted, and on its way until ``done``; the time it left."""
        sent = self._clock()
        host.stats.requests += 1
        host.on_the_way.append(sent)
        host.at_once = max(host.at_once, len(host.on_the_way))
        return sent

    def done(self, host: _Host, sent_at: float) -> None:
        """The request sent at ``sent_at`` is answered, or failed: no longer on its way."""
        host.on_the_way.remove(sent_at)

    def answered(
        self, host: _Host, url: str, settings: FetchSettings, status: int, headers: Mapping[str, str], sent_at: float
    ) -> None:
        """The host answered ``status`` to a request sent to ``url`` at ``sent_at``: learn, count, maybe pause it."""
        now = self._clock()
        stats, rate = host.stats, settings.rate_limit
        if status == 429:
            stats.throttled += 1
        elif status == 503:
            stats.unavailable += 1
        refused = status in COOLDOWN_STATUSES
        limited = "RateLimit" in headers or "RateLimit-Remaining" in headers or "X-RateLimit-Remaining" in headers
        if not (refused or limited or rate.adaptive):
            if host.state.streak and status < 400 and sent_at >= host.state.paused_at:
                host.state.streak = 0
            return
        answer = Answer(
            status,
            sent_at,
            now - sent_at,
            parse_retry_after(headers.get("Retry-After")) if refused else None,
            read_budgets(headers, time.time()) if limited else (),
            sum(1 for sent in host.on_the_way if sent > sent_at) if limited else 0,
            host.at_once,
        )
        pause = answered(host.state, answer, rate, settings.retry.max_retry_after, now)
        if pause.seconds > 0:
            self._pause(host, url, pause, now)

    def _pause(self, host: _Host, url: str, pause: Pause, now: float) -> None:
        """Leave ``url``'s host alone (through the gate), counting only what a running pause did not cover."""
        stats, until = host.stats, now + pause.seconds
        if until <= stats.cooling_until:
            return
        if stats.cooling_until <= now:
            stats.cooldowns += 1
            stats.cooldown_seconds += pause.seconds
            log.info("%s: leaving the host alone for %.1f s (%s)", host.origin, pause.seconds, pause.reason)
        else:
            stats.cooldown_seconds += until - stats.cooling_until
        stats.cooling_until = until
        self._gate.cool_down(url, pause.seconds)

    def session_ended(self) -> None:
        """No request of this session is left: the rest of a pause still running held nothing back, and is not counted.

        So ``cooldown_seconds`` is the time the host was kept waiting while
        the session had requests to send, never more than the session lasted.
        """
        now = self._clock()
        for host in self._hosts.values():
            left = host.stats.cooling_until - now
            if left > 0:
                host.stats.cooldown_seconds -= left
                host.stats.cooling_until = now

    def cooling_left(self, url: str) -> float:
        """Seconds until ``url``'s host may be sent to again, as far as this process paused it."""
        return max(self.host(url).stats.cooling_until - self._clock(), 0.0)

    def robots_delay(self, url: str, seconds: float) -> None:
        """Note the delay ``url``'s robots.txt asks for, as applied (for ``host_stats.crawl_delay``)."""
        self.host(url).stats.crawl_delay = seconds
