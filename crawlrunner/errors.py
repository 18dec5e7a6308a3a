"""Every exception crawlrunner raises on purpose.

The tree::

    CrawlRunnerError
    ├── SpecError (ValueError)          a spec that cannot be run; exit status 2
    ├── FetchError                      one request failed for good (recorded, not raised
    │   │                               out of a run: see ``FetchResult.error_kind``)
    │   ├── FetchTimeout (TimeoutError)
    │   ├── ConnectError (ConnectionError)
    │   ├── TooManyRedirects
    │   ├── RedirectRefused             a redirect to anything but http(s)
    │   ├── RetryAfterTooLong           a Retry-After beyond max_retry_after
    │   ├── BlockedAddress              a private address, with block_private_addresses
    │   │   └── BlockedAddressOSError (OSError)  the same, raised inside the resolver,
    │   │                               where aiohttp expects an OSError
    │   ├── InvalidURL (ValueError)
    │   ├── InvalidRequest (ValueError)  a request the spec could not render
    │   ├── BadResponse                 not valid HTTP (bad status line, huge headers)
    │   ├── BodyTooLarge
    │   ├── PayloadError                a body cut short (shorter than its Content-Length); retried
    │   ├── DecodeError                 a corrupt compressed body (gzip, deflate, br); not retried
    │   ├── AuthError                   no token: its endpoint or login request failed, or its
    │   │                               answer holds none (auth types that fetch a token)
    │   └── HTTPStatusError             a status that counts as a failure
    ├── UsageError                      a request the command cannot honour; exit status 2
    │   ├── ResumeError                 nothing to resume, or the spec changed
    │   ├── InsecureTLSError            tls.verify: false without insecure=True (--insecure)
    │   └── UnknownTargetError (KeyError)  a target name the spec does not have
    ├── ExtractError (ValueError)       a document that extraction cannot read
    │   └── CharsetError                bytes an HTML body's charset cannot decode
    ├── StorageError                    the SQLite output cannot be opened or written
    │   └── OutputPathError             the output path is unusable; exit status 2
    ├── MissingSecret (LookupError)     a stored request needs a secret the environment lacks
    ├── MissingEnvironmentVariable (LookupError)  ┐ raised while a spec is built or a
    ├── SelectorSyntaxError (ValueError)          │ request is rendered; the caller
    ├── TemplateError (ValueError)                │ turns each into a SpecProblem, a
    └── CoercionError (ValueError)                ┘ field error or an invalid_request

Builtins are mixed in where their meaning matches, so ``except TimeoutError``
keeps working for callers who never heard of crawlrunner.

The last four rarely reach a user, since their callers catch them and report
a located problem instead. They sit under the root all the same: a caller who
uses ``compile_selector`` or ``coerce`` directly, or a code path that forgets
to catch one, then gets a ``CrawlRunnerError`` (a message and an exit status
from the CLI) rather than a traceback. ``MissingSecret`` can escape (a resumed
run whose environment lost a secret), so it belongs under the root anyway.

``ErrorKind`` names every value ``fetch_log.error_kind`` holds. Each
``FetchError`` class carries its kind; code that records a failure without an
exception (robots.txt unreachable, a request the spec could not render) uses
the constant, never a string of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar


class ErrorKind(StrEnum):
    """Why a request failed: the text stored in ``fetch_log.error_kind``.

    A ``StrEnum``, so a kind is stored as plain text and compares equal to it
    (``ErrorKind.TIMEOUT == "timeout"``). docs/database.md lists them; a drift
    test holds the two together.
    """

    FETCH_ERROR = "fetch_error"
    TIMEOUT = "timeout"
    CONNECT_ERROR = "connect_error"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    REDIRECT_REFUSED = "redirect_refused"
    RETRY_AFTER_TOO_LONG = "retry_after_too_long"
    BLOCKED_ADDRESS = "blocked_address"
    INVALID_URL = "invalid_url"
    INVALID_REQUEST = "invalid_request"
    BAD_RESPONSE = "bad_response"
    BODY_TOO_LARGE = "body_too_large"
    PAYLOAD_ERROR = "payload_error"
    DECODE_ERROR = "decode_error"
    HTTP_STATUS = "http_status"
    EXTRACT_ERROR = "extract_error"
    CHARSET_ERROR = "charset_error"
    # No exception of its own: robots.txt answered 5xx or not at all, and
    # RFC 9309 says to fetch nothing from that origin.
    ROBOTS_UNREACHABLE = "robots_unreachable"
    AUTH_ERROR = "auth_error"


class CrawlRunnerError(Exception):
    """Root of every error crawlrunner raises deliberately."""


@dataclass(frozen=True, slots=True)
class SpecProblem:
    """One located problem in a spec file.

    ``path`` is the spec path in the user's notation (``targets[2].timeout``);
    ``line`` and ``column`` are 1-based, or 0 when the problem has no place
    in the file (the file is missing, say).
    """

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class SpecError(CrawlRunnerError, ValueError):
    """A spec that cannot be run. Carries every problem found, in file order."""

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class FetchError(CrawlRunnerError):
    """A request that failed for good. ``kind`` is what the fetch log stores."""

    kind: ClassVar[ErrorKind] = ErrorKind.FETCH_ERROR


class FetchTimeout(FetchError, TimeoutError):
    kind = ErrorKind.TIMEOUT


class ConnectError(FetchError, ConnectionError):
    kind = ErrorKind.CONNECT_ERROR


class TooManyRedirects(FetchError):
    kind = ErrorKind.TOO_MANY_REDIRECTS


class RedirectRefused(FetchError):
    kind = ErrorKind.REDIRECT_REFUSED


class RetryAfterTooLong(FetchError):
    kind = ErrorKind.RETRY_AFTER_TOO_LONG


class BlockedAddress(FetchError):
    kind = ErrorKind.BLOCKED_ADDRESS


class BlockedAddressOSError(BlockedAddress, OSError):
    """The guard's refusal raised inside the resolver, where aiohttp expects an OSError.

    aiohttp wraps it in a connection error; ``translate`` unwraps it again.
    """


class InvalidURL(FetchError, ValueError):
    kind = ErrorKind.INVALID_URL


class InvalidRequest(FetchError, ValueError):
    kind = ErrorKind.INVALID_REQUEST


class BadResponse(FetchError):
    kind = ErrorKind.BAD_RESPONSE


class BodyTooLarge(FetchError):
    kind = ErrorKind.BODY_TOO_LARGE


class PayloadError(FetchError):
    """A body that stopped before its end: the connection, so worth another attempt."""

    kind = ErrorKind.PAYLOAD_ERROR


class DecodeError(FetchError):
    """A body that arrived whole but does not decompress: the server's bytes, the same every time."""

    kind = ErrorKind.DECODE_ERROR


