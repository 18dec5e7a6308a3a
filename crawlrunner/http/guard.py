"""Where requests may go: the address guard, the link-local rule and the host allow-list.

Three checks, all before a connection is made:

- ``http.block_private_addresses: true`` refuses a request whose host is, or
  resolves to, a loopback, private, link-local, multicast, reserved or
  unspecified address.
- Always, a redirect to another host than the request's own may not reach a
  link-local or cloud metadata address (``spec.hosts.is_link_local``): a
  public page must not be able to send the crawler to 169.254.169.254. The
  request's own host may be one (a device crawled on purpose).
- ``http.allowed_hosts`` refuses any host (and port) not on the list.

Addresses are checked on what the host resolves to, in the resolver aiohttp
connects with, so the rules hold after redirects and against DNS answers
that change between lookups; aiohttp resolves no literal address, so the
fetcher checks those (``check_url``). The resolver knows which request it
resolves for through a context variable the fetcher sets around each
redirect hop (``hop``). An answer aiohttp already cached, or a connection it
keeps alive, was checked for the request that made it: one that reaches a
link-local address could only come from a host the crawl is meant to reach.

A refusal is ``blocked_address``. The resolver's is an OSError (what aiohttp
expects from a resolver); ``http.translate`` turns the connection error
aiohttp wraps it in back into ``blocked_address``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import SimpleNamespace
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from ..errors import BlockedAddress, BlockedAddressOSError
from ..spec.hosts import AllowedHosts, is_blocked, is_link_local

# True while a redirect to another host than the request's own is being sent.
_leaving_host: ContextVar[bool] = ContextVar("crawlrunner_leaving_host", default=False)

_PRIVATE = "a private, loopback or reserved address (block_private_addresses)"
_LINK_LOCAL = "a link-local or cloud metadata address, where a redirect to another host may not lead"


@contextmanager
def hop(leaving_host: bool) -> Iterator[None]:
    """Mark what is sent inside as a redirect to another host (or not): the link-local rule applies."""
    token = _leaving_host.set(leaving_host)
    try:
        yield
    finally:
        _leaving_host.reset(token)


def _refusal(address: str, block_private: bool) -> str | None:
    """Why ``address`` may not be connected to now, or None."""
    if block_private and is_blocked(address):
        return _PRIVATE
    if _leaving_host.get() and is_link_local(address):
        return _LINK_LOCAL
    return None


def hostname(url: str) -> str | None:
    """The URL's host, lower-case; None for a URL too broken to have one (aiohttp reports it: invalid_url)."""
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def check_url(url: str, *, block_private: bool = True) -> None:
    """Refuse a URL whose host is a literal address the rules refuse (aiohttp resolves no literals)."""
    host = hostname(url) or ""
    reason = _refusal(host, block_private)
    if reason is not None:
        raise BlockedAddress(f"{host} is {reason}")


class GuardedResolver(AbstractResolver):
    """The default resolver, refusing answers the rules refuse for the request at hand."""

    def __init__(self, *, block_private: bool) -> None:
        self._inner = DefaultResolver()
        self._block_private = block_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        reasons = [_refusal(answer["host"], self._block_private) for answer in answers]
        allowed = [answer for answer, reason in zip(answers, reasons, strict=True) if reason is None]
        if not allowed:
            shown = ", ".join(sorted({a["host"] for a in answers}))
            raise BlockedAddressOSError(f"{host} resolves to {shown}: {next(r for r in reasons if r)}")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def allowed_hosts_gate(allowed: AllowedHosts) -> aiohttp.TraceConfig:
    """A trace hook refusing, before aiohttp opens or takes a connection, a host not on the list.

    Every request of the run's session passes it (each redirect hop is a
    request of its own, and so is robots.txt). Through a proxy or a gateway
    it is the URL asked for that is checked, not the proxy.
    """

    async def on_request_start(
        session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestStartParams
    ) -> None:
        host, port = params.url.host or "", params.url.port
        if not allowed.allows(host, port):
            shown = f"[{host}]" if ":" in host else host
            raise BlockedAddress(f"{shown}:{port} is not in http.allowed_hosts")

    gate = aiohttp.TraceConfig()
    gate.on_request_start.append(on_request_start)
    return gate
