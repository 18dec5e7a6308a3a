"""An opt-in guard for crawls of untrusted link graphs: no private addresses.

With ``http.block_private_addresses: true``, a request whose host is, or
resolves to, a loopback, private, link-local, multicast, reserved or
unspecified address is refused (``blocked_address``). The check runs on the
addresses actually connected to, so it also holds after redirects and
against DNS answers that change between lookups.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from ..errors import FetchError


class BlockedAddress(FetchError):
    kind = "blocked_address"


class BlockedAddressOSError(OSError):
    """Raised inside the resolver, where aiohttp expects an OSError."""


def is_blocked(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def check_url(url: str) -> None:
    """Refuse a URL whose host is a literal blocked address (aiohttp resolves no literals)."""
    host = urlsplit(url).hostname or ""
    if is_blocked(host):
        raise BlockedAddress(f"{host} is a private, loopback or reserved address (block_private_addresses)")


class GuardedResolver(AbstractResolver):
    """The default resolver, refusing answers that point inside the network."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        allowed = [a for a in answers if not is_blocked(a["host"])]
        if not allowed:
            shown = ", ".join(sorted({a["host"] for a in answers}))
            raise BlockedAddressOSError(f"{host} resolves to {shown}: private, loopback or reserved (block_private_addresses)")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def blocked_cause(exc: BaseException) -> Any:
    """The guard's refusal inside an aiohttp connection error, if that is what it is."""
    cause = getattr(exc, "os_error", None) or exc.__cause__
    return cause if isinstance(cause, BlockedAddressOSError) else None