class AuthError(FetchError):
    """The token a request needs could not be had; the request is not sent.

    Not retried per request: the token endpoint is asked again only after a pause.
    """

    kind = ErrorKind.AUTH_ERROR


class HTTPStatusError(FetchError):
    kind = ErrorKind.HTTP_STATUS


class UsageError(CrawlRunnerError):
    """The command cannot do what was asked (nothing to resume, no stored bodies)."""


class ResumeError(UsageError):
    """A run cannot be resumed (nothing unfinished, or the spec changed) or retried."""


class InsecureTLSError(UsageError):
    """A target turns certificate checks off (``tls.verify: false``) and the caller did not allow it.

    Switching verification off is a decision of whoever runs the spec, not
    of the spec alone: ``run(..., insecure=True)`` or ``crawlrunner run --insecure``.
    """


class UnknownTargetError(UsageError, KeyError):
    """A target name the spec does not have (``only=[...]``, ``-t NAME``); names the known ones."""

    def __init__(self, unknown: list[str], known: list[str]) -> None:
        self.unknown, self.known = list(unknown), list(known)
        names = ", ".join(map(repr, self.unknown))
        super().__init__(f"no target named {names} in the spec (targets: {', '.join(self.known)})")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ExtractError(CrawlRunnerError, ValueError):
    """A fetched document that extraction cannot read (bad JSON, wrong type)."""

    kind: ClassVar[ErrorKind] = ErrorKind.EXTRACT_ERROR


class CharsetError(ExtractError):
    """An HTML body with bytes its charset (declared, or UTF-8) cannot decode.

    Its own kind, so a page stored as replacement characters is not mistaken
    for content; the records of such a page are not stored.
    """

    kind = ErrorKind.CHARSET_ERROR


class StorageError(CrawlRunnerError):
    """The output database cannot be opened or written."""


class OutputPathError(StorageError):
    """The output path cannot be used (a folder, a foreign file): a usage error."""


class MissingSecret(CrawlRunnerError, LookupError):
    """Stored text refers to a secret the current spec and environment do not have."""


class MissingEnvironmentVariable(CrawlRunnerError, LookupError):
    """``${env.NAME}`` without a default, and NAME is unset; ``names`` lists every one missing."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names
        self.name = names[0]


class SelectorSyntaxError(CrawlRunnerError, ValueError):
    """An expression that does not compile; the message says why."""


class TemplateError(CrawlRunnerError, ValueError):
    """A template that cannot be rendered (a missing value, a line break)."""


class CoercionError(CrawlRunnerError, ValueError):
    """A value that cannot be read as the field's type."""


def most_telling(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """A task group's failure as one exception: ours if there is one (the rest are its consequences)."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    for exc in leaves:
        if isinstance(exc, CrawlRunnerError):
            return exc
    return leaves[0] if len(leaves) == 1 else group
