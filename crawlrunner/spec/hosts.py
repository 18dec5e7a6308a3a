"""Which hosts a run may reach: what ``allowed_hosts`` and ``block_private_addresses`` mean.

Pure rules, used twice: here, when a spec is checked (a target URL the run
would refuse is a spec error located at the URL, not a failed request per
URL), and by ``http.guard`` on every request and redirect while a run goes.

- ``is_blocked``: loopback, private, link-local, multicast, reserved and
  unspecified addresses, in any form (IPv4-mapped, NAT64, 6to4, ...): what
  ``block_private_addresses: true`` refuses.
- ``is_link_local``: 169.254.0.0/16 (where cloud metadata services answer),
  fe80::/10, the same in any IPv6 form, and two metadata addresses outside
  those ranges: what a redirect to another host may never reach, even by default.
- ``AllowedHosts``: ``http.allowed_hosts``, hosts with optional ports.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from ..settings import HttpSettings
from ..templates import Template
from .env import Context
from .loader import SpecPath
from .model import Target
from .urls import host_problem

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPATIBLE = ipaddress.ip_network("::/96")
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
# Metadata services outside the link-local ranges: AWS's IPv6 endpoint and Alibaba Cloud's.
_METADATA = frozenset({ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")})
DEFAULT_PORTS = {"http": 80, "https": 443}


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _ip(address: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    except ValueError:
        return None  # a name, not an address


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4, IPv4-compatible)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or ip in _COMPATIBLE or ip in _TRANSLATED:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _in_any_form(address: str, test: Callable[[IPAddress], bool]) -> bool:
    """Whether ``test`` holds for the address, or for an IPv4 address carried inside an IPv6 one."""
    ip = _ip(address)
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None and test(embedded):
            return True
    return test(ip)


def is_blocked(address: str) -> bool:
    """Whether ``block_private_addresses`` refuses this address (False for a name)."""
    return _in_any_form(address, lambda ip: not ip.is_global or ip.is_multicast)


def is_link_local(address: str) -> bool:
    """Whether this is a link-local or cloud metadata address, in any form (False for a name)."""
    return _in_any_form(address, lambda ip: ip.is_link_local or ip in _METADATA)


def normal_host(host: str) -> str:
    """A host as compared: lower case, no trailing dot, an IPv6 address in its one compressed form.

    yarl (so aiohttp) writes ``::FFFF:1.2.3.4`` as ``::ffff:102:304``: an
    entry written either way must match the host a request goes to.
    """
    host = host.lower().rstrip(".")
    if ":" in host:
        try:
            return ipaddress.ip_address(host.strip("[]")).compressed
        except ValueError:
            return host
    return host


def split_host(entry: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` → (normal host, port or None)."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:]
    else:
        host, _, port = entry.partition(":") if entry.count(":") == 1 else (entry, "", "")
    return normal_host(host), int(port) if port else None


def bare_ipv6(entry: str) -> bool:
    """Whether ``entry`` is an IPv6 address without the brackets a host entry needs."""
    if entry.startswith("[") or entry.count(":") < 2:
        return False
    try:
        ipaddress.IPv6Address(entry.split("%", 1)[0])
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class AllowedHosts:
    """``http.allowed_hosts``: an empty list allows every host."""

    entries: frozenset[tuple[str, int | None]]

    @classmethod
    def of(cls, written: Sequence[str]) -> AllowedHosts:
        return cls(frozenset(split_host(entry) for entry in written))

    def allows(self, host: str, port: int | None) -> bool:
        if not self.entries:
            return True
        host = normal_host(host)
        return (host, None) in self.entries or (host, port) in self.entries


def check_destinations(
    ctx: Context, raw_targets: list[tuple[int, dict[str, Any]]], targets: list[Target], http: HttpSettings
) -> None:
    """Refuse, located at the URL, a target URL the run itself would refuse.

    With ``allowed_hosts``: a host (and port) not on the list, and a
    gateway's endpoint not on it (every request is sent there). With
    ``block_private_addresses``: a literal private, loopback or link-local
    address, or ``localhost``. Only URLs whose host is written out are
    checked; one from a ``{placeholder}`` is checked when it is requested.
    """
    valid = []
    for index, entry in enumerate(http.allowed_hosts):
        if bare_ipv6(entry):
            ctx.problem(
                ("http", "allowed_hosts", index), f"an IPv6 address needs brackets: '[{entry}]' or '[{entry}]:port'"
            )
            continue
        problem = host_problem(entry)
        if problem is None:
            valid.append(entry)
        else:
            ctx.problem(("http", "allowed_hosts", index), problem)
    allowed = AllowedHosts.of(valid)
    if not (allowed.entries or http.block_private_addresses):
        return
    if allowed.entries:
        _check_gateways(ctx, raw_targets, targets, allowed)
    for (index, raw), target in zip(raw_targets, targets, strict=False):
        base = http.base_url if target.parent is None else None
        for template, path in zip(target.request.urls, _url_paths(index, raw), strict=False):
            destination = _destination(template, base)
            if destination is not None:
                _check_destination(ctx, path, *destination, allowed, http.block_private_addresses)


def _check_gateways(
    ctx: Context, raw_targets: list[tuple[int, dict[str, Any]]], targets: list[Target], allowed: AllowedHosts
) -> None:
    """A gateway endpoint off the list, once, where it is written (the target, ``defaults`` or ``http``)."""
    data = ctx.document.data if isinstance(ctx.document.data, dict) else {}
    reported: set[SpecPath] = set()
    for (index, raw), target in zip(raw_targets, targets, strict=False):
        gateway = target.fetch.gateway
        if gateway is None:
            continue
        path: SpecPath = ("http", "gateway", "endpoint")
        for where, block in ((("targets", index), raw), (("defaults",), data.get("defaults"))):
            if isinstance(block, dict) and isinstance(block.get("gateway"), dict) and "endpoint" in block["gateway"]:
                path = (*where, "gateway", "endpoint")
                break
        destination = _host_port(gateway.endpoint)
        if path in reported or destination is None:
            continue
        reported.add(path)
        host, port = destination
        if not allowed.allows(host, port):
            shown = f"[{host}]" if ":" in host else host
            ctx.problem(path, f"the gateway's endpoint {shown}:{port} is not in http.allowed_hosts")


def _url_paths(index: int, raw: dict[str, Any]) -> list[SpecPath]:
    if "url" in raw:
        return [("targets", index, "url")]
    return [("targets", index, "urls", i) for i in range(len(raw.get("urls") or ()))]


def _destination(template: Template, base_url: str | None) -> tuple[str, int | None] | None:
    """(host, port) of a URL template whose host is written out, else None."""
    prefix = template.parts[0]
    if not urlsplit(prefix).scheme:
        if base_url is None or (len(template.parts) > 1 and not prefix):
            return None  # relative to a parent's page, or all placeholder
        prefix = urljoin(base_url, prefix)
    rest = prefix.split("//", 1)[-1]
    if len(template.parts) > 1 and not any(c in rest for c in "/?#"):
        return None  # the host itself has a placeholder
    return _host_port(prefix)


def _host_port(url: str) -> tuple[str, int | None] | None:
    """(host, port with the scheme's default) of an absolute URL; None for a bad port."""
    parts = urlsplit(url)
    try:
        return parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None  # a bad port: reported by the URL's own check


def _check_destination(
    ctx: Context, path: SpecPath, host: str, port: int | None, allowed: AllowedHosts, block_private: bool
) -> None:
    if not allowed.allows(host, port):
        shown = f"[{host}]" if ":" in host else host
        ctx.problem(path, f"{shown}:{port} is not in http.allowed_hosts")
    elif block_private and (is_blocked(host) or host == "localhost" or host.endswith(".localhost")):
        ctx.problem(path, f"{host} is a private, loopback or link-local address (http.block_private_addresses)")
