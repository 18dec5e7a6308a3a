"""Per-host slots: how many requests a host gets at once, how often, and when to back off.

One coordinator-owned object (Scrapy's downloader ``Slot``, in spirit): each
host has a concurrency limit (``limits.per_host``), a pacer that spaces
requests (``rate_limit.per_second``/``per_minute``, ``min_delay``, and the
gap the host's own answers call for, ``http.politeness``), and a cooldown: a
host that answers 429 or 503 is left alone as a whole for a while, not just the
one request that got the answer. A request takes its slot before it is sent,
so its timeout never ticks while it waits for the host.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from ..settings import Gap, RateLimit

RECHECK = 0.1  # seconds: how often a request waiting for its gap reads it again (a fresh budget ends it)


class _Host:
    def __init__(self, concurrency: int) -> None:
        self.semaphore = asyncio.Semaphore(concurrency) if concurrency else None
        self.cooldown_until = 0.0
        self.last_sent: dict[RateLimit, float] = {}  # loop time of the last send on each rate's pacer
        self.pacers: dict[RateLimit, asyncio.Lock] = {}  # one request at a time waits for its moment


class _Turn:
    __slots__ = ("gap", "host", "rate")

    def __init__(self, host: _Host, rate: RateLimit, gap: Gap | None) -> None:
        self.host = host
        self.rate = rate
        self.gap = gap

    async def __aenter__(self) -> None:
        host, rate, gap = self.host, self.rate, self.gap
        if host.semaphore is not None:
            await host.semaphore.acquire()
        try:
            now = asyncio.get_running_loop().time()
            # Most hosts have no pacing and no cooldown: no lock then, nor a
            # coroutine of its own, only the send noted. (``rate.interval``, read
            # without the property's arithmetic: this runs for every request.)
            if rate.per_second or rate.min_delay or host.cooldown_until > now or (gap and gap()):
                await HostSlots._wait_turn(host, rate, gap)
            else:
                host.last_sent[rate] = now
        except BaseException:
            if host.semaphore is not None:
                host.semaphore.release()
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        if self.host.semaphore is not None:
            self.host.semaphore.release()


class HostSlots:
    def __init__(self, per_host: int) -> None:
        self._per_host = per_host
        self._hosts: dict[str, _Host] = {}

    def _host(self, url: str) -> _Host:
        # "scheme://netloc/..." without a full parse: this runs for every request.
        parts = url.split("/", 3)
        key = (
            parts[2].lower()
            if len(parts) > 2 and url.startswith(("http://", "https://"))
            else urlsplit(url).netloc.lower()
        )
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host(self._per_host)
        return host

    def hold(self, url: str, rate: RateLimit, gap: Gap | None = None) -> _Turn:
        """A turn to send one request to ``url``'s host, paced and outside any cooldown.

        Use as ``async with slots.hold(url, rate):``. ``gap()``: the seconds to
        keep since the last send on ``rate``'s pacer beyond ``rate``'s interval
        (the host's robots.txt, its rate-limit headers, adaptive pacing), read
        while this request waits for its moment: what the host said last
        counts, not what it said when the request queued. A plain class
        rather than a generator-based context manager: this runs for every
        request.
        """
        return _Turn(self._host(url), rate, gap)

    @staticmethod
    async def _wait_turn(host: _Host, rate: RateLimit, gap: Gap | None) -> None:
        """Wait for the moment ``rate``'s pacer (and the host's cooldown) allows, and note the send."""
        loop = asyncio.get_running_loop()
        pacer = host.pacers.get(rate)
        if pacer is None:
            pacer = host.pacers[rate] = asyncio.Lock()
        # One request at a time waits for the pacer's next moment (the others
        # queue here, in order), reading the gap again as it waits: a gap
        # learnt meanwhile counts for this very send, and a budget renewed
        # meanwhile (gap 0) lets it go at once. A cooldown holds it too.
        async with pacer:
            while True:
                now = loop.time()
                interval = max(rate.interval, gap() if gap else 0.0)
                start = max(host.cooldown_until, host.last_sent.get(rate, -interval) + interval)
                if start <= now:
                    host.last_sent[rate] = now
                    return
                await asyncio.sleep(min(start - now, RECHECK))

    def cool_down(self, url: str, seconds: float) -> None:
        """Leave ``url``'s host alone for ``seconds`` (a 429 or 503 came back)."""
        host = self._host(url)
        until = asyncio.get_running_loop().time() + seconds
        host.cooldown_until = max(host.cooldown_until, until)
