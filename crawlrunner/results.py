"""What flows from the fetcher through extraction to storage.

Plain dataclasses with no I/O, so every stage can be tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


def utc_now() -> str:
    """The current time as an ISO 8601 UTC string, as stored in the database."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(slots=True)
class FetchResult:
    """The outcome of one request: a response, or the reason there is none."""

    target: str
    method: str
    url: str
    fetched_at: str
    final_url: str | None = None
    status: int | None = None
    content_type: str | None = None
    charset: str | None = None
    body: bytes = b""
    elapsed: float = 0.0
    attempts: int = 1
    error_kind: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_kind is None


@dataclass(slots=True)
class Outcome:
    """A fetch and what extraction made of it: the unit the store commits."""

    fetch: FetchResult
    records: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0
    field_errors: int = 0
