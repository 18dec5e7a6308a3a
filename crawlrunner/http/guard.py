"""Where requests may go: the address guard, the link-local rule and the host allow-list.

Three checks, all before a connection is made:

- ``http.block_private_addresses: true`` refuses a request whose host is, or
  resolves to, a loopback, private, link-local, multicast, reserved or
  unspecified address.
- Always, a redirect to another host than the request's own may not reach a
  link-local or cloud metadata address (``spec.hosts.is_link_local``): a
  public page must not be able to send the crawler to 169.254.169.254. The
  request's own host may be one (a device crawled on purpose), and so may a
  request the spec or a page leads to (a next page, a followed link, a child
  target's URL): the rule is about redirects only.
- ``http.allowed_hosts`` refuses any host (and port) not on the list: the
  real destination of every hop, and a gateway's endpoint too.

Addresses are checked on what the host resolves to, in the resolver aiohttp
connects with, so the rules hold against DNS answers that change between
lookups; aiohttp resolves no literal address, so the fetcher checks those
(``check_url``) where it checks the allow-list (``Destinations``).

Which resolver applies the link-local rule is decided by the connector, not
by the request at hand: aiohttp skips the resolver for an answer it cached,
for a lookup another request already started, and for a kept-alive
connection, so a rule that depended on who asked would be skipped with it.
A redirect to another host is sent through a one-hop session of its own
(``http.session.leaving_hop``: no DNS cache, no kept-alive connection, a
resolver with the rule always on); the run's pooled session never applies it.

A refusal is ``blocked_address``. The resolver's is an OSError (what aiohttp
expects from a resolver); ``http.translate`` turns the connection error
aiohttp wraps it in back into ``blocked_address``.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from ..errors import BlockedAddress, BlockedAddressOSError
from ..spec.hosts import AllowedHosts, is_blocked, is_link_local

_PRIVATE = "a private, loopback or reserved address (block_private_addresses)"
_LINK_LOCAL = "a link-local or cloud metadata address, where a redirect to another host may not lead"


def _refusal(address: str, *, block_private: bool, leaving_host: bool) -> str | None:
    """Why ``address`` may not be connected to, or None."""
    if block_private and is_blocked(address):
        return _PRIVATE
    if leaving_host and is_link_local(address):
        return _LINK_LOCAL
    return None


def hostname(url: str) -> str | None:
    """The URL's host, lower-case; None for a URL too broken to have one (aiohttp reports it: invalid_url)."""
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def check_url(url: str, *, block_private: bool = True, leaving_host: bool = False) -> None:
    """Refuse a URL whose host is a literal address the rules refuse (aiohttp resolves no literals).

    ``leaving_host``: the URL is a redirect to another host than the request's own.
    """
    host = hostname(url) or ""
    reason = _refusal(host, block_private=block_private, leaving_host=leaving_host)
    if reason is not None:
        raise BlockedAddress(f"{host} is {reason}")


@dataclass(frozen=True, slots=True)
class Destinations:
    """The run's rules for a URL about to be sent that need no DNS: the allow-list and literal addresses."""

    allowed: AllowedHosts
    block_private: bool = False

    @classmethod
    def of(cls, allowed_hosts: Sequence[str], *, block_private: bool) -> Destinations:
        return cls(AllowedHosts.of(allowed_hosts), block_private)

    def check(self, url: str) -> None:
        """Refuse ``url`` if its host (and port) is off ``allowed_hosts`` or a literal address refused."""
        if self.allowed.entries:
            try:
                # Parsed as aiohttp will parse it: the host it connects to, the port with its default.
                parsed = URL(url)
                host, port = parsed.host or "", parsed.port
            except ValueError:
                return  # too broken to be sent: aiohttp refuses it (invalid_url) before any socket
            if not self.allowed.allows(host, port):
                shown = f"[{host}]" if ":" in host else host
                raise BlockedAddress(f"{shown}:{port} is not in http.allowed_hosts")
        if self.block_private:
            check_url(url)


class GuardedResolver(AbstractResolver):
    """The default resolver, refusing answers the rules refuse; fixed rules, whoever asks."""

    def __init__(self, *, block_private: bool, leaving_host: bool = False) -> None:
        self._inner = DefaultResolver()
        self._block_private = block_private
        self._leaving_host = leaving_host

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        reasons = [
            _refusal(answer["host"], block_private=self._block_private, leaving_host=self._leaving_host)
            for answer in answers
        ]
        allowed = [answer for answer, reason in zip(answers, reasons, strict=True) if reason is None]
        if not allowed:
            shown = ", ".join(sorted({a["host"] for a in answers}))
            raise BlockedAddressOSError(f"{host} resolves to {shown}: {next(r for r in reasons if r)}")
        return allowed

    async def close(self) -> None:
        await self._inner.close()
