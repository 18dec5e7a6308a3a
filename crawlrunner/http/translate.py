"""The one place aiohttp's and the socket layer's exceptions become crawlrunner's.

Everything that talks to the network through the run's session (the fetcher,
robots.txt) catches ``Exception`` around its request and passes it here, so a
failure has the same class, kind and message wherever it happened (httpx does
the same in ``map_httpcore_exceptions``). ``asyncio.CancelledError`` is a
``BaseException`` and never reaches this function.
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp.http_exceptions import ContentEncodingError

from ..errors import (
    BadResponse,
    BlockedAddressOSError,
    ConnectError,
    DecodeError,
    FetchError,
    FetchTimeout,
    InvalidURL,
    PayloadError,
)


def translate(exc: Exception) -> FetchError:
    """The crawlrunner error for an aiohttp or socket failure; anything else is re-raised.

    A ``FetchError`` (raised by crawlrunner's own checks inside a request)
    comes back as it is.
    """
    if isinstance(exc, FetchError):
        return exc
    blocked = _blocked_cause(exc)
    if blocked is not None:
        return blocked
    reason = str(exc) or type(exc).__name__
    # Timeouts first: aiohttp's ServerTimeoutError is also a connection error.
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return FetchTimeout(f"timed out ({type(exc).__name__})")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return _payload_error(exc, reason)
    if isinstance(exc, aiohttp.InvalidURL):
        return InvalidURL(f"invalid URL: {reason}")
    if isinstance(exc, aiohttp.ServerFingerprintMismatch):
        return ConnectError("the server's certificate does not match the pinned fingerprint")
    if isinstance(exc, (aiohttp.ClientConnectionError, ConnectionError)):
        return ConnectError(reason)
    if isinstance(exc, aiohttp.ClientResponseError):
        return BadResponse(f"{exc.status}: {exc.message}" if exc.status else exc.message)
    if isinstance(exc, (aiohttp.ClientError, OSError, ValueError)):
        return FetchError(f"{type(exc).__name__}: {reason}")
    raise exc


def _payload_error(exc: aiohttp.ClientPayloadError, reason: str) -> FetchError:
    """Corruption (retrying gets the same bytes) or a body cut short (retrying may get all of it).

    aiohttp raises one ``ClientPayloadError`` for both; what its parser
    raised underneath, chained as the cause, tells them apart: a
    ``ContentEncodingError`` for bytes the decompressor rejects (bad magic,
    bad CRC, garbage), a ``ContentLengthError`` or ``TransferEncodingError``
    for a body that ended early.
    """
    cause = exc.__cause__
    if isinstance(cause, ContentEncodingError):
        return DecodeError(f"corrupt compressed body: {cause.message or reason}")
    return PayloadError(f"incomplete body: {reason}")


def _blocked_cause(exc: BaseException) -> BlockedAddressOSError | None:
    """The guard's refusal inside an aiohttp connection error, if that is what it is.

    The resolver raises it as an OSError; aiohttp wraps that in a connector
    error (``os_error``) or chains it (``__cause__``).
    """
    cause = getattr(exc, "os_error", None) or exc.__cause__
    return cause if isinstance(cause, BlockedAddressOSError) else None
