"""Run settings as frozen dataclasses, with every default in one place.

Precedence, lowest first: the defaults here < the spec's run-wide ``http``
block < a target's own keys < command-line flags. A key that is present
overrides, even with ``null``: that is how a spec switches a timeout off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from . import __version__

DEFAULT_USER_AGENT = f"crawlrunner/{__version__} (+https://crawlrunner.dev)"
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024

# When the pool is unlimited (connections: 0) something must still bound how
# many requests are in flight, or a million-URL target would open a million.
UNLIMITED_POOL_WORKERS = 256


@dataclass(frozen=True, kw_only=True, slots=True)
class Timeouts:
    """Seconds for each aiohttp timeout; ``None`` switches one off."""

    total: float | None = 60.0
    connect: float | None = None
    sock_connect: float | None = 10.0
    sock_read: float | None = 30.0

    def merged(self, overrides: Mapping[str, Any] | None) -> Timeouts:
        """These timeouts with the keys present in ``overrides`` replaced."""
        if not overrides:
            return self
        names = {f.name for f in fields(self)}
        return replace(self, **{k: v for k, v in overrides.items() if k in names})


@dataclass(frozen=True, kw_only=True, slots=True)
class Limits:
    """Connection pool limits; 0 means unlimited, as in aiohttp."""

    connections: int = 16
    per_host: int = 8

    @property
    def workers(self) -> int:
        """How many requests run at once: one per pooled connection."""
        return self.connections or UNLIMITED_POOL_WORKERS


@dataclass(frozen=True, kw_only=True, slots=True)
class HttpSettings:
    """Run-wide HTTP settings shared by every target through one session."""

    base_url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    user_agent: str = DEFAULT_USER_AGENT
    timeout: Timeouts = field(default_factory=Timeouts)
    limits: Limits = field(default_factory=Limits)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
