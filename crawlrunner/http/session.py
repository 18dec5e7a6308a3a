"""The ``aiohttp.ClientSession`` a run uses, built from the spec's settings, and the one-hop sessions beside it.

Every request goes through the run's one pooled session, except a redirect
to another host than the request's own: that hop goes through a session of
its own (``leaving_hop``), where the link-local rule cannot be skipped by a
cached DNS answer, a shared lookup or a kept-alive connection (``http.guard``).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from yarl import URL

from ..settings import HttpSettings, Timeouts
from .guard import GuardedResolver, check_url

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
        # The pooled connector carries a request's own host only (redirects
        # elsewhere take leaving_hop), where the link-local rule does not apply.
        resolver=GuardedResolver(block_private=True) if http.block_private_addresses else None,
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
    ) as session:
        yield session


@asynccontextmanager
async def leaving_hop(
    pooled: aiohttp.ClientSession, url: str, *, block_private: bool
) -> AsyncIterator[aiohttp.ClientSession]:
    """A session for one redirect to another host (``url``), closed with its connector on every path out.

    The link-local rule lives here and nowhere else: the literal address is
    checked before the session exists, a name in its resolver, which no
    DNS cache and no kept-alive connection can bypass (``use_dns_cache=False``,
    ``force_close=True``) and which no other request shares. It takes the
    pooled session's cookie jar and environment settings, so cookies set
    across a redirect behave as before.
    """
    check_url(url, block_private=block_private, leaving_host=True)
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(block_private=block_private, leaving_host=True),
        use_dns_cache=False,
        force_close=True,
        enable_cleanup_closed=_NEEDS_CLEANUP_CLOSED,
    )
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=pooled.timeout,
        raise_for_status=False,
        trust_env=pooled.trust_env,
        cookie_jar=pooled.cookie_jar,
    ) as session:
        yield session
