"""The politeness policy without sockets: pauses after 429/503, rate-limit headers, adaptive pacing, robots delays."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from multidict import CIMultiDict
from protego import Protego

from crawlrunner.http.budget import Budget, read_budgets
from crawlrunner.http.politeness import (
    ADAPTIVE_START,
    COOLDOWN_START,
    Answer,
    HostPoliteness,
    HostState,
    answered,
    gap,
)
from crawlrunner.http.ratelimit import HostSlots
from crawlrunner.http.robots import MAX_CRAWL_DELAY, crawl_delay
from crawlrunner.progress import LiveView
from crawlrunner.settings import FetchSettings, RateLimit
from crawlrunner.stats import HostStats, RunStats

NOW = 1_700_000_000.0  # a Unix time, for resets given as one
RATE = RateLimit()
MAX_WAIT = 120.0


def headers(**fields: str) -> CIMultiDict[str]:
    return CIMultiDict({name.replace("_", "-"): value for name, value in fields.items()})


# -- rate-limit headers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # The IETF draft, current form: named policies, r(emaining) and t (seconds to reset).
        (
            {"RateLimit": '"default";r=12;t=30', "RateLimit-Policy": '"default";q=100;w=60'},
            [Budget(12, 30.0, 100)],
        ),
        # ... a policy's window stands in for a reset not given.
        ({"RateLimit": '"burst";r=0', "RateLimit-Policy": '"burst";q=10;w=1'}, [Budget(0, 1.0, 10)]),
        # ... several policies at once: each is a budget.
        ({"RateLimit": '"burst";r=5;t=1, "day";r=900;t=3600'}, [Budget(5, 1.0, None), Budget(900, 3600.0, None)]),
        # Its earlier dictionary, and its separate fields with an unnamed policy.
        ({"RateLimit": "limit=100, remaining=12, reset=30"}, [Budget(12, 30.0, 100)]),
        ({"RateLimit-Remaining": "3", "RateLimit-Policy": "100;w=60"}, [Budget(3, 60.0, 100)]),
        ({"RateLimit-Limit": "50", "RateLimit-Remaining": "7", "RateLimit-Reset": "9"}, [Budget(7, 9.0, 50)]),
        # X-RateLimit-*: a reset in seconds, as a Unix time, or as one in milliseconds.
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2"}, [Budget(0, 2.0, None)]),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 42)}, [Budget(0, 42.0, None)]),
        ({"X-RateLimit-Remaining": "1", "X-RateLimit-Reset": str(int(NOW * 1000) + 1500)}, [Budget(1, 1.5, None)]),
        ({"X-RateLimit-Limit": "60", "x-ratelimit-remaining": "59"}, [Budget(59, None, 60)]),
        # A reset already past is now.
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) - 5)}, [Budget(0, 0.0, None)]),
    ],
)
def test_rate_limit_headers_in_every_spelling(fields: dict[str, str], expected: list[Budget]) -> None:
    assert list(read_budgets(CIMultiDict(fields), NOW)) == expected


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"X-RateLimit-Remaining": "lots"},
        {"X-RateLimit-Remaining": "-1", "X-RateLimit-Reset": "5"},
        {"RateLimit": "garbage;;==,,"},
        {"RateLimit": '"default";t=30'},  # no remaining: nothing to go by
        {"RateLimit-Remaining": "inf"},
        {"RateLimit-Remaining": "nan"},
    ],
)
def test_nonsense_rate_limit_headers_are_ignored(fields: dict[str, str]) -> None:
    assert read_budgets(CIMultiDict(fields), NOW) == ()


def test_a_nonsense_reset_leaves_the_budget_without_one() -> None:
    assert read_budgets(headers(X_RateLimit_Remaining="0", X_RateLimit_Reset="soon"), NOW) == (Budget(0, None),)


# -- pauses after 429 and 503 ---------------------------------------------------------


def refused(
    state: HostState, at: float, *, status: int = 429, retry_after: float | None = None, rate: RateLimit = RATE
) -> float:
    """The pause a refusal answered at ``at`` (sent just before) leads to."""
    return answered(state, Answer(status, at - 0.01, 0.01, retry_after), rate, MAX_WAIT, at).seconds


def test_retry_after_is_the_pause_exactly_however_short_or_long() -> None:
    assert refused(HostState(), 1.0, retry_after=1.0) == 1.0  # not the 5 s cooldown
    assert refused(HostState(), 1.0, retry_after=12.0) == 12.0  # longer than the cooldown too
    assert refused(HostState(), 1.0, retry_after=0.0) == 0.0
    assert refused(HostState(), 1.0, retry_after=3600.0) == MAX_WAIT  # never beyond max_retry_after


def test_without_retry_after_the_pause_starts_short_and_doubles_up_to_the_cooldown() -> None:
    state, pauses, at = HostState(), [], 0.0
    for _ in range(5):
        at += 10.0  # each refusal answers a request sent after the pause before it
        pauses.append(refused(state, at, status=503))
    assert pauses == [COOLDOWN_START, 2.0, 4.0, 5.0, 5.0]


def test_a_success_starts_the_pauses_over() -> None:
    state = HostState()
    assert [refused(state, 10.0), refused(state, 20.0)] == [1.0, 2.0]
    answered(state, Answer(200, 29.0, 0.01), RATE, MAX_WAIT, 30.0)
    assert refused(state, 40.0) == 1.0


def test_refusals_of_requests_sent_before_the_pause_are_one_refusal() -> None:
    state = HostState()
    first = answered(state, Answer(429, 9.9, 0.1), RATE, MAX_WAIT, 10.0)
    # Seven more requests were on their way when the first refusal came back.
    others = [answered(state, Answer(429, 9.95, 0.1), RATE, MAX_WAIT, 10.0 + i / 100).seconds for i in range(7)]
    assert first.seconds == 1.0 and others == [1.0] * 7
    # Nor does a success sent before the pause end the streak.
    answered(state, Answer(200, 9.9, 0.2), RATE, MAX_WAIT, 10.1)
    assert refused(state, 12.0) == 2.0


def test_a_cooldown_shorter_than_the_start_is_the_pause() -> None:
    assert refused(HostState(), 1.0, rate=RateLimit(cooldown=0.2)) == 0.2
    assert refused(HostState(), 1.0, rate=RateLimit(cooldown=0)) == 0.0


def test_a_pause_says_why() -> None:
    state = HostState()
    said = answered(state, Answer(429, 0.0, 0.01, 2.0), RATE, MAX_WAIT, 1.0).reason
    assert said == "HTTP 429, Retry-After: 2"
    assert answered(state, Answer(503, 5.0, 0.01), RATE, MAX_WAIT, 5.0).reason.startswith("HTTP 503 (2nd in a row)")


# -- the host's budget -----------------------------------------------------------------


def test_a_used_up_budget_pauses_the_host_until_its_reset_whatever_the_status() -> None:
    state = HostState()
    answer = Answer(200, 0.0, 0.01, budgets=(Budget(0, 3.0),))
    assert answered(state, answer, RATE, MAX_WAIT, 1.0).seconds == 3.0
    assert answered(state, Answer(200, 2.0, 0.01, budgets=(Budget(0, 999.0),)), RATE, 60.0, 2.0).seconds == 60.0
    # A 429 whose budget is used up, without Retry-After: until the reset too.
    assert answered(state, Answer(429, 3.0, 0.01, budgets=(Budget(0, 7.0),)), RATE, MAX_WAIT, 3.0).seconds == 7.0
    # Without a reset (nor a window) nothing is known: no pause.
    assert answered(HostState(), Answer(200, 0.0, 0.01, budgets=(Budget(0, None),)), RATE, MAX_WAIT, 1.0).seconds == 0


def test_a_low_budget_is_spread_over_the_time_left_until_its_reset() -> None:
    state = HostState()
    answered(state, Answer(200, 0.0, 0.01, budgets=(Budget(4, 2.0, 100),)), RATE, MAX_WAIT, 10.0)
    assert gap(state, RATE, 10.0) == 0.5  # 4 requests in 2 s
    assert gap(state, RATE, 12.5) == 0.0  # the budget has renewed since
    # Plenty left: no pace; and an answer with a budget that is not low ends a pace.
    answered(state, Answer(200, 0.0, 0.01, budgets=(Budget(90, 2.0, 100),)), RATE, MAX_WAIT, 13.0)
    assert gap(state, RATE, 13.0) == 0.0
    # Without a limit, 10 or fewer is low; the gap is capped by max_delay.
    answered(state, Answer(200, 0.0, 0.01, budgets=(Budget(1, 3600.0),)), RATE, MAX_WAIT, 14.0)
    assert gap(state, RATE, 14.0) == RATE.max_delay
    # The most demanding of several budgets wins.
    budgets = (Budget(5, 1.0, 100), Budget(2, 4.0, 100))
    answered(state, Answer(200, 0.0, 0.01, budgets=budgets), RATE, MAX_WAIT, 20.0)
    assert gap(state, RATE, 20.0) == 2.0


def test_an_answer_without_budget_headers_keeps_the_pace_until_the_reset() -> None:
    state = HostState()
    answered(state, Answer(200, 0.0, 0.01, budgets=(Budget(2, 2.0, 100),)), RATE, MAX_WAIT, 0.0)
    answered(state, Answer(200, 0.5, 0.01), RATE, MAX_WAIT, 0.6)
    assert gap(state, RATE, 0.6) == 1.0


# -- adaptive pacing ---------------------------------------------------------------------

ADAPTIVE = RateLimit(adaptive=True)


def latencies(state: HostState, rate: RateLimit, values: list[float], status: int = 200) -> list[float]:
    """The gap after each answer that took so long (each sent a second after the last answer)."""
    gaps = []
    for latency in values:
        at = max(state.paused_at, 0.0) + 1.0
        answered(state, Answer(status, at, latency), rate, MAX_WAIT, at + latency)
        gaps.append(round(gap(state, rate, at + latency), 4))
    return gaps


def test_adaptive_pacing_starts_careful_and_speeds_up_while_the_host_is_healthy() -> None:
    state = HostState()
    assert gap(state, ADAPTIVE, 0.0) == ADAPTIVE_START
    gaps = latencies(state, ADAPTIVE, [0.01] * 8)
    assert gaps[0] == (ADAPTIVE_START + 0.01) / 2  # halfway towards latency / target_concurrency
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 0.02
    assert gap(HostState(), RateLimit(adaptive=False), 0.0) == 0.0  # off: nothing


def test_adaptive_pacing_slows_down_at_once_when_latency_rises() -> None:
    state = HostState()
    latencies(state, ADAPTIVE, [0.01] * 8)
    assert latencies(state, ADAPTIVE, [0.4]) == [0.4]
    # Aiming at two requests in the host's hands: half the latency.
    two = RateLimit(adaptive=True, target_concurrency=2)
    assert latencies(HostState(delay=0.01), two, [0.4]) == [0.2]


def test_adaptive_pacing_backs_off_on_429_and_503_and_error_pages_never_speed_it_up() -> None:
    state = HostState(delay=0.1)
    assert latencies(state, ADAPTIVE, [0.001], status=429) == [0.2]
    assert latencies(state, ADAPTIVE, [0.001], status=503) == [0.4]
    assert latencies(state, ADAPTIVE, [0.001], status=404) == [0.4]  # fast, but an error page
    assert latencies(state, ADAPTIVE, [0.001], status=200) == [0.2005]


def test_adaptive_pacing_stays_within_max_delay_and_starts_from_the_configured_floor() -> None:
    state = HostState(delay=20.0)
    capped = RateLimit(adaptive=True, max_delay=25.0)
    assert latencies(state, capped, [0.001], status=429) == [25.0]
    assert latencies(HostState(), RateLimit(adaptive=True), [60.0]) == [30.0]
    assert gap(HostState(), RateLimit(adaptive=True, min_delay=2.0), 0.0) == 2.0
    # Backing off doubles the gap actually kept, the configured one if that is wider.
    assert latencies(HostState(delay=0.01), RateLimit(adaptive=True, min_delay=1.0), [0.001], status=429) == [2.0]


# -- robots.txt -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("robots", "expected"),
    [
        ("Crawl-delay: 2", 2.0),
        ("Crawl-delay: 0.5", 0.5),
        ("Request-rate: 1/5s", 5.0),
        ("Crawl-delay: 1\nRequest-rate: 3/1m", 20.0),  # the longer of the two
        ("Disallow: /private", None),
        ("Crawl-delay: soon", None),
    ],
)
def test_the_delay_robots_txt_asks_for(robots: str, expected: float | None) -> None:
    parser = Protego.parse(f"User-agent: *\n{robots}\n")
    assert crawl_delay(parser, "crawlrunner", "https://example.com") == expected


def test_an_absurd_crawl_delay_is_capped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    parser = Protego.parse("User-agent: *\nCrawl-delay: 86400\n")
    with caplog.at_level(logging.WARNING, logger="crawlrunner.http.robots"):
        assert crawl_delay(parser, "crawlrunner", "https://example.com") == MAX_CRAWL_DELAY
    assert "https://example.com/robots.txt asks for 86400 s between requests; waiting 60 s" in caplog.text


# -- the tracker: pauses carried out through a real HostSlots, counted --------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_the_tracker_pauses_the_host_and_counts_only_what_a_running_pause_did_not_cover() -> None:
    clock, slots = Clock(), HostSlots(8)
    polite = HostPoliteness(slots, clock=clock)
    url = "https://Shop.example/items/1"
    host = polite.host(url)
    settings = FetchSettings()
    polite.answered(host, url, settings, 429, headers(Retry_After="2"), sent_at=99.9)
    clock.now = 101.0  # half-way through: a second refusal extends the pause by 1 s
    polite.answered(host, url, settings, 503, headers(Retry_After="2"), sent_at=99.95)
    clock.now = 200.0  # long after: a new pause
    polite.answered(host, url, settings, 429, headers(), sent_at=199.0)
    polite.answered(host, url, settings, 200, headers(), sent_at=199.5)

    stats = polite.stats["https://shop.example"]
    assert (stats.throttled, stats.unavailable, stats.cooldowns) == (2, 1, 2)
    assert stats.cooldown_seconds == pytest.approx(2.0 + 1.0 + 2.0)  # the third is the 2nd in a row: 2 s
    assert polite.cooling_left(url) == pytest.approx(2.0)
    assert slots._host(url).cooldown_until > 0  # the gate was told


def test_an_origin_never_holds_the_urls_credentials() -> None:
    polite = HostPoliteness(HostSlots(8), clock=Clock())
    assert polite.host("https://ada:s3cret-pw@Shop.example:8443/items?page=2").origin == "https://shop.example:8443"
    assert polite.host("HTTP://ada:s3cret-pw@Shop.example").origin == "http://shop.example"
    assert list(polite.stats) == ["https://shop.example:8443", "http://shop.example"]


def test_the_tracker_asks_for_the_robots_delay_and_keeps_it() -> None:
    polite = HostPoliteness(HostSlots(8), clock=Clock())
    host = polite.host("http://a.example:8080/x")
    assert polite.gap(host, RATE, 0.0) == 0.0
    assert polite.gap(host, RATE, 1.5) == 1.5
    assert polite.gap(host, ADAPTIVE, 1.5) == 1.5 and polite.gap(host, ADAPTIVE, 0.0) == ADAPTIVE_START
    polite.robots_delay("http://a.example:8080/y", 1.5)
    assert polite.stats["http://a.example:8080"].crawl_delay == 1.5


def test_the_live_view_says_which_host_is_cooling_down() -> None:
    stats = RunStats(hosts={"https://shop.example": HostStats(cooling_until=time.perf_counter() + 2.5)})
    stats.hosts["https://calm.example"] = HostStats(cooling_until=time.perf_counter() - 1)
    header = LiveView(stats, {}).header()
    assert header.endswith("in flight; cooling down: shop.example (3 s left)")


# -- the gap, as HostSlots keeps it ---------------------------------------------------------------


async def test_a_gap_learnt_holds_the_very_next_send_and_one_that_ends_frees_a_waiting_one_at_once() -> None:
    slots, url = HostSlots(8), "http://gapped.example/x"
    current = [0.0]  # the gap the host's answers call for, as the tracker would say it now
    sent: list[float] = []

    async def send() -> None:
        async with slots.hold(url, RATE, lambda: current[0]):
            sent.append(time.monotonic())

    await send()
    current[0] = 0.5  # an answer just asked for a gap: the next send keeps it
    await send()
    current[0] = 30.0  # a budget nearly used up: a send waits ...
    waiting = asyncio.create_task(send())
    await asyncio.sleep(0.3)
    assert len(sent) == 2
    current[0] = 0.0  # ... until an answer says the budget is fresh again: then it goes, not 30 s later
    async with asyncio.timeout(2):
        await waiting

    assert sent[1] - sent[0] >= 0.5 - 0.01
    assert sent[2] - sent[1] < 5  # at about 0.3 s + a recheck: far from the 30 s the queued gap said


async def test_requests_queued_behind_a_gap_take_the_gap_of_the_moment_not_one_each() -> None:
    slots, url = HostSlots(8), "http://queued.example/x"
    current = [0.4]
    sent: list[float] = []

    async def send() -> None:
        async with slots.hold(url, RATE, lambda: current[0]):
            sent.append(time.monotonic())

    await send()
    queued = [asyncio.create_task(send()) for _ in range(4)]
    await asyncio.sleep(0.5)  # one went after the gap; three wait for theirs
    current[0] = 0.0  # the window renewed: the rest go together
    async with asyncio.timeout(2):
        await asyncio.gather(*queued)

    gaps = [b - a for a, b in zip(sent, sent[1:], strict=False)]
    assert gaps[0] >= 0.4 - 0.01
    assert sent[-1] - sent[0] < 1.5  # not 4 × 0.4 s chained one after another


# -- budgets and the requests on their way --------------------------------------------------------


def test_a_budget_no_larger_than_the_requests_on_their_way_is_spread_or_paused_from_the_next_send() -> None:
    # 20 a window, 9 left, 7 sent after this one and not answered yet: 2 are ours until the reset in 3 s.
    state = HostState()
    pause = answered(state, Answer(200, 0.0, 0.01, budgets=(Budget(9, 3.0, 20),), later=7), RATE, MAX_WAIT, 1.0)
    assert pause.seconds == 0 and gap(state, RATE, 1.0) == 1.5
    # 12 left with 7 on their way is plenty (well over 10% of 20, more than 2 beyond them): no gap.
    answered(state, Answer(200, 0.0, 0.01, budgets=(Budget(12, 3.0, 20),), later=7), RATE, MAX_WAIT, 1.1)
    assert gap(state, RATE, 1.1) == 0.0
    # 5 left and 6 on their way: none for a new send before the reset, so the host is paused until it.
    pause = answered(state, Answer(200, 0.0, 0.01, budgets=(Budget(5, 2.5, 20),), later=6), RATE, MAX_WAIT, 1.2)
    assert pause.seconds == 2.5


async def test_the_tracker_counts_only_the_requests_sent_after_the_answered_one() -> None:
    clock, slots = Clock(), HostSlots(8)
    polite = HostPoliteness(slots, clock=clock)
    url = "https://api.example/x"
    host = polite.host(url)
    first = polite.sending(host)
    for _ in range(3):
        clock.now += 0.01
        polite.sending(host)
    polite.answered(host, url, FetchSettings(), 200, headers(X_RateLimit_Remaining="3", X_RateLimit_Reset="2"), first)
    polite.done(host, first)
    # 3 left, 3 sent after it: none for a new send: paused until the reset.
    assert polite.cooling_left(url) == pytest.approx(2.0)
    assert host.stats.requests == 4 and len(host.on_the_way) == 3


async def test_a_pause_running_past_the_sessions_end_counts_only_up_to_it() -> None:
    clock, slots = Clock(), HostSlots(8)
    polite = HostPoliteness(slots, clock=clock)
    url = "https://Shop.example/items/1"
    host = polite.host(url)
    polite.answered(host, url, FetchSettings(), 429, headers(Retry_After="5"), sent_at=99.9)
    clock.now = 101.5  # the last request is answered 1.5 s into the pause: nothing waits for the rest
    polite.session_ended()

    assert (host.stats.cooldowns, host.stats.cooldown_seconds) == (1, pytest.approx(1.5))
    assert polite.cooling_left(url) == 0.0
