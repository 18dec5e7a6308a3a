"""Politeness as the host sees it: every arrival is timed in the server, and the run must leave the host alone
when it asked to be (429/503, Retry-After, rate-limit headers, robots.txt), for as long as it asked, not more.

Each test gets a host of its own (a real aiohttp server on 127.0.0.1) whose answers it sets.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

from crawlrunner.api import RunResult, run_async
from crawlrunner.cli import main
from crawlrunner.spec import load_spec

from ..conftest import ThreadedServer, query

Spec = Callable[..., Path]
# Requests already on their way when a refusal reached the client arrive just after it: they are not
# requests sent during the pause.
IN_FLIGHT = 0.05


@dataclass
class Arrival:
    at: float  # time.monotonic() when the request reached the handler
    wall: float  # time.time(), the same moment
    path: str
    status: int


Answer = tuple[int, dict[str, str], float]  # status, headers, seconds before answering


@dataclass
class Host:
    """One test's server: answers as ``answer`` says (given the arrival's number, from 1), and times arrivals."""

    answer: Callable[[int], Answer] = lambda n: (200, {}, 0.0)
    robots: str = ""  # robots.txt (none when empty)
    pages: int = 7  # /site/{n}.html links to pages 2n+1 and 2n+2 below this
    arrivals: list[Arrival] = field(default_factory=list)

    async def page(self, request: web.Request) -> web.Response:
        status, headers, latency = self.answer(len(self.arrivals) + 1)
        self.arrivals.append(Arrival(time.monotonic(), time.time(), request.path_qs, status))
        if latency:
            await asyncio.sleep(latency)
        if request.path.startswith("/site/"):
            n = int(request.match_info["n"])
            links = "".join(f"<a href='/site/{m}.html'>{m}</a>" for m in (2 * n + 1, 2 * n + 2) if m < self.pages)
            return web.Response(text=f"<html><body>{links}</body></html>", content_type="text/html", status=status)
        return web.json_response({"n": len(self.arrivals)}, status=status, headers=headers)

    async def robots_txt(self, request: web.Request) -> web.Response:
        return web.Response(text=self.robots) if self.robots else web.Response(status=404)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/robots.txt", self.robots_txt)
        app.router.add_get("/site/{n:\\d+}.html", self.page)
        app.router.add_get("/{tail:.*}", self.page)
        return app

    def gaps(self, arrivals: list[Arrival] | None = None) -> list[float]:
        times = [a.at for a in (self.arrivals if arrivals is None else arrivals)]
        return [b - a for a, b in zip(times, times[1:], strict=False)]


@pytest.fixture
def host() -> Iterator[tuple[Host, str]]:
    site = Host()
    with ThreadedServer(site.app()) as running:
        yield site, running.url


async def crawl(write_spec: Spec, output: str | Path, text: str, **values: object) -> RunResult:
    return await run_async(load_spec(write_spec(text, **values)), output=output)


def host_stats(db: Path) -> list[tuple[Any, ...]]:
    return query(
        db,
        "SELECT origin, requests, throttled, unavailable, cooldowns, round(cooldown_seconds, 1), crawl_delay"
        " FROM _crawlrunner_host_stats",
    )


# -- pauses after 429 and 503 ----------------------------------------------------------------


async def test_a_429_pauses_the_host_for_its_retry_after_and_nothing_arrives_meanwhile(
    host: tuple[Host, str], write_spec: Spec, db_path: Path
) -> None:
    site, base = host
    # Every 20th request is refused for a second; the cooldown (5 s by default) is not the pause.
    site.answer = lambda n: (429, {"Retry-After": "1"}, 0.0) if n % 20 == 0 else (200, {}, 0.01)
    result = await crawl(
        write_spec, db_path,
        "name: p\nhttp: {{base_url: '{base}', limits: {{connections: 4}}, retry: {{backoff: 0.01}}}}\n"
        "targets:\n  - {{name: pages, url: '/page/{{n}}', vars: {{n: {{from: 1, to: 60}}}}}}\n",
        base=base,
    )  # fmt: skip

    assert result.ok
    refusals = [a for a in site.arrivals if a.status == 429]
    assert len(refusals) == 3 and len(site.arrivals) == 63
    for refused in refusals:
        after = [a.at - refused.at for a in site.arrivals if a.at > refused.at + IN_FLIGHT]
        print(f"after the 429 at {refused.path}: the next request {min(after):.3f} s later")
        assert 1.0 <= min(after) < 2.0, "the pause is the Retry-After's second, not the 5 s cooldown"
    assert result.stats.targets["pages"].throttled == 3
    [(origin, requests, throttled, unavailable, cooldowns, seconds, crawl_delay)] = host_stats(db_path)
    assert (origin, requests, throttled, unavailable, cooldowns, crawl_delay) == (base, 63, 3, 0, 3, None)
    assert seconds == pytest.approx(3.0, abs=0.15)


async def test_refusals_without_retry_after_pause_the_host_longer_each_time(
    host: tuple[Host, str], write_spec: Spec, db_path: Path
) -> None:
    site, base = host
    site.answer = lambda n: (503, {}, 0.0) if n <= 2 else (200, {}, 0.0)
    result = await crawl(
        write_spec, db_path,
        "name: p\nhttp: {{base_url: '{base}', limits: {{connections: 1}}, retry: {{attempts: 3, backoff: 0.01}}}}\n"
        "targets:\n  - {{name: pages, urls: [/a, /b]}}\n",
        base=base,
    )  # fmt: skip

    assert result.ok
    assert [(a.path, a.status) for a in site.arrivals] == [("/a", 503), ("/a", 503), ("/a", 200), ("/b", 200)]
    first, second, _ = site.gaps()
    print(f"pauses: {first:.3f} s, {second:.3f} s")
    assert 1.0 <= first < 1.5  # the short start
    assert 2.0 <= second < 2.5  # doubled: the host still refused
    assert result.stats.targets["pages"].unavailable == 2
    assert host_stats(db_path) == [(base, 4, 0, 2, 2, 3.0, None)]


# -- the host's rate-limit headers -----------------------------------------------------------


@pytest.mark.parametrize("form", ["seconds", "unix time"])
async def test_a_used_up_rate_limit_pauses_the_host_until_its_reset(
    form: str, host: tuple[Host, str], write_spec: Spec, db_path: Path
) -> None:
    site, base = host
    resume_at: list[float] = []

    def answer(n: int) -> Answer:
        if n != 5:
            return 200, {"X-RateLimit-Remaining": "100"}, 0.01
        now = time.time()
        reset = now + 1 if form == "seconds" else math.ceil(now) + 1
        resume_at.append(reset)
        return 200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset if form != "seconds" else 1)}, 0.0

    site.answer = answer
    result = await crawl(
        write_spec, db_path,
        "name: p\nhttp: {{base_url: '{base}', limits: {{connections: 2}}}}\n"
        "targets:\n  - {{name: pages, url: '/page/{{n}}', vars: {{n: {{from: 1, to: 10}}}}}}\n",
        base=base,
    )  # fmt: skip

    assert result.ok and len(site.arrivals) == 10
    used_up = site.arrivals[4]
    later = [a.wall for a in site.arrivals if a.at > used_up.at + IN_FLIGHT]
    print(
        f"the budget renewed {resume_at[0] - used_up.wall:.3f} s after it ran out; next request after {min(later) - used_up.wall:.3f} s"
    )
    assert resume_at[0] <= min(later) < resume_at[0] + 0.5
    assert host_stats(db_path)[0][1:5] == (10, 0, 0, 1)


async def test_a_budget_running_low_is_spread_until_its_reset(
    host: tuple[Host, str], write_spec: Spec, db_path: Path
) -> None:
    site, base = host
    # 4 requests left of 100, the quota renews in 1.2 s: one every 0.3 s.
    site.answer = lambda n: (200, {"RateLimit": "limit=100, remaining=4, reset=1.2"}, 0.0)
    result = await crawl(
        write_spec, db_path,
        "name: p\nhttp: {{base_url: '{base}', limits: {{connections: 1}}}}\n"
        "targets:\n  - {{name: pages, url: '/page/{{n}}', vars: {{n: {{from: 1, to: 4}}}}}}\n",
        base=base,
    )  # fmt: skip

    assert result.ok
    gaps = site.gaps()
    print("gaps:", [round(g, 3) for g in gaps])
    # From the very next request on: the first answer said 4 remain.
    assert min(gaps) >= 0.29


@dataclass
class Window:
    """A host's fixed-window rate limit, as the server keeps it: ``limit`` requests per ``seconds``,
    said in X-RateLimit-Limit/Remaining/Reset; a request over it is refused (429, no Retry-After)."""

    limit: int
    seconds: float
    latency: float
    start: float | None = None
    used: dict[int, int] = field(default_factory=dict)

    def __call__(self, n: int) -> Answer:
        now = time.monotonic()
        self.start = now if self.start is None else self.start
        window = int((now - self.start) // self.seconds)
        used = self.used[window] = self.used.get(window, 0) + 1
        reset = self.start + (window + 1) * self.seconds - now
        remaining = max(self.limit - used, 0)
        headers = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(remaining),
                   "X-RateLimit-Reset": f"{reset:.3f}"}  # fmt: skip
        return (429 if used > self.limit else 200), headers, self.latency


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_windowed_rate_limit_is_used_window_after_window_without_a_429(
    backend: str, host: tuple[Host, str], write_spec: Spec, db_path: Path, request: pytest.FixtureRequest
) -> None:
    site, base = host
    # 12 a second, 48 requests, 8 at a time: 4 windows' worth. The requests on their way count
    # against what remains (none over the limit), and a fresh window ends the spreading of the last
    # one's few (no window starved by gaps learnt in the one before).
    limit = Window(limit=12, seconds=1.0, latency=0.05)
    site.answer = limit
    output: str | Path = request.getfixturevalue("pg_url") if backend == "postgresql" else db_path
    result = await crawl(
        write_spec, output,
        "name: p\nhttp: {{base_url: '{base}', limits: {{connections: 8}}, retry: {{backoff: 0.01}}}}\n"
        "targets:\n  - {{name: pages, url: '/page/{{n}}', vars: {{n: {{from: 1, to: 48}}}}}}\n",
        base=base,
    )  # fmt: skip

    assert result.ok
    print("requests per window:", [limit.used[w] for w in sorted(limit.used)])
    assert [a for a in site.arrivals if a.status == 429] == []
    assert len(site.arrivals) == 48
    # Each window but the last is used well: at most one more window than 48 / 12.
    assert len(limit.used) <= 5


# -- robots.txt ---------------------------------------------------------------------------------


@pytest.mark.parametrize("robots", [True, False], ids=["obeyed", "ignored"])
async def test_crawl_delay_spaces_the_requests_of_a_target_that_follows_links(
    robots: bool, host: tuple[Host, str], write_spec: Spec, db_path: Path
) -> None:
    site, base = host
    site.robots = "User-agent: *\nCrawl-delay: 0.3\n"
    result = await crawl(
        write_spec, db_path,
        "name: p\nhttp: {{base_url: '{base}', limits: {{connections: 4}}}}\n"
        "targets:\n  - name: site\n    url: /site/0.html\n    follow: {{max_depth: 3, robots: {robots}}}\n",
        base=base, robots="true" if robots else "false",
    )  # fmt: skip

    assert result.ok and len(site.arrivals) == site.pages
    gaps = site.gaps()
    print("gaps:", [round(g, 3) for g in gaps])
    if robots:
        assert min(gaps) >= 0.29
        assert host_stats(db_path) == [(base, 7, 0, 0, 0, 0.0, 0.3)]
    else:
        assert min(gaps) < 0.1  # pages linked from one page go together
        assert host_stats(db_path) == [(base, 7, 0, 0, 0, 0.0, None)]


def test_plan_shows_the_crawl_delay_a_run_learnt(
    host: tuple[Host, str], write_spec: Spec, db_path: Path, cli: CliRunner
) -> None:
    site, base = host
    site.robots = "User-agent: *\nCrawl-delay: 0.3\n"
    spec = write_spec(
        "name: p\nhttp: {{base_url: '{base}'}}\n"
        "targets:\n  - name: site\n    url: /site/{{n}}.html\n    vars: {{n: [0, 1, 2]}}\n    follow: {{max_depth: 1}}\n",
        base=base,
    )
    before = cli.invoke(main, ["plan", str(spec), "-o", str(db_path), "-n", "0"])
    assert cli.invoke(main, ["run", str(spec), "-o", str(db_path), "-q"]).exit_code == 0

    after = cli.invoke(main, ["plan", str(spec), "-o", str(db_path), "-n", "0"])

    assert f"  {base}: 3 known requests, more from site; no rate limit, 8 at a time" in before.output
    assert (
        f"  {base}: 3 known requests, more from site; 1 request every 0.3 s (robots.txt Crawl-delay 0.3 s), "
        "8 at a time, "
    ) in after.output


# -- adaptive pacing ----------------------------------------------------------------------------

FAST, SLOW = 12, 0.2  # the first 12 requests are answered at once, the rest in 0.2 s
REFUSED = 21  # and this one is refused (with Retry-After: 0, so that no pause hides the back-off)


async def test_adaptive_pacing_slows_down_as_latency_rises_and_backs_off_on_429(
    host: tuple[Host, str], write_spec: Spec, db_path: Path
) -> None:
    site, base = host

    def answer(n: int) -> Answer:
        if n == REFUSED:
            return 429, {"Retry-After": "0"}, 0.0
        return 200, {}, 0.005 if n <= FAST else SLOW

    site.answer = answer
    result = await crawl(
        write_spec, db_path,
        "name: p\nhttp: {{base_url: '{base}', limits: {{connections: 2}}, retry: {{backoff: 0.01}},"
        " rate_limit: {{adaptive: true}}}}\n"
        "targets:\n  - {{name: pages, url: '/page/{{n}}', vars: {{n: {{from: 1, to: 25}}}}}}\n",
        base=base,
    )  # fmt: skip

    assert result.ok
    gaps = site.gaps()
    print("gaps:", [round(g, 3) for g in gaps])
    # Gap i is between arrivals i + 1 and i + 2. Healthy and fast: well under the slow latency, and
    # with two connections the host sees more than one request in the time one takes later.
    assert statistics.median(gaps[8 : FAST - 1]) < 0.05
    # Slow: the gap follows the latency (not two requests at a time, as two connections would send).
    assert min(gaps[FAST + 2 : REFUSED - 1]) >= SLOW * 0.75
    # Refused: the gap doubles (from the request after the next: that one had its turn already).
    assert max(gaps[REFUSED - 1 : REFUSED + 2]) >= 2 * SLOW * 0.9
    assert max(gaps[FAST + 2 : REFUSED - 1]) < 1.5 * SLOW


# -- what the user sees ---------------------------------------------------------------------------


def test_the_summary_counts_429s_and_pauses_and_v_logs_each_retry(
    host: tuple[Host, str], write_spec: Spec, db_path: Path, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    site, base = host
    monkeypatch.setenv("CR_POLITE_KEY", "sesame-polite-0042")
    site.answer = lambda n: (429, {"Retry-After": "1"}, 0.0) if n == 2 else (200, {}, 0.0)
    spec = write_spec(
        "name: p\nhttp: {{base_url: '{base}', limits: {{connections: 1}}, retry: {{backoff: 0.01}}}}\n"
        "targets:\n  - {{name: pages, url: '/page/{{n}}?key=${{env.CR_POLITE_KEY}}', vars: {{n: {{from: 1, to: 3}}}}}}\n",
        base=base,
    )
    result = cli.invoke(main, ["run", str(spec), "-o", str(db_path), "-v"])

    assert result.exit_code == 0, result.output
    port_host = base.partition("://")[2]
    assert f"pages GET {base}/page/2?key=*** → 429; attempt 2 of 3 in 1.00 s (the host is paused)" in result.stderr
    assert f"{base}: leaving the host alone for 1.0 s (HTTP 429, Retry-After: 1)" in result.stderr
    assert f"throttled: pages 1 × 429; hosts cooled down: {port_host} 1.0 s in 1 pause" in result.stdout
    assert "sesame-polite-0042" not in result.output


def test_plan_shows_how_a_host_pushed_back_in_the_last_run(
    host: tuple[Host, str], write_spec: Spec, db_path: Path, cli: CliRunner
) -> None:
    site, base = host
    site.answer = lambda n: (429, {"Retry-After": "1"}, 0.0) if n in (2, 4) else (200, {}, 0.0)
    spec = write_spec(
        "name: p\nhttp: {{base_url: '{base}', limits: {{connections: 1}}, retry: {{backoff: 0.01}}}}\n"
        "targets:\n  - {{name: pages, url: '/page/{{n}}', vars: {{n: {{from: 1, to: 5}}}}}}\n",
        base=base,
    )
    before = cli.invoke(main, ["plan", str(spec), "-o", str(db_path), "-n", "0"])
    assert cli.invoke(main, ["run", str(spec), "-o", str(db_path), "-q"]).exit_code == 0

    after = cli.invoke(main, ["plan", str(spec), "-o", str(db_path), "-n", "0"])

    assert "last run" not in before.output
    assert f"  {base}: 5 known requests; no rate limit, 8 at a time, " in after.output
    assert ", last run: 2 × 429, paused 2.0 s" in after.output


# -- host_stats, on both backends -------------------------------------------------------------------


async def test_a_pause_after_the_last_request_is_not_counted_as_time_the_host_was_left_alone(
    host: tuple[Host, str], write_spec: Spec, db_path: Path
) -> None:
    site, base = host
    # The last request is refused for 5 s and not retried: nothing waits for that pause.
    site.answer = lambda n: (429, {"Retry-After": "5"}, 0.0) if n == 3 else (200, {}, 0.0)
    started = time.monotonic()
    result = await crawl(
        write_spec, db_path,
        "name: p\nhttp: {{base_url: '{base}', limits: {{connections: 1}}, retry: {{attempts: 1}}}}\n"
        "targets:\n  - {{name: pages, url: '/page/{{n}}', vars: {{n: {{from: 1, to: 3}}}}}}\n",
        base=base,
    )  # fmt: skip
    took = time.monotonic() - started

    assert not result.ok and len(site.arrivals) == 3
    (_, requests, throttled, _, cooldowns, seconds, _) = host_stats(db_path)[0]
    assert (requests, throttled, cooldowns) == (3, 1, 1)
    assert seconds <= took < 5


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_host_stats_add_up_over_the_sessions_of_a_resumed_run(
    backend: str, host: tuple[Host, str], write_spec: Spec, db_path: Path, request: pytest.FixtureRequest
) -> None:
    site, base = host
    site.answer = lambda n: (429, {"Retry-After": "1"}, 0.0) if n in (2, 7) else (200, {}, 0.0)
    output: str | Path = request.getfixturevalue("pg_url") if backend == "postgresql" else db_path
    spec = load_spec(
        write_spec(
            "name: p\nhttp: {{base_url: '{base}', limits: {{connections: 1}}, retry: {{backoff: 0.01}}}}\n"
            "targets:\n  - {{name: pages, url: '/page/{{n}}', vars: {{n: {{from: 1, to: 6}}}}}}\n",
            base=base,
        )
    )
    first = await run_async(spec, output=output, max_requests=3)
    second = await run_async(spec, output=output, resume=True)

    assert first.status == "limited" and second.ok and second.run_id == first.run_id
    assert len(site.arrivals) == 8  # 6 pages, 2 of them twice
    expected = (first.run_id, base, 8, 2, 0, 2, 2.0, None)
    assert await read_host_stats(output) == [expected]


async def read_host_stats(output: str | Path) -> list[tuple[Any, ...]]:
    """The ``host_stats`` rows, from an SQLite file or a PostgreSQL database (seconds to one decimal)."""
    columns = "run_id, origin, requests, throttled, unavailable, cooldowns, {seconds}, crawl_delay"
    if isinstance(output, Path):
        return query(
            output, f"SELECT {columns.format(seconds='round(cooldown_seconds, 1)')} FROM _crawlrunner_host_stats"
        )
    import asyncpg

    seconds = "round(cooldown_seconds::numeric, 1)::float8"
    conn = await asyncpg.connect(output)
    try:
        return [
            tuple(row)
            for row in await conn.fetch(f"SELECT {columns.format(seconds=seconds)} FROM _crawlrunner_host_stats")
        ]
    finally:
        await conn.close()


async def test_host_stats_that_cannot_be_kept_do_not_fail_a_finished_crawl(
    host: tuple[Host, str], write_spec: Spec, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, base = host
    text = "name: p\nhttp: {{base_url: '{base}'}}\ntargets:\n  - {{name: t, url: /a}}\n"
    assert (await crawl(write_spec, db_path, text, base=base)).ok
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute("DROP TABLE _crawlrunner_host_stats")  # a database that cannot take the counts

    result = await crawl(write_spec, db_path, text, base=base)

    assert result.ok and result.status == "completed"
    assert "the hosts' politeness counts were not kept (host_stats)" in caplog.text
