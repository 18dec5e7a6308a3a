"""robots.txt, fetched once per origin through the run's session (protego parses it).

Following RFC 9309: a robots.txt that does not exist (4xx) allows everything;
one that cannot be fetched (5xx, network error) disallows everything for that
origin. The engine records such requests as failed (``robots_unreachable``),
since the site is most likely down; requests robots.txt forbids are skipped
and counted, not failed. A failure is classified by ``http.translate``, as
for any other request, and its message becomes the reason.

``delay`` is what robots.txt asks of our user agent between two requests
(``Crawl-delay``, or ``Request-rate`` as seconds per request, whichever is
longer), capped at ``MAX_CRAWL_DELAY`` with a warning: the engine keeps it as
a floor under the target's own ``rate_limit``.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import aiohttp
from protego import Protego

from ..errors import HTTPStatusError
from .translate import translate

log = logging.getLogger(__name__)

MAX_ROBOTS_BYTES = 512 * 1024
# A Crawl-delay beyond this (a day, by mistake or on purpose) would stall the
# crawl of the site: it is applied as this, and a warning says so.
MAX_CRAWL_DELAY = 60.0
# The verdict for a URL that robots.txt forbids; any other text is the reason
# robots.txt could not be fetched.
DISALLOWED = "disallowed"


class RobotsPolicy:
    def __init__(self, session: aiohttp.ClientSession, user_agent: str, timeout: aiohttp.ClientTimeout) -> None:
        self._session = session
        self._user_agent = user_agent
        self._timeout = timeout
        self._parsers: dict[str, Protego | str | None] = {}  # str: why it is unreachable
        self._locks: dict[str, asyncio.Lock] = {}
        self._delays: dict[str, float | None] = {}

    async def verdict(self, url: str) -> str | None:
        """None if ``url`` may be fetched; else ``DISALLOWED`` or why robots.txt is unreachable."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._parsers:
            async with self._locks.setdefault(origin, asyncio.Lock()):
                if origin not in self._parsers:
                    self._parsers[origin] = await self._fetch(origin)
        parser = self._parsers[origin]
        if parser is None:
            return None
        if isinstance(parser, str):
            return parser
        return None if parser.can_fetch(url, self._user_agent) else DISALLOWED

    def delay(self, url: str) -> float | None:
        """Seconds ``url``'s robots.txt asks for between requests (None: none, or not read); after ``verdict``."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._delays:
            if origin not in self._parsers:
                return None  # robots.txt not read yet: nothing known
            parser = self._parsers[origin]
            self._delays[origin] = (
                crawl_delay(parser, self._user_agent, origin) if isinstance(parser, Protego) else None
            )
        return self._delays[origin]

    async def _fetch(self, origin: str) -> Protego | str | None:
        robots_url = f"{origin}/robots.txt"
        try:
            # No redirects: a robots.txt that moves (maybe inside the network)
            # is treated as missing.
            async with self._session.get(
                robots_url, headers={"User-Agent": self._user_agent}, timeout=self._timeout, allow_redirects=False
            ) as response:
                if 300 <= response.status < 500:
                    return None
                if response.status >= 500:
                    raise HTTPStatusError(f"HTTP {response.status} {response.reason or ''}".rstrip())
                body = await response.content.read(MAX_ROBOTS_BYTES)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = translate(exc)  # re-raises what is not a network failure (a bug)
            reason = f"{robots_url} is unreachable ({error.kind}: {error}); nothing on {origin} may be fetched"
            log.warning("%s", reason)
            return reason
        return Protego.parse(body.decode("utf-8", errors="replace"))


def crawl_delay(parser: Protego, user_agent: str, origin: str) -> float | None:
    """The longer of ``Crawl-delay`` and ``Request-rate`` for ``user_agent``, at most ``MAX_CRAWL_DELAY``."""
    rate = parser.request_rate(user_agent)
    asked = max(parser.crawl_delay(user_agent) or 0.0, rate.seconds / rate.requests if rate else 0.0)
    if not asked:
        return None
    if asked > MAX_CRAWL_DELAY:
        log.warning(
            "%s/robots.txt asks for %.0f s between requests; waiting %.0f s (the most crawlrunner waits)",
            origin, asked, MAX_CRAWL_DELAY,
        )  # fmt: skip
        return MAX_CRAWL_DELAY
    return float(asked)
