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

from ..settings import RateLimit


class _Host:
    def __init__(self, concurrency: int) -> None:
        self.semaphore = asyncio.Semaphore(concurrency) if concurrency else None
        self.cooldown_until = 0.0
        self.next_at: dict[RateLimit, float] = {}
        self.lock = asyncio.Lock()


class _Turn:
    __slots__ = ("gap", "host", "rate")

    def __init__(self, host: _Host, rate: RateLimit, gap: float) -> None:
        self.host = host
        self.rate = rate
        self.gap = gap

    async def __aenter__(self) -> None:
        host, rate = self.host, self.rate
        if host.semaphore is not None:
            await host.semaphore.acquire()
        # Most hosts have no pacing and no cooldown: skip the lock then.
        if rate.interval or self.gap or host.cooldown_until:
            try:
                await HostSlots._wait_turn(host, rate, max(rate.interval, self.gap))
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

    def hold(self, url: str, rate: RateLimit, gap: float = 0.0) -> _Turn:
        """A turn to send one request to ``url``'s host, paced and outside any cooldown.

        Use as ``async with slots.hold(url, rate):``. ``gap``: seconds to keep
        after this send beyond ``rate``'s interval (the host's robots.txt, its
        rate-limit headers, adaptive pacing), on ``rate``'s pacer. A plain
        class rather than a generator-based context manager: this runs for
        every request.
        """
        return _Turn(self._host(url), rate, gap)

    @staticmethod
    async def _wait_turn(host: _Host, rate: RateLimit, interval: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            async with host.lock:
                now = loop.time()
                start = max(now, host.cooldown_until, host.next_at.get(rate, 0.0) if interval else 0.0)
                if interval:
                    host.next_at[rate] = start + interval
            if start <= now:
                return
            await asyncio.sleep(start - now)
            if host.cooldown_until <= loop.time():
                return  # a cooldown that began while we slept sends us round again

    def cool_down(self, url: str, seconds: float) -> None:
        """Leave ``url``'s host alone for ``seconds`` (a 429 or 503 came back)."""
        host = self._host(url)
        until = asyncio.get_running_loop().time() + seconds
        host.cooldown_until = max(host.cooldown_until, until)
