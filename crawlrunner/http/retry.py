"""The retry policy: after a failed attempt, how long to wait, or why to stop.

Pure functions of the attempt number, the outcome and the clock, so every
rule is tested without sockets. Retried by default: 408, 429, 500, 502, 503,
504, timeouts, connection errors and truncated bodies; never other 4xx.
``Retry-After`` is honoured in both its forms (seconds, HTTP-date) up to
``max_retry_after``; beyond that the request fails with a clear reason
rather than sleeping for hours.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from ..errors import ErrorKind
from ..settings import RETRYABLE_ERRORS, RetryPolicy


@dataclass(frozen=True, slots=True)
class Decision:
    """Wait ``delay`` seconds and try again, or give up (``delay`` None) because of ``reason``.

    ``kind`` is set when giving up is itself the failure (a Retry-After beyond
    ``max_retry_after``), so the fetch log records that kind rather than the
    attempt's.
    """

    delay: float | None
    reason: str = ""
    kind: ErrorKind | None = None

    @property
    def retry(self) -> bool:
        return self.delay is not None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff(policy: RetryPolicy, attempt: int, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff before attempt ``attempt + 1``."""
    ceiling = min(policy.max_backoff, policy.backoff * 2 ** (attempt - 1))
    return (rng or random).uniform(0, ceiling)


def retryable(policy: RetryPolicy, *, status: int | None, error_kind: ErrorKind | None) -> bool:
    """Whether the failure may pass if asked again: a network error or a status of ``policy.statuses``."""
    return (error_kind in RETRYABLE_ERRORS) or (
        error_kind == ErrorKind.HTTP_STATUS and status is not None and status in policy.statuses
    )


def decide(
    policy: RetryPolicy,
    attempt: int,
    *,
    status: int | None,
    error_kind: ErrorKind | None,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> Decision:
    """What to do after attempt number ``attempt`` (1-based) failed."""
    if not retryable(policy, status=status, error_kind=error_kind):
        return Decision(None, "not retryable")
    if attempt >= policy.attempts:
        return Decision(None, f"gave up after {attempt} attempt{'s' if attempt != 1 else ''}")
    if retry_after is not None:
        if retry_after > policy.max_retry_after:
            return Decision(
                None,
                f"Retry-After of {retry_after:.0f} s exceeds max_retry_after ({policy.max_retry_after:.0f} s)",
                ErrorKind.RETRY_AFTER_TOO_LONG,
            )
        return Decision(retry_after)
    return Decision(backoff(policy, attempt, rng))
