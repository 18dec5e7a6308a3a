"""One request in, one FetchResult out; failures are results, not exceptions.

This is the only place aiohttp's exceptions are caught: ``translate`` maps
each to the most specific crawlrunner error, whose ``kind`` is what the
fetch log stores. ``asyncio.CancelledError`` is never caught here.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp

from ..errors import (
    BadResponse,
    BodyTooLarge,
    ConnectError,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    InvalidRequest,
    InvalidURL,
    PayloadError,
    TooManyRedirects,
)
from ..plan import RequestPlan
from ..results import FetchResult, utc_now

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
MAX_REDIRECTS = 10


def translate(exc: BaseException) -> FetchError:
    """The crawlrunner error for an aiohttp or socket failure."""
    if isinstance(exc, FetchError):
        return exc
    reason = str(exc) or type(exc).__name__
    # Timeouts first: aiohttp's ServerTimeoutError is also a connection error.
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return FetchTimeout(f"timed out ({type(exc).__name__})")
    if isinstance(exc, aiohttp.TooManyRedirects):
        return TooManyRedirects(f"more than {MAX_REDIRECTS} redirects")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return PayloadError(f"incomplete or corrupt body: {reason}")
    if isinstance(exc, aiohttp.InvalidURL):
        return InvalidURL(f"invalid URL: {reason}")
    if isinstance(exc, (aiohttp.ClientConnectionError, ConnectionError)):
        return ConnectError(reason)
    if isinstance(exc, aiohttp.ClientResponseError):
        return BadResponse(f"{exc.status}: {exc.message}" if exc.status else exc.message)
    if isinstance(exc, (aiohttp.ClientError, OSError, ValueError)):
        return FetchError(f"{type(exc).__name__}: {reason}")
    raise exc


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
            raise BodyTooLarge(f"body exceeds the limit of {limit} bytes")
    return bytes(buffer)


async def fetch(
    session: aiohttp.ClientSession,
    plan: RequestPlan,
    *,
    timeout: aiohttp.ClientTimeout,
    max_body_bytes: int,
) -> FetchResult:
    """Make one request; every failure comes back as ``error_kind``/``error``."""
    result = FetchResult(target=plan.target.name, method=plan.method, url=plan.url, fetched_at=utc_now())
    if plan.invalid is not None:
        result.error_kind, result.error = InvalidRequest.kind, plan.invalid
        return result
    started = time.perf_counter()
    try:
        async with session.request(
            plan.method,
            plan.url,
            headers=plan.headers,
            json=plan.json_body,
            data=plan.data,
            timeout=timeout,
            max_redirects=MAX_REDIRECTS,
        ) as response:
            result.status = response.status
            result.final_url = str(response.url)
            result.content_type = response.content_type
            result.charset = response.charset
            result.headers = response.headers
            if plan.method != "HEAD":
                result.body = await _read_body(response, max_body_bytes)
            if response.status >= 400:
                raise HTTPStatusError(f"HTTP {response.status} {response.reason or ''}".rstrip())
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - translate() re-raises what it does not know
        error = translate(exc)
        result.error_kind = error.kind
        result.error = str(error)
    result.elapsed = time.perf_counter() - started
    return result
