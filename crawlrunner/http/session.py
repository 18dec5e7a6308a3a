"""The one ``aiohttp.ClientSession`` a run uses, built from the spec's settings."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from yarl import URL

from ..settings import HttpSettings, Timeouts
from ..spec.hosts import AllowedHosts
from .guard import GuardedResolver, allowed_hosts_gate

# aiohttp needs its own clean-up of closed TLS transports only on Pythons
# without cpython#118960 (fixed in 3.12.8 and 3.13.1); asking for it on a
# fixed Python is a DeprecationWarning.
_NEEDS_CLEANUP_CLOSED = sys.version_info < (3, 12, 8) or (3, 13, 0) <= sys.version_info < (3, 13, 1)


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
    limits = http.limits
    connector = aiohttp.TCPConnector(
        # Always guarded: redirects to another host may never reach a
        # link-local address, with or without block_private_addresses.
        resolver=GuardedResolver(block_private=http.block_private_addresses),
        limit=limits.connections,
        limit_per_host=limits.per_host,
        use_dns_cache=limits.dns_cache != 0,
        ttl_dns_cache=None if limits.dns_cache is None else int(limits.dns_cache),
        keepalive_timeout=limits.keepalive,
        enable_cleanup_closed=_NEEDS_CLEANUP_CLOSED,
    )
    # Headers are sent per request (targets merge their own over the run's),
    # and status codes are judged by the fetcher, so the session stays plain.
    # One cookie jar per run: cookies set by one response go with the next.
    # unsafe=True: accept cookies from hosts given as IP addresses too.
    jar = aiohttp.CookieJar(unsafe=True)
    if http.cookies:
        # The spec's cookies belong to base_url's host; without one, to every host.
        jar.update_cookies(dict(http.cookies), response_url=URL(http.base_url) if http.base_url else URL())
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=client_timeout(http.timeout),
        raise_for_status=False,
        trust_env=http.trust_env,
        cookie_jar=jar,
        trace_configs=[allowed_hosts_gate(AllowedHosts.of(http.allowed_hosts))] if http.allowed_hosts else None,
    ) as session:
        yield session
