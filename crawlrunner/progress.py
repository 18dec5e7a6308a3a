"""Progress while a run goes: a live display on a terminal, plain lines elsewhere.

The engine keeps a ``LiveView`` (its counters, what is in flight, what is
waiting to be retried); a reporter task samples it. On a terminal the
display is drawn with rich and redrawn in place; on anything else (CI, a
pipe, a file) a plain line per target is written every ``interval``
seconds, with no control codes.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Protocol

from .stats import RunStats


@dataclass
class LiveView:
    """What a reporter can see of a running crawl."""

    stats: RunStats
    totals: Mapping[str, int | None]  # known request totals per target (None: found while crawling)
    started: float = field(default_factory=time.monotonic)
    in_flight: int = 0
    retrying: int = 0
    cluster: tuple[int, int] | None = None  # (requests, records) of every worker of a shared run
    # Requests held back while a token endpoint is down: ``3 waiting for a token: …``, or "".
    tokens_waiting: Callable[[], str] = field(default=lambda: "")

    def line(self, name: str) -> str:
        stats = self.stats.targets[name]
        done = stats.requests
        total = self.totals.get(name)
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = done / elapsed
        parts = [f"{name}: {done}" + (f"/{total}" if total else "") + " requests"]
        parts.append(f"{rate:.1f}/s")
        if stats.failed:
            parts.append(f"{stats.failed} failed")
        parts.append(f"{stats.records} records")
        if total and rate and done < total:
            parts.append(f"ETA {duration((total - done) / rate)}")
        return ", ".join(parts)

    def header(self) -> str:
        elapsed = time.monotonic() - self.started
        extra = f", {self.retrying} waiting to retry" if self.retrying else ""
        extra += _cooling(self.stats)
        if waiting := self.tokens_waiting():
            extra += f"; {waiting}"
        if self.cluster is not None:
            extra += f"; the whole run, every worker: {self.cluster[0]} requests, {self.cluster[1]} records"
        return f"{duration(elapsed)} elapsed, {self.in_flight} in flight{extra}"


def _cooling(stats: RunStats, shown: int = 3) -> str:
    """``; cooling down: shop.example (3 s left)`` for the hosts paused now (the longest pauses first)."""
    now = time.perf_counter()  # the clock HostStats.cooling_until is on
    left = sorted(((h.cooling_until - now, o) for o, h in stats.hosts.items() if h.cooling_until > now), reverse=True)
    if not left:
        return ""
    hosts = ", ".join(f"{origin.partition('://')[2]} ({math.ceil(s)} s left)" for s, origin in left[:shown])
    more = f" and {len(left) - shown} more" if len(left) > shown else ""
    return f"; cooling down: {hosts}{more}"


def duration(seconds: float) -> str:
    """Seconds as a person reads them: 42s, 3m05s, 2h10m."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Reporter(Protocol):
    async def run(self, view: LiveView) -> None: ...


class PlainReporter:
    """A line per target every ``interval`` seconds: for logs and CI."""

    def __init__(self, out: IO[str] | None = None, interval: float = 10.0) -> None:
        self.out = out or sys.stderr
        self.interval = interval

    async def run(self, view: LiveView) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.out.write(f"progress: {view.header()}\n")
            for name in view.stats.targets:
                self.out.write(f"progress:   {view.line(name)}\n")
            self.out.flush()


class LiveReporter:
    """A live table redrawn in place on a terminal (rich)."""

    def __init__(self, refresh: float = 0.25) -> None:
        self.refresh = refresh

    async def run(self, view: LiveView) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.table import Table

        def render() -> Table:
            table = Table(title=view.header(), title_justify="left", box=None, pad_edge=False)
            for column in ("target", "done", "total", "req/s", "failed", "records", "ETA"):
                table.add_column(column, justify="left" if column == "target" else "right")
            elapsed = max(time.monotonic() - view.started, 1e-9)
            for name, stats in view.stats.targets.items():
                total = view.totals.get(name)
                rate = stats.requests / elapsed
                eta = duration((total - stats.requests) / rate) if total and rate and stats.requests < total else ""
                table.add_row(
                    name, str(stats.requests), str(total or "?"), f"{rate:.1f}",
                    str(stats.failed), str(stats.records), eta,
                )  # fmt: skip
            return table

        console = Console(stderr=True)
        with Live(render(), console=console, refresh_per_second=1 / self.refresh, transient=True) as live:
            try:
                while True:
                    await asyncio.sleep(self.refresh)
                    live.update(render())
            except asyncio.CancelledError:
                live.update(render())
                raise


def reporter_for(stream: IO[str], *, interval: float = 10.0) -> Reporter:
    """A live display on a terminal, plain lines anywhere else."""
    return LiveReporter() if stream.isatty() else PlainReporter(stream, interval)
