"""Progress while a run goes: a live display on a terminal, plain lines elsewhere.

The engine keeps a ``LiveView`` (its counters, what is in flight, what is
waiting to be retried); a reporter task samples it. On a terminal the
display is drawn with rich and redrawn in place; on anything else (CI, a
pipe, a file) a plain line per target is written every ``interval``
seconds, with no control codes.

While the live display is up, log lines bound for its terminal go through
its console: each is printed above the display, which is then drawn again
below it (a line written straight to the terminal would land inside the
display and break every redraw after it).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Protocol, cast

from .stats import RunStats, TargetStats

if TYPE_CHECKING:
    from rich.console import Console


@dataclass
class LiveView:
    """What a reporter can see of a running crawl.

    A target's total is known before crawling when it makes only start
    requests; one whose requests are found while crawling (pagination, links,
    children, sitemaps) shows its *discovered* total instead: done, in flight
    and queued so far, marked ``≥`` since it may grow. A resumed run's counts
    continue from its earlier sessions (``earlier``); rates and ETAs are this
    session's.
    """

    stats: RunStats
    totals: Mapping[str, int | None]  # known request totals per target (None: found while crawling)
    started: float = field(default_factory=time.monotonic)
    in_flight: int = 0
    retrying: int = 0
    cluster: tuple[int, int] | None = None  # (requests, records) of every worker of a shared run
    # Requests held back while a token endpoint is down: ``3 waiting for a token: …``, or "".
    tokens_waiting: Callable[[], str] = field(default=lambda: "")
    earlier: Mapping[str, TargetStats] = field(default_factory=dict)  # a resumed run's earlier sessions
    queued: Callable[[], Mapping[str, int]] = field(default=dict)  # found and waiting, per target (the frontier's)
    flying: Counter[str] = field(default_factory=Counter)  # in flight per target
    stopping: bool = False  # the first Ctrl-C/SIGTERM came: requests in flight finish, no new ones start

    def count(self, name: str, what: str = "requests") -> int:
        """``name``'s requests (or ``failed``, ``records``) in the whole run: this session's and the earlier ones'."""
        earlier = self.earlier.get(name)
        return int(getattr(self.stats.targets[name], what)) + (int(getattr(earlier, what)) if earlier else 0)

    def done(self, name: str) -> int:
        return self.count(name)

    def total(self, name: str) -> tuple[int, bool]:
        """``name``'s request total and whether it is known (False: discovered so far, it may grow)."""
        known = self.totals.get(name)
        if known is not None:
            return known, True
        return self.done(name) + self.flying[name] + self.queued().get(name, 0), False

    def rate(self, name: str | None = None) -> float:
        """Requests per second in this session, of ``name`` or of every target."""
        targets = self.stats.targets
        done = targets[name].requests if name is not None else sum(t.requests for t in targets.values())
        return done / max(time.monotonic() - self.started, 1e-9)

    def eta(self, done: int, total: int, rate: float) -> str:
        return duration((total - done) / rate) if rate and done < total else ""

    def line(self, name: str) -> str:
        done, (total, known), rate = self.done(name), self.total(name), self.rate(name)
        if known:
            parts = [f"{name}: {done}" + (f"/{total}" if total else "") + " requests"]
        else:
            parts = [f"{name}: {done} requests ({total} found so far)"]
        parts.append(f"{rate:.1f}/s")
        if failed := self.count(name, "failed"):
            parts.append(f"{failed} failed")
        parts.append(f"{self.count(name, 'records')} records")
        if known and (eta := self.eta(done, total, rate)):
            parts.append(f"ETA {eta}")
        return ", ".join(parts)

    def overall(self) -> str:
        """``overall: 120/≥480 requests (25%), 12.0/s, ETA ≥30s``: ``≥`` when a total is only discovered so far."""
        names = list(self.stats.targets)
        done = sum(self.done(name) for name in names)
        totals = [self.total(name) for name in names]
        total = sum(count for count, _ in totals)
        at_least = "" if all(known for _, known in totals) else "≥"
        rate = self.rate()
        parts = [f"overall: {done}/{at_least}{total} requests" + (f" ({done / total:.0%})" if total else "")]
        parts.append(f"{rate:.1f}/s")
        if eta := self.eta(done, total, rate):
            parts.append(f"ETA {at_least}{eta}")
        return ", ".join(parts)

    def header(self) -> str:
        elapsed = time.monotonic() - self.started
        if self.stopping:
            return f"stopping: {self.in_flight} in flight, finishing… ({duration(elapsed)} elapsed)"
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
            self.out.write(f"progress:   {view.overall()}\n")
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
            for name in view.stats.targets:
                done, (total, known), rate = view.done(name), view.total(name), view.rate(name)
                table.add_row(
                    name, str(done), str(total) if known else f"≥{total}", f"{rate:.1f}",
                    str(view.count(name, "failed")), str(view.count(name, "records")),
                    view.eta(done, total, rate) if known else "",
                )  # fmt: skip
            table.caption, table.caption_justify = view.overall(), "left"
            return table

        console = Console(stderr=True)
        live_display = Live(render(), console=console, refresh_per_second=1 / self.refresh, transient=True)
        with live_display as live, logs_above(console):
            try:
                while True:
                    await asyncio.sleep(self.refresh)
                    live.update(render())
            finally:
                # Gone before the summary is printed. Live.stop() draws the last
                # renderable once more, uncropped, before a transient display
                # erases it: a table taller than the terminal would scroll out
                # of reach and stay behind. Nothing is drawn, so nothing stays.
                live.update("", refresh=True)


