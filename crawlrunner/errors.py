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
    │   ├── InvalidURL (ValueError)
    │   ├── InvalidRequest (ValueError)  a request the spec could not render
    │   ├── BadResponse                 not valid HTTP (bad status line, huge headers)
    │   ├── BodyTooLarge
    │   ├── PayloadError                truncated or undecodable body
    │   └── HTTPStatusError             a status that counts as a failure
    ├── UsageError                      a request the command cannot honour; exit status 2
    │   ├── ResumeError                 nothing to resume, or the spec changed
    │   └── UnknownTargetError (KeyError)  a target name the spec does not have
    ├── ExtractError (ValueError)       a document that extraction cannot read
    └── StorageError                    the SQLite output cannot be opened or written
        └── OutputPathError             the output path is unusable; exit status 2

Builtins are mixed in where their meaning matches, so ``except TimeoutError``
keeps working for callers who never heard of crawlrunner.
"""

from __future__ import annotations

from dataclasses import dataclass


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

    kind = "fetch_error"


class FetchTimeout(FetchError, TimeoutError):
    kind = "timeout"


class ConnectError(FetchError, ConnectionError):
    kind = "connect_error"


class TooManyRedirects(FetchError):
    kind = "too_many_redirects"


class RedirectRefused(FetchError):
    kind = "redirect_refused"


class RetryAfterTooLong(FetchError):
    kind = "retry_after_too_long"


class BlockedAddress(FetchError):
    kind = "blocked_address"


class InvalidURL(FetchError, ValueError):
    kind = "invalid_url"


class InvalidRequest(FetchError, ValueError):
    kind = "invalid_request"


class BadResponse(FetchError):
    kind = "bad_response"


class BodyTooLarge(FetchError):
    kind = "body_too_large"


class PayloadError(FetchError):
    kind = "payload_error"


class HTTPStatusError(FetchError):
    kind = "http_status"


class UsageError(CrawlRunnerError):
    """The command cannot do what was asked (nothing to resume, no stored bodies)."""


class ResumeError(UsageError):
    """A run cannot be resumed (nothing unfinished, or the spec changed) or retried."""


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

    kind = "extract_error"


class StorageError(CrawlRunnerError):
    """The output database cannot be opened or written."""


class OutputPathError(StorageError):
    """The output path cannot be used (a folder, a foreign file): a usage error."""
