"""The one ``aiohttp.ClientSession`` a run uses, built from the spec's settings."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from ..settings import HttpSettings, Timeouts

# aiohttp needs its own clean-up of closed TLS transports only on Pythons
# without cpython#118960 (fixed in 3.12.8 and 3.13.1); asking for it on a
# fixed Python is a DeprecationWarning.
_NEEDS_CLEANUP_CLOSED = sys.version_info < (3, 12, 8) or (3, 13, 0) <= sys.version_info < (3, 13, 1)

DNS_CACHE_SECONDS = 300
KEEPALIVE_SECONDS = 30.0


def client_timeout(timeouts: Timeouts) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=timeouts.total,
        connect=timeouts.connect,
        sock_connect=timeouts.sock_connect,
        sock_read=timeouts.sock_read,
    )


@asynccontextmanager
async def open_session(http: HttpSettings) -> AsyncIterator[aiohttp.ClientSession]:
    """A pooled session honouring the run's limits; closed on every path out."""
    connector = aiohttp.TCPConnector(
        limit=http.limits.connections,
        limit_per_host=http.limits.per_host,
        ttl_dns_cache=DNS_CACHE_SECONDS,
        keepalive_timeout=KEEPALIVE_SECONDS,
        enable_cleanup_closed=_NEEDS_CLEANUP_CLOSED,
    )
    # Headers are sent per request (targets merge their own over the run's),
    # and status codes are judged by the fetcher, so the session stays plain.
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=client_timeout(http.timeout),
        raise_for_status=False,
        trust_env=False,
    ) as session:
        yield session