@contextmanager
def logs_above(console: Console) -> Iterator[None]:
    """Log handlers that write to ``console``'s terminal write through ``console`` meanwhile.

    The handlers are crawlrunner's and those its records propagate to (the
    root's, in a program that set up logging itself); each gets its stream
    back afterwards.
    """
    swapped = [(handler, handler.stream) for handler in _handlers_on(console)]
    above = _AboveTheDisplay(console)
    for handler, _ in swapped:
        handler.setStream(cast("IO[str]", above))
    try:
        yield
    finally:
        for handler, stream in swapped:
            handler.setStream(stream)  # which writes out what ``above`` still holds (a line not ended)


class _AboveTheDisplay:
    """A log handler's stream printing each line through a live display's console, so above the display.

    Unlike rich's ``FileProxy`` it does not wrap lines at the terminal's width
    (the terminal wraps them, as it would without the display): a JSON log
    line stays one line for whoever copies it.
    """

    def __init__(self, console: Console) -> None:
        self._console = console
        self._partial = ""

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        if lines:
            self._print("\n".join(lines))
        return len(text)

    def flush(self) -> None:
        if self._partial:
            self._print(self._partial)
            self._partial = ""

    def _print(self, text: str) -> None:
        from rich.text import Text

        self._console.print(Text(text), soft_wrap=True)


def _handlers_on(console: Console) -> list[logging.StreamHandler[IO[str]]]:
    """The stream handlers crawlrunner's log records reach that write to the terminal ``console`` draws on."""
    terminal = _device(console.file)
    found: list[logging.StreamHandler[IO[str]]] = []
    logger: logging.Logger | None = logging.getLogger(__name__.partition(".")[0])
    while logger is not None:
        found += [
            h for h in logger.handlers
            if isinstance(h, logging.StreamHandler) and terminal is not None and _device(h.stream) == terminal
        ]  # fmt: skip
        logger = logger.parent if logger.propagate else None
    return found


def _device(stream: object) -> tuple[int, int] | None:
    """The (device, inode) a stream writes to, so that two objects on one terminal are known as one."""
    try:
        info = os.fstat(stream.fileno())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):  # no file behind it (a StringIO), or closed
        return None
    return info.st_dev, info.st_ino


def reporter_for(stream: IO[str], *, interval: float = 10.0) -> Reporter:
    """A live display on a terminal, plain lines anywhere else."""
    return LiveReporter() if stream.isatty() else PlainReporter(stream, interval)
