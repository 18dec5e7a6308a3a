"""Run settings as frozen dataclasses, with every default in one place.

Precedence, lowest first: the defaults here < the spec's run-wide ``http``
block < a target's own keys < command-line flags. A key that is present
overrides, even with ``null``: that is how a spec switches a timeout off.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from . import __version__
from .errors import ErrorKind

PROJECT_URL = "https://crawlrunner.dev"  # in the User-Agent, and where `--help` sends people for more
DEFAULT_USER_AGENT = f"crawlrunner/{__version__} (+{PROJECT_URL})"
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
# One worker per connection, each with a socket: the schema's upper bound of limits.connections.
MAX_CONNECTIONS = 1024

# When the pool is unlimited (connections: 0) something must still bound how
# many requests are in flight, or a million-URL target would open a million.
UNLIMITED_POOL_WORKERS = 256


@dataclass(frozen=True, kw_only=True, slots=True)
class Timeouts:
    """Seconds for each aiohttp timeout; ``None`` switches one off."""

    total: float | None = 60.0
    connect: float | None = None
    sock_connect: float | None = 10.0
    # Off by default: aiohttp re-arms a timer for every chunk it reads, about
    # an eighth of a small-page crawl's CPU, and ``total`` already bounds
    # every request. Worth setting for long downloads with ``total: null``.
    sock_read: float | None = None

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
    keepalive: float = 30.0
    dns_cache: float | None = 300.0  # None: cache forever

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
    cookies: Mapping[str, str] = field(default_factory=dict, repr=False)
    trust_env: bool = False
    download_dir: str = "downloads"
    block_private_addresses: bool = False
    # Hosts, with optional ports ("api.example.com", "example.com:8443",
    # "[2001:db8::1]:80"), that requests and redirects may reach; empty: any.
    allowed_hosts: Sequence[str] = ()


RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Failures that are worth another attempt: the network, not the request. A
# body cut short (payload_error) is; a corrupt one (decode_error) is not, since
# the server sends the same bytes again.
RETRYABLE_ERRORS = frozenset({ErrorKind.TIMEOUT, ErrorKind.CONNECT_ERROR, ErrorKind.PAYLOAD_ERROR})


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """Bounded retries with capped exponential backoff and full jitter."""

    attempts: int = 3  # in all, the first one included
    backoff: float = 0.5  # seconds before the second attempt, doubled each time
    max_backoff: float = 30.0
    max_retry_after: float = 120.0  # a longer Retry-After fails the request instead
    statuses: frozenset[int] = RETRYABLE_STATUSES


@dataclass(frozen=True, kw_only=True, slots=True)
class RateLimit:
    """Per-host politeness: a request rate, a minimum gap, cooldowns after 429/503, adaptive pacing.

    What a host's answers make of them (cooldowns, rate-limit headers,
    ``adaptive``) is decided in ``http.politeness``.
    """

    per_second: float | None = None
    min_delay: float = 0.0
    # The longest a host is left alone after a 429 or 503 that says nothing of
    # when to come back (no Retry-After): the pause starts short and doubles.
    cooldown: float = 5.0
    adaptive: bool = False  # pace each host by its latency, as Scrapy's AutoThrottle does
    target_concurrency: float = 1.0  # adaptive: requests a host should be busy with at once, on average
    max_delay: float = 30.0  # the longest gap between two requests that a host's answers may impose

    @property
    def interval(self) -> float:
        """Least time between two requests to one host."""
        rate = 1.0 / self.per_second if self.per_second else 0.0
        return max(rate, self.min_delay)


@dataclass(frozen=True, kw_only=True, slots=True)
class TokenRequest:
    """The request whose answer holds a token (``auth: {type: token, request: ...}``); one body at most."""

    url: str  # absolute: a relative one is joined to http.base_url when the spec loads
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)
    json_body: Any = None
    form: Mapping[str, str] | None = None
    body: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class AnswerField:
    """Where a value is in a token request's answer: a JMESPath into its JSON body, or a response header."""

    source: str
    header: bool = False


# The seconds a send to a host keeps from the last one, beyond its rate limit
# (rate-limit headers, adaptive pacing, robots.txt): read when the request
# takes its turn (``HostGate.hold``).
Gap = Callable[[], float]


@dataclass(frozen=True, kw_only=True, slots=True)
class Auth:
    """Credentials for a target. Every value may come from ``${env.X}``."""

    type: str  # basic, bearer, api_key, digest, oauth2_client_credentials, token
    username: str | None = None
    password: str | None = None
    token: str | None = None
    name: str | None = None  # api_key: the header or query parameter
    value: str | None = None
    location: str = "header"  # api_key: header or query
    # oauth2_client_credentials (RFC 6749 4.4): the token endpoint, absolute.
    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    scope: str | None = None
    audience: str | None = None
    client_auth: str = "basic"  # the client's credentials in a Basic header, or in the form body
    # token: a login request, and where its answer holds the token and its lifetime.
    request: TokenRequest | None = None
    token_field: AnswerField | None = None
    expires_field: AnswerField | None = None  # None: the token is good until a 401
    header: str = "Authorization"  # the header a token fetched at run time is sent in
    prefix: str = "Bearer "

    @property
    def fetches_token(self) -> bool:
        """Whether the credential is a token fetched while the run goes, not a value of the spec."""
        return self.type in FETCHED_TOKEN_TYPES


# The keys each auth type needs, checked when the spec loads; how each type
# is sent is registered in ``http.auth``. A new type adds a line here, a
# unit there and its name to the schema's enum (a test holds the three together).
AUTH_NEEDS: Mapping[str, tuple[str, ...]] = {
    "basic": ("username", "password"),
    "bearer": ("token",),
    "api_key": ("name", "value"),
    "digest": ("username", "password"),
    "oauth2_client_credentials": ("token_url", "client_id", "client_secret"),
    "token": ("request", "token"),
}
# The types whose token is fetched at run time (``http.tokens``, one registered grant each).
FETCHED_TOKEN_TYPES = frozenset({"oauth2_client_credentials", "token"})


@dataclass(frozen=True, kw_only=True, slots=True)
class TLS:
    verify: bool = True
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    fingerprint: str | None = None  # SHA-256 of the server certificate, hex


@dataclass(frozen=True, kw_only=True, slots=True)
class Gateway:
    """A ScraperAPI-style proxy/rendering API: the real URL goes in a query parameter."""

    endpoint: str
    api_key: str
    key_param: str = "api_key"
    url_param: str = "url"
    options: Mapping[str, str] = field(default_factory=dict)  # render, country_code, ...


GATEWAY_TIMEOUT = 70.0


@dataclass(frozen=True, kw_only=True, slots=True)
class FetchSettings:
    """How one target's requests are sent: layered http → defaults → target."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limit: RateLimit = field(default_factory=RateLimit)
    auth: Auth | None = None
    tls: TLS = field(default_factory=TLS)
    proxy: str | None = None
    gateway: Gateway | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_redirects: int = 10
    download: bool = False
    max_download_bytes: int | None = None  # None: no limit on a file's size
