"""An opt-in guard for crawls of untrusted link graphs: no private addresses.

With ``http.block_private_addresses: true``, a request whose host is, or
resolves to, a loopback, private, link-local, multicast, reserved or
unspecified address is refused (``blocked_address``). The check runs on the
addresses actually connected to, so it also holds after redirects and
against DNS answers that change between lookups. The resolver's refusal is
an OSError (what aiohttp expects from a resolver); ``http.translate`` turns
the connection error aiohttp wraps it in back into ``blocked_address``.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from ..errors import BlockedAddress, BlockedAddressOSError


def is_blocked(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None and is_blocked(str(embedded)):
            return True
    return not ip.is_global or ip.is_multicast


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPATIBLE = ipaddress.ip_network("::/96")
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4, IPv4-compatible)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or ip in _COMPATIBLE or ip in _TRANSLATED:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def check_url(url: str) -> None:
    """Refuse a URL whose host is a literal blocked address (aiohttp resolves no literals)."""
    host = urlsplit(url).hostname or ""
    if is_blocked(host):
        raise BlockedAddress(f"{host} is a private, loopback or reserved address (block_private_addresses)")


class GuardedResolver(AbstractResolver):
    """The default resolver, refusing answers that point inside the network."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        allowed = [a for a in answers if not is_blocked(a["host"])]
        if not allowed:
            shown = ", ".join(sorted({a["host"] for a in answers}))
            raise BlockedAddressOSError(
                f"{host} resolves to {shown}: private, loopback or reserved (block_private_addresses)"
            )
        return allowed

    async def close(self) -> None:
        await self._inner.close()
