"""One request plan in, one FetchResult out; failures are results, not exceptions.

For each attempt the fetcher takes the host's slot (concurrency, pacing,
cooldown), sends the request, follows redirects itself (so credentials never
cross to another origin and only http(s) targets are followed), and reads the
body within its limit, into memory or, for downloads, into a file. A failed
attempt is retried as the retry policy decides; a 429 or 503 also cools the
whole host down. Exceptions become crawlrunner's in ``http.translate``, the
one place that maps aiohttp's; ``asyncio.CancelledError`` is never caught.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urljoin, urlsplit

import aiohttp

from ..errors import BodyTooLarge, ErrorKind, HTTPStatusError, RedirectRefused, TooManyRedirects
from ..plan import SITEMAP, RequestPlan
from ..results import FetchResult, utc_now
from ..settings import FetchSettings
from .auth import Credentials, same_origin, strip_credentials, with_query
from .guard import Destinations, hostname
from .retry import decide, parse_retry_after
from .session import leaving_hop
from .tls import SSLArgument
from .translate import translate

if TYPE_CHECKING:  # an interface the engine hands over: HostSlots, or a backend's shared one
    from ..backends.base import HostGate

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
ERROR_BODY_BYTES = 64 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
COOLDOWN_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class TargetClient:
    """Everything about sending one target's requests that is fixed for the run."""

    settings: FetchSettings
    timeout: aiohttp.ClientTimeout
    ssl: SSLArgument
    creds: Credentials
    secrets: Sequence[str] = field(default_factory=tuple)
    download_dir: Path = Path("downloads")


def _gateway_url(client: TargetClient, url: str) -> str:
    gateway = client.settings.gateway
    assert gateway is not None
    query = {gateway.key_param: gateway.api_key, gateway.url_param: url, **gateway.options}
    return f"{gateway.endpoint}{'&' if '?' in gateway.endpoint else '?'}{urlencode(query)}"


async def _read_body(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The (decompressed) body, refusing more than ``limit`` bytes as it arrives."""
    length = response.content_length
    compressed = response.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
    if length is not None and length > limit and not compressed:
        raise BodyTooLarge(f"Content-Length {length} exceeds the limit of {limit} bytes")
    if length is not None and not compressed:
        # The size is known and allowed: one read is the fast path.
        return await response.read()
    buffer = bytearray()
    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
        buffer += chunk
        if len(buffer) > limit:
            # Also where a decompression bomb stops: the limit counts inflated bytes.
            raise BodyTooLarge(f"body exceeds the limit of {limit} bytes")
    return bytes(buffer)


async def _read_prefix(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The first ``limit`` bytes of the (decompressed) body; the rest is not read."""
    buffer = bytearray()
    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
        buffer += chunk
        if len(buffer) >= limit:
            del buffer[limit:]
            break
    return bytes(buffer)


async def _download(response: aiohttp.ClientResponse, directory: Path, url: str, limit: int | None) -> tuple[str, int]:
    """Stream the body into a file named after the URL; (path, bytes written).

    ``limit`` (``max_download_bytes``) bounds the file as ``max_body_bytes`` bounds memory.
    """
    directory.mkdir(parents=True, exist_ok=True)
    name = os.path.basename(urlsplit(url).path) or "index"
    path = directory / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}-{name[:100]}"
    partial = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.part")
    written = 0
    try:
        with partial.open("wb") as fh:
            async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                fh.write(chunk)
                written += len(chunk)
                if limit is not None and written > limit:
                    raise BodyTooLarge(f"download exceeds the limit of {limit} bytes (max_download_bytes)")
        partial.replace(path)  # a file under its final name is always complete
    finally:
        partial.unlink(missing_ok=True)
    return str(path), written


@dataclass(frozen=True, slots=True)
class _Hop:
    """What one hop of an attempt sends: a redirect changes the URL and maybe the rest."""

    url: str
    method: str
    data: Any
    json_body: Any
    headers: Mapping[str, str]
    creds: Credentials


