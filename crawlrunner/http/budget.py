"""A host's request budget, read from its rate-limit response headers.

Three spellings are in use; all are read:

- the IETF draft's current one (draft-ietf-httpapi-ratelimit-headers, -07 on):
  ``RateLimit: "default";r=12;t=30`` (``r`` requests remain, the quota resets in
  ``t`` seconds), with ``RateLimit-Policy: "default";q=100;w=60`` (a quota of
  ``q`` requests per window of ``w`` seconds);
- its earlier ones: ``RateLimit: limit=100, remaining=12, reset=30``, or the
  separate ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset``,
  with ``RateLimit-Policy: 100;w=60``;
- the de-facto ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
  ``X-RateLimit-Reset``, whose reset is delta seconds for some APIs and a Unix
  time (GitHub's) for others. A value of 10⁹ or more can only be a time (10⁹
  seconds is 31 years), and one of 10¹² or more a time in milliseconds.

A value that makes no sense (not a number, negative, infinite) is ignored,
never an error: the headers are the host's advice, not a contract. Pure
functions of the headers and the clock; what a budget leads to is decided
in ``http.politeness``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

UNIX_TIME = 1e9  # a reset this large is a Unix time, not seconds from now
UNIX_MILLISECONDS = 1e12  # ... and this large, a Unix time in milliseconds

# The keys of each field, in the spellings of the draft's versions.
_REMAINING, _RESET, _LIMIT, _WINDOW = ("r", "remaining"), ("t", "reset"), ("q", "limit"), ("w",)


@dataclass(frozen=True, slots=True)
class Budget:
    """Requests a host still accepts, and when that count starts again."""

    remaining: int
    reset: float | None  # seconds until it renews (the policy's window if only that is said); None: unknown
    limit: int | None = None  # requests per window, when the host says


def read_budgets(headers: Mapping[str, str], now: float) -> tuple[Budget, ...]:
    """Every budget the headers state (several policies may apply at once); empty if none, or only nonsense.

    ``now`` is the Unix time, to read a reset given as a time.
    """
    policies = _policies(headers.get("RateLimit-Policy"))
    budgets = [*_combined(headers.get("RateLimit"), policies, now)]
    for prefix in ("RateLimit-", "X-RateLimit-"):
        remaining = _count(headers.get(prefix + "Remaining"))
        if remaining is None:
            continue
        limit = _count(headers.get(prefix + "Limit"))
        reset = _reset(_number(headers.get(prefix + "Reset")), now)
        budgets.append(_budget(remaining, reset, limit, policies.get("") if prefix == "RateLimit-" else None))
    return tuple(budgets)


def _combined(value: str | None, policies: Mapping[str, tuple[int | None, float | None]], now: float) -> list[Budget]:
    """The budgets of a ``RateLimit`` field, in the draft's current form or its earlier dictionary."""
    if not value:
        return []
    budgets = []
    for name, params in _items(value):
        remaining = _count(_first(params, _REMAINING))
        if remaining is None:
            continue
        reset = _reset(_number(_first(params, _RESET)), now)
        budgets.append(_budget(remaining, reset, _count(_first(params, _LIMIT)), policies.get(name)))
    return budgets


def _budget(
    remaining: int, reset: float | None, limit: int | None, policy: tuple[int | None, float | None] | None
) -> Budget:
    quota, window = policy or (None, None)
    return Budget(remaining, reset if reset is not None else window, limit if limit is not None else quota)


def _policies(value: str | None) -> dict[str, tuple[int | None, float | None]]:
    """Policy name → (quota, window seconds); the earlier drafts' unnamed ``100;w=60`` under ''."""
    found: dict[str, tuple[int | None, float | None]] = {}
    for name, params in _items(value or ""):
        window = _number(_first(params, _WINDOW))
        quota = _count(_first(params, _LIMIT))
        if quota is None and _count(name) is not None:  # the earlier form: the quota is the item itself
            quota, name = _count(name), ""
        found.setdefault(name, (quota, window))  # the first stated is the one that governs
    return found


def _items(value: str) -> list[tuple[str, dict[str, str]]]:
    """A field's comma-separated items as (name, parameters).

    The current draft's items are ``"name";key=value;...``; the earlier
    dictionary (``limit=100, remaining=12, reset=30``) is one unnamed item.
    """
    named: list[tuple[str, dict[str, str]]] = []
    unnamed: dict[str, str] = {}
    for item in value.split(","):
        head, *rest = (part.strip() for part in item.split(";"))
        key, equals, text = head.partition("=")
        if equals:
            unnamed[key.strip().lower()] = text.strip()
            continue
        params = {}
        for part in rest:
            key, _, text = part.partition("=")
            params[key.strip().lower()] = text.strip()
        named.append((head.strip('"'), params))
    return named + ([("", unnamed)] if unnamed else [])


def _first(params: Mapping[str, str], keys: tuple[str, ...]) -> str | None:
    return next((params[key] for key in keys if key in params), None)


def _number(text: str | None) -> float | None:
    """A non-negative finite number, or None."""
    if text is None:
        return None
    try:
        value = float(text.strip().strip('"'))
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _count(text: str | None) -> int | None:
    value = _number(text)
    return None if value is None else int(value)


def _reset(value: float | None, now: float) -> float | None:
    """Seconds from now until a reset given as seconds, a Unix time, or one in milliseconds."""
    if value is None:
        return None
    if value >= UNIX_MILLISECONDS:
        value = value / 1000 - now
    elif value >= UNIX_TIME:
        value -= now
    return max(value, 0.0)
