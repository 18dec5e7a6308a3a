"""robots.txt, fetched once per origin through the run's session (protego parses it).

Following RFC 9309: a robots.txt that does not exist (4xx) allows everything;
one that cannot be fetched (5xx, network error) disallows everything for that
origin. The engine records such requests as failed (``robots_unreachable``),
since the site is most likely down; requests robots.txt forbids are skipped
and counted, not failed. A failure is classified by ``http.translate``, as
for any other request, and its message becomes the reason.
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