class Fetcher:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        slots: HostGate,
        *,
        block_private: bool = False,
        allowed_hosts: Sequence[str] = (),
    ) -> None:
        self.session = session
        self.slots = slots
        self.block_private = block_private
        self.destinations = Destinations.of(allowed_hosts, block_private=block_private)
        self.retrying = 0  # requests waiting out a backoff, for the progress display

    async def fetch(self, plan: RequestPlan, client: TargetClient) -> FetchResult:
        """Make the request, retrying as the policy says; failures come back in the result."""
        result = FetchResult(target=plan.target.name, method=plan.method, url=plan.url, fetched_at="")
        if plan.invalid is not None:
            result.fetched_at = utc_now()
            result.error_kind, result.error = ErrorKind.INVALID_REQUEST, plan.invalid
            return result
        policy = client.settings.retry
        for attempt in range(1, policy.attempts + 1):
            if attempt > 1:
                # Each attempt starts clean: the log row describes the last one.
                result.attempts = attempt
                result.error_kind = result.error = result.status = result.content_type = result.charset = None
                result.body, result.headers, result.final_url = b"", {}, None
            retry_after = await self._attempt(plan, client, result)
            if result.ok:
                break
            if result.status in COOLDOWN_STATUSES:
                # Never longer than max_retry_after: a Retry-After of an hour
                # must not park every other request to the host for an hour.
                wait = min(retry_after or 0, policy.max_retry_after)
                self.slots.cool_down(self._send_url(plan.url, client), max(client.settings.rate_limit.cooldown, wait))
            decision = decide(
                policy, attempt, status=result.status, error_kind=result.error_kind, retry_after=retry_after
            )
            if not decision.retry:
                if decision.kind is not None:
                    # The policy gave up for a reason of its own (a Retry-After
                    # beyond max_retry_after): that, not the status, is the kind.
                    result.error_kind, result.error = decision.kind, f"{result.error}; {decision.reason}"
                elif attempt > 1:
                    result.error = f"{result.error} ({decision.reason})"
                break
            log.debug(
                "%s: retrying %s in %.2f s after %s", plan.target.name, plan.method, decision.delay, result.error_kind
            )
            self.retrying += 1
            try:
                await asyncio.sleep(decision.delay or 0)
                result.elapsed += decision.delay or 0
            finally:
                self.retrying -= 1
        return result

    @staticmethod
    def _send_url(url: str, client: TargetClient) -> str:
        return _gateway_url(client, url) if client.settings.gateway else url

    async def _attempt(self, plan: RequestPlan, client: TargetClient, result: FetchResult) -> float | None:
        """One attempt, redirects included; returns the Retry-After seconds, if any."""
        settings = client.settings
        creds = client.creds
        headers: Mapping[str, str] = {**plan.headers, **creds.headers} if creds.headers else plan.headers
        hop = _Hop(plan.url, plan.method, plan.data, plan.json_body, headers, creds)
        try:
            for _ in range(settings.max_redirects + 1):
                send_url = self._send_url(with_query(hop.url, hop.creds.query), client)
                # The real destination, then the gateway's endpoint (the URL
                # actually sent): both before any socket is opened.
                self.destinations.check(hop.url)
                if settings.gateway:
                    self.destinations.check(send_url)
                # The common case, the request's own URL, costs no parse.
                if hop.url is plan.url or hostname(hop.url) == hostname(plan.url):
                    step = await self._send(self.session, hop, send_url, plan, client, result)
                else:
                    # A redirect to another host: the link-local rule applies,
                    # in a session no cache or kept-alive connection can bypass.
                    async with leaving_hop(self.session, send_url, block_private=self.block_private) as session:
                        step = await self._send(session, hop, send_url, plan, client, result)
                if step is None:
                    break
                hop = step
            else:
                raise TooManyRedirects(f"more than {settings.max_redirects} redirects")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = translate(exc)
            result.error_kind, result.error = error.kind, str(error)
        # The final response's headers are there once it was read, failed or not.
        return parse_retry_after(result.headers.get("Retry-After")) if result.headers else None

    async def _send(
        self,
        session: aiohttp.ClientSession,
        hop: _Hop,
        send_url: str,
        plan: RequestPlan,
        client: TargetClient,
        result: FetchResult,
    ) -> _Hop | None:
        """One request: the next hop if it redirects, else None (the response is in ``result``)."""
        settings = client.settings
        async with self.slots.hold(send_url, settings.rate_limit):
            # Latency counts from when the host's slot is ours: waiting
            # for politeness is not the server's slowness.
            sent = time.perf_counter()
            if hop.url == plan.url:
                result.fetched_at = utc_now()
            try:
                async with session.request(
                    hop.method,
                    send_url,
                    headers=hop.headers,
                    data=hop.data,
                    json=hop.json_body,
                    timeout=client.timeout,
                    allow_redirects=False,
                    ssl=client.ssl,
                    proxy=settings.proxy,
                    middlewares=hop.creds.middlewares,
                ) as response:
                    location = response.headers.get("Location")
                    if response.status in REDIRECT_STATUSES and location and not settings.gateway:
                        return self._redirect(hop, location, response.status, client)
                    await self._read(response, plan, client, result, hop.url)
                    return None
            finally:
                result.elapsed += time.perf_counter() - sent

    def _redirect(self, hop: _Hop, location: str, status: int, client: TargetClient) -> _Hop:
        target = urljoin(hop.url, location)
        scheme = urlsplit(target).scheme.lower()
        if scheme not in ("http", "https"):
            raise RedirectRefused(f"redirect to a {scheme or 'relative'}: URL refused")
        headers, creds = hop.headers, client.creds
        if not same_origin(hop.url, target):
            target, headers = strip_credentials(target, headers, creds, client.secrets)
            creds = Credentials()
        method, data, json_body = hop.method, hop.data, hop.json_body
        if status == 303 or (status in (301, 302) and method == "POST"):
            method, data, json_body = ("HEAD" if method == "HEAD" else "GET"), None, None
        return _Hop(target, method, data, json_body, headers, creds)

    async def _read(
        self, response: aiohttp.ClientResponse, plan: RequestPlan, client: TargetClient, result: FetchResult, url: str
    ) -> None:
        result.status = response.status
        gateway_final = response.headers.get("sa-final-url") if client.settings.gateway else None
        # The URL after our own redirects, in our own spelling (yarl may
        # re-encode it, and the redactor must recognise a secret in it);
        # through a gateway, the real URL, never the gateway's with its key.
        result.final_url = gateway_final or (plan.url if client.settings.gateway else url)
        result.content_type = response.content_type
        result.charset = response.charset
        result.headers = response.headers
        if response.status >= 400:
            # Drain a small error body so the connection can be reused; it is not stored.
            try:
                result.body = await _read_body(response, min(client.settings.max_body_bytes, ERROR_BODY_BYTES))
            except BodyTooLarge:
                pass
            raise HTTPStatusError(f"HTTP {response.status} {response.reason or ''}".rstrip())
        if plan.method == "HEAD":
            return
        if plan.role == SITEMAP and plan.target.sitemap is not None:
            # A sitemap is read in memory up to its own limit, one byte past it
            # to tell a cut: cut, not failed, so the URLs before the cut are used.
            result.body = await _read_prefix(response, plan.target.sitemap.max_bytes + 1)
            return
        if client.settings.download:
            result.body_path, result.body_bytes = await _download(
                response, client.download_dir, plan.url, client.settings.max_download_bytes
            )
            return
        result.body = await _read_body(response, client.settings.max_body_bytes)
