"""One request plan in, one FetchResult out; failures are results, not exceptions.

For each attempt the fetcher takes the host's slot (concurrency, pacing,
cooldown), sends the request, follows redirects itself (so credentials never
cross to another origin and only http(s) targets are followed), and reads the
body within its limit, into memory or, for downloads, into a file. Every
answer goes to ``http.politeness`` first, which may pause the whole host (a
429 or 503, a used-up rate limit) or widen the gap before its next request.
A failed attempt is retried as the retry policy decides. With an auth that
fetches a token (``http.tokens``), each attempt carries the current one, and
a 401 renews it and sends the request once more; while its endpoint is
down, the request waits for the next try without holding the host's slot.
Exceptions become crawlrunner's in ``http.translate``, the one place that maps aiohttp's;
``asyncio.CancelledError`` is never caught.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlencode, urljoin, urlsplit

import aiohttp

from ..errors import BodyTooLarge, ErrorKind, HTTPStatusError, RedirectRefused, TooManyRedirects
from ..plan import SITEMAP, RequestPlan
from ..results import FetchResult, utc_now
from ..secrets import Redactor
from ..settings import FetchSettings, Gap, TokenRequest
from ..stats import HostStats
from .auth import Credentials, same_origin, strip_credentials, with_query
from .guard import Destinations, hostname
from .politeness import HostPoliteness
from .retry import decide, parse_retry_after
from .session import leaving_hop
from .tls import SSLArgument
from .tokens import ANSWER_BYTES, Answer
from .translate import translate

if TYPE_CHECKING:  # an interface the engine hands over: HostSlots, or a backend's shared one
    from ..backends.base import HostGate
    from .tokens import Token, TokenSource

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
ERROR_BODY_BYTES = 64 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class TargetClient:
    """Everything about sending one target's requests that is fixed for the run."""

    settings: FetchSettings
    timeout: aiohttp.ClientTimeout
    ssl: SSLArgument
    creds: Credentials
    secrets: Sequence[str] = field(default_factory=tuple)
    download_dir: Path = Path("downloads")
    tokens: TokenSource | None = None  # where the token of an auth that fetches one comes from


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


class _Hop(NamedTuple):
    """What one hop of an attempt sends: a redirect changes the URL and maybe the rest.

    A named tuple, immutable as a frozen dataclass but built at a quarter of
    its cost (no ``object.__setattr__`` per field): one is made per request.
    """

    url: str
    method: str
    data: Any
    json_body: Any
    headers: Mapping[str, str]
    creds: Credentials
    bearer: _Bearer | None = None  # the hop carries the auth's fetched token (not past another origin)


@dataclass(slots=True)
class _Bearer:
    """An attempt's token source, and the token its last hop carried (what a 401 refused)."""

    source: TokenSource
    sent: Token | None = None

    async def header(self) -> dict[str, str] | None:
        """The token's header; None: the endpoint just failed, wait for its next try (``source.ready``)."""
        token = await self.source.current()
        if token is None:
            return None
        self.sent = token
        return {token.header: token.value}


class Fetcher:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        slots: HostGate,
        *,
        block_private: bool = False,
        allowed_hosts: Sequence[str] = (),
        redact: Redactor | None = None,
        hosts: dict[str, HostStats] | None = None,
    ) -> None:
        self.session = session
        self.slots = slots
        self.block_private = block_private
        self.destinations = Destinations.of(allowed_hosts, block_private=block_private)
        self.retrying = 0  # requests waiting out a backoff, for the progress display
        self.redact = redact or Redactor()
        # Per origin: what its answers ask of us, carried out through ``slots``; counted in ``hosts``.
        self.politeness = HostPoliteness(slots, hosts)

    async def fetch(self, plan: RequestPlan, client: TargetClient, crawl_delay: float | None = None) -> FetchResult:
        """Make the request, retrying as the policy says; failures come back in the result.

        ``crawl_delay``: the seconds the URL's robots.txt asks for between
        requests, for a target that obeys it: a floor under its rate limit.
        """
        result = FetchResult(target=plan.target.name, method=plan.method, url=plan.url, fetched_at="")
        if plan.invalid is not None:
            result.fetched_at = utc_now()
            result.error_kind, result.error = ErrorKind.INVALID_REQUEST, plan.invalid
            return result
        policy = client.settings.retry
        if crawl_delay is not None:
            self.politeness.robots_delay(plan.url, crawl_delay)
        delay = crawl_delay or 0.0
        tokens = client.tokens  # a 401 renews the token, and the request goes once more: once per request
        for attempt in range(1, policy.attempts + 1):
            if attempt > 1:
                _start_again(result)
            retry_after, token = await self._attempt(plan, client, result, delay)
            if token is not None and tokens is not None and _token_refused(result, plan) and tokens.rejected(token):
                tokens = None
                log.debug("%s: HTTP 401: sending %s once more with a renewed token", plan.target.name, plan.method)
                _start_again(result)
                retry_after, token = await self._attempt(plan, client, result, delay)
                if _token_refused(result, plan):
                    result.error = f"{result.error} (a renewed token was refused too)"
            if result.ok:
                if token is not None:
                    token.accepted = True
                break
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
            self._log_retry(plan, client, result, attempt, decision.delay or 0.0, retry_after)
            self.retrying += 1
            try:
                await asyncio.sleep(decision.delay or 0)
                result.elapsed += decision.delay or 0
            finally:
                self.retrying -= 1
        return result

    def _log_retry(
        self,
        plan: RequestPlan,
        client: TargetClient,
        result: FetchResult,
        attempt: int,
        delay: float,
        retry_after: float | None,
    ) -> None:
        """One line per retry (``-v``): the URL, what came back, how long until the next attempt goes, and why."""
        if not log.isEnabledFor(logging.INFO):
            return
        # The next attempt waits for its backoff (a Retry-After's, if any), then for the host's pause, if
        # longer. A Retry-After paused the host for as long as the attempt waits: that pause is the reason.
        cooling = self.politeness.cooling_left(self._send_url(plan.url, client))
        paused = cooling > delay or (cooling > 0 and retry_after is not None)
        why = "the host is paused" if paused else "Retry-After" if retry_after is not None else "backoff"
        wait = f"{max(delay, cooling):.2f} s ({why})"
        log.info(
            "%s %s %s → %s; attempt %d of %d in %s", plan.target.name, plan.method, self.redact(plan.url),
            result.status or result.error_kind, attempt + 1, client.settings.retry.attempts, wait,
        )  # fmt: skip

    @staticmethod
    def _send_url(url: str, client: TargetClient) -> str:
        return _gateway_url(client, url) if client.settings.gateway else url

    async def _attempt(
        self, plan: RequestPlan, client: TargetClient, result: FetchResult, crawl_delay: float
    ) -> tuple[float | None, Token | None]:
        """One attempt, redirects included; returns the Retry-After seconds, if any, and the token sent.

        ``crawl_delay`` paces the hops to the request's own host (robots.txt's is that host's).
        """
        settings = client.settings
        creds = client.creds
        headers: Mapping[str, str] = {**plan.headers, **creds.headers} if creds.headers else plan.headers
        bearer = _Bearer(client.tokens) if client.tokens is not None else None
        hop = _Hop(plan.url, plan.method, plan.data, plan.json_body, headers, creds, bearer)
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
                    step = await self._send(self.session, hop, send_url, plan, client, result, crawl_delay)
                else:
                    # A redirect to another host: the link-local rule applies,
                    # in a session no cache or kept-alive connection can bypass.
                    async with leaving_hop(self.session, send_url, block_private=self.block_private) as session:
                        step = await self._send(session, hop, send_url, plan, client, result, 0.0)
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
            result.fetched_at = result.fetched_at or utc_now()  # failed before sending (no token, say)
        # The final response's headers are there once it was read, failed or not;
        # only a failed attempt's Retry-After is acted on (not looked up for every success).
        retry_after = parse_retry_after(result.headers.get("Retry-After")) if result.headers and not result.ok else None
        return retry_after, bearer.sent if bearer is not None else None

    async def _send(
        self,
        session: aiohttp.ClientSession,
        hop: _Hop,
        send_url: str,
        plan: RequestPlan,
        client: TargetClient,
        result: FetchResult,
        crawl_delay: float,
    ) -> _Hop | None:
        """One request: the next hop if it redirects, else None (the response is in ``result``)."""
        settings = client.settings
        polite = self.politeness
        host = polite.host(send_url)
        rate = settings.rate_limit
        # The gap is read when the request takes its turn: what the host said last, not before it queued.

        def gap() -> float:
            return polite.gap(host, rate, crawl_delay)

        # Without a fetched token, the gate's own turn: no generator-based
        # context manager on the path every request takes.
        turn: AbstractAsyncContextManager[Mapping[str, str] | None] = (
            self.slots.hold(send_url, rate, gap) if hop.bearer is None else self._turn(hop, send_url, settings, gap)
        )
        async with turn as token_headers:
            headers = hop.headers if token_headers is None else token_headers
            # Latency counts from when the host's slot is ours: waiting
            # for politeness is not the server's slowness.
            sent = polite.sending(host)  # on time.perf_counter()
            if hop.url == plan.url:
                result.fetched_at = utc_now()
            try:
                async with session.request(
                    hop.method,
                    send_url,
                    headers=headers,
                    data=hop.data,
                    json=hop.json_body,
                    timeout=client.timeout,
                    allow_redirects=False,
                    ssl=client.ssl,
                    proxy=settings.proxy,
                    middlewares=hop.creds.middlewares,
                ) as response:
                    status = response.status
                    polite.answered(host, send_url, settings, status, response.headers, sent)
                    result.throttled += status == 429
                    result.unavailable += status == 503
                    location = response.headers.get("Location")
                    if response.status in REDIRECT_STATUSES and location and not settings.gateway:
                        return self._redirect(hop, location, response.status, client)
                    await self._read(response, plan, client, result, hop.url)
                    return None
            finally:
                polite.done(host, sent)
                result.elapsed += time.perf_counter() - sent

    @asynccontextmanager
    async def _turn(
        self, hop: _Hop, send_url: str, settings: FetchSettings, gap: Gap
    ) -> AsyncIterator[Mapping[str, str]]:
        """For a hop with a fetched token: the host's slot, held while the hop goes, and the headers with the token.

        The token is taken with the slot held, so that it cannot expire while
        its request waits for a turn; while the token endpoint is down, the
        request waits for its next try with no slot held (as for a host's
        cooldown), and before its timeout starts.
        """
        assert hop.bearer is not None  # the others take the gate's turn directly (``_send``)
        while True:
            await hop.bearer.source.ready()
            async with self.slots.hold(send_url, settings.rate_limit, gap):
                token = await hop.bearer.header()
                if token is not None:
                    yield {**hop.headers, **token}
                    return
            # The endpoint failed just now: the slot goes back while the request waits.

    def _redirect(self, hop: _Hop, location: str, status: int, client: TargetClient) -> _Hop:
        target = urljoin(hop.url, location)
        scheme = urlsplit(target).scheme.lower()
        if scheme not in ("http", "https"):
            raise RedirectRefused(f"redirect to a {scheme or 'relative'}: URL refused")
        headers, creds, bearer = hop.headers, client.creds, hop.bearer
        if not same_origin(hop.url, target):
            target, headers = strip_credentials(target, headers, creds, client.secrets)
            creds, bearer = Credentials(), None
        method, data, json_body = hop.method, hop.data, hop.json_body
        if status == 303 or (status in (301, 302) and method == "POST"):
            method, data, json_body = ("HEAD" if method == "HEAD" else "GET"), None, None
        return _Hop(target, method, data, json_body, headers, creds, bearer)

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

    async def exchange(self, request: TokenRequest, client: TargetClient) -> Answer:
        """Send a token request (``http.tokens``) the way ``client``'s requests go, and read its small answer.

        The address guard and ``allowed_hosts``, the target's TLS settings,
        proxy and timeouts apply; redirects are not followed (a POST of
        credentials goes where the spec says, or nowhere).
        Failures are raised, for the token source to translate.
        """
        self.destinations.check(request.url)
        # No host slot: requests that wait for this token hold theirs, and one
        # token request per renewal is no burden on any host.
        async with self.session.request(
            request.method,
            request.url,
            headers=request.headers,
            data=request.form if request.form is not None else request.body,
            json=request.json_body,
            timeout=client.timeout,
            allow_redirects=False,
            ssl=client.ssl,
            proxy=client.settings.proxy,
        ) as response:
            return Answer(response.status, response.headers, await _read_body(response, ANSWER_BYTES))


def _token_refused(result: FetchResult, plan: RequestPlan) -> bool:
    """A 401 from the origin the token went to (a redirect to another origin carried none)."""
    return result.status == 401 and same_origin(result.final_url or plan.url, plan.url)


def _start_again(result: FetchResult) -> None:
    """Clear ``result`` for another attempt: the log row describes the last one."""
    result.attempts += 1
    result.error_kind = result.error = result.status = result.content_type = result.charset = None
    result.body, result.headers, result.final_url = b"", {}, None
