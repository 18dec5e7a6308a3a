"""Tokens fetched while the run goes: OAuth 2 client credentials, and a login request's answer.

::

    fetcher ──current()──▶ TokenSource ──first use, near expiry, after a 401──▶ token endpoint
       ▲                       │ one fetch in flight at a time, for every worker
       └────── Token ──────────┘

Each auth type that fetches a token registers a grant in ``GRANTS``: the
request it sends and how it reads the answer. A ``TokenSource`` holds one
auth setting's token for the run; targets whose auth settings are equal (and
their TLS settings and proxy, which the token request goes through) share one
source, so one token serves them all (``TokenSources``). Every process of a
shared PostgreSQL run has its own.

The fetcher asks for the current token before each attempt; a cached one
costs a clock read. A token is renewed when less than ``REFRESH_MARGIN``
seconds or a tenth of its lifetime is left, whichever is less, and when a
request sent with it gets a 401 (the fetcher then sends that request once
more, with the new token). One renewal runs at a time; requests that need
the token meanwhile wait for it instead of asking again.

A token endpoint that fails (after the target's own retry policy) is asked
again only ``FAILURE_PAUSE`` seconds later; meanwhile requests that need the
token fail at once with ``auth_error``, or keep using a token that has not
expired yet. A token that a 401 renewed is not renewed on a 401 in turn
before a request succeeded with it (the API refuses what the endpoint gives)
nor during ``FAILURE_PAUSE`` seconds after it came (a 401 about a resource,
not the token): asking for more would only hammer the endpoint.

Secrets: a token, once read, goes to the run's redactor before anything can
print it; the answer's body is never logged nor kept (an OAuth 2 error code
is quoted, nothing else); and the token request goes through
``Fetcher.exchange``: the address guard and ``allowed_hosts``, the target's
TLS settings, proxy and timeouts, no redirects. The fetcher asks for the
token with the host's slot held, so a token cannot expire while its request
waits for its turn; the token request itself takes no slot (the requests
waiting for it hold them).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote_plus

from ..errors import AuthError, ErrorKind, FetchError
from ..secrets import Redactor
from ..selectors import compile_selector
from ..settings import TLS, AnswerField, Auth, RetryPolicy, TokenRequest
from ..spec.registry import Registry
from .retry import decide, parse_retry_after
from .translate import translate

if TYPE_CHECKING:  # the fetcher sends the token request; it imports this module
    from .fetcher import Fetcher, TargetClient

log = logging.getLogger(__name__)

REFRESH_MARGIN = 30.0  # seconds before expiry a token is renewed (or a tenth of its lifetime)
FAILURE_PAUSE = 30.0  # seconds before a failed token endpoint is asked again
MIN_LIFETIME = 1.0  # a token said to expire at once is still used this long: no renewal per request
ANSWER_BYTES = 64 * 1024  # a token endpoint's answer is small; more is refused
# RFC 6749 5.2 error codes are short words of this alphabet; anything else is not quoted.
_OAUTH_ERROR = re.compile(r"[a-z_]{1,40}\Z")


@dataclass(frozen=True, slots=True)
class Answer:
    """A token request's response, read whole (at most ``ANSWER_BYTES``)."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Issued:
    """What a grant read from an answer: the token, the header value it makes, its lifetime in seconds."""

    token: str
    value: str
    lifetime: float | None  # None: good until a 401


class Grant(Protocol):
    """One auth type's way to a token: the request to send, and how to read its answer."""

    @property
    def request(self) -> TokenRequest: ...

    def read(self, answer: Answer) -> Issued:
        """The token in a 2xx answer; AuthError if there is none."""
        ...


GRANTS: Registry[Callable[[Auth], Grant]] = Registry("token auth type")


@GRANTS.register("oauth2_client_credentials")
class ClientCredentials:
    """RFC 6749 4.4: POST grant_type=client_credentials; read access_token, token_type, expires_in."""

    def __init__(self, auth: Auth) -> None:
        form = {"grant_type": "client_credentials"}
        form.update({k: v for k, v in (("scope", auth.scope), ("audience", auth.audience)) if v})
        headers = {"Accept": "application/json"}
        client_id, secret = auth.client_id or "", auth.client_secret or ""
        if auth.client_auth == "body":
            form.update(client_id=client_id, client_secret=secret)
        else:
            # RFC 6749 2.3.1: each form-encoded, then used as Basic's user and password.
            pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
            headers["Authorization"] = f"Basic {base64.b64encode(pair).decode('ascii')}"
        self._request = TokenRequest(url=auth.token_url or "", headers=headers, form=form)

    @property
    def request(self) -> TokenRequest:
        return self._request

    def read(self, answer: Answer) -> Issued:
        data = _json(answer)
        if not isinstance(data, dict):
            raise AuthError("the answer is not a JSON object")
        token = _usable(data.get("access_token"), "access_token")
        kind = data.get("token_type") or "Bearer"
        if not isinstance(kind, str) or kind.lower() != "bearer":
            shown = kind if isinstance(kind, str) and _OAUTH_ERROR.match(kind.lower()) else "non-bearer"
            raise AuthError(f"the token endpoint gave a {shown} token; only bearer tokens can be sent")
        return Issued(token, f"Bearer {token}", _seconds(data.get("expires_in")))


@GRANTS.register("token")
class LoginAnswer:
    """A login request as the spec writes it; the token where ``token`` says, sent as ``prefix`` + token."""

    def __init__(self, auth: Auth) -> None:
        assert auth.request is not None and auth.token_field is not None  # checked when the spec loaded
        self._request = auth.request
        self._token = _Picker(auth.token_field)
        self._expires = _Picker(auth.expires_field) if auth.expires_field is not None else None
        self._prefix = auth.prefix

    @property
    def request(self) -> TokenRequest:
        return self._request

    def read(self, answer: Answer) -> Issued:
        token = _usable(self._token.pick(answer), self._token.shown)
        lifetime = _seconds(self._expires.pick(answer)) if self._expires is not None else None
        return Issued(token, f"{self._prefix}{token}", lifetime)


class _Picker:
    """An ``AnswerField``, compiled: a value from the answer's JSON or headers."""

    def __init__(self, where: AnswerField) -> None:
        self.shown = f"header {where.source}" if where.header else where.source
        self._header = where.source if where.header else None
        self._query = None if where.header else compile_selector("jmespath", where.source).query

    def pick(self, answer: Answer) -> Any:
        if self._header is not None:
            return answer.headers.get(self._header)
        assert self._query is not None
        return self._query.search(_json(answer))


def _json(answer: Answer) -> Any:
    try:
        return json.loads(answer.body)
    except ValueError:
        raise AuthError("the answer is not JSON") from None


def _usable(token: Any, where: str) -> str:
    """``token`` if it can be sent in a header; its value is never quoted."""
    if isinstance(token, int | float) and not isinstance(token, bool):
        token = str(token)
    if not isinstance(token, str) or not token.strip():
        raise AuthError(f"the answer has no token at {where}")
    if any(c in token for c in "\r\n\0"):
        raise AuthError(f"the token at {where} holds a line break or NUL: it cannot be sent in a header")
    return token


def _seconds(value: Any) -> float | None:
    """A lifetime in seconds, from a number or a numeric string; None when absent or unreadable."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) else None


def _oauth_error(answer: Answer) -> str:
    """`` (invalid_client)``: the RFC 6749 error code of a failed answer, if it gives one."""
    try:
        code = json.loads(answer.body).get("error")
    except (ValueError, AttributeError):
        return ""
    return f" ({code})" if isinstance(code, str) and _OAUTH_ERROR.match(code) else ""


class Token:
    """A token as sent: the header and its value, and when to renew it (``time.monotonic`` seconds)."""

    __slots__ = ("accepted", "after_401", "expires_at", "header", "obtained", "refresh_at", "value")

    def __init__(self, header: str, value: str, obtained: float, lifetime: float | None, *, after_401: bool) -> None:
        self.header, self.value, self.obtained = header, value, obtained
        self.after_401 = after_401  # fetched because the one before got a 401
        self.accepted = False  # a request sent with it succeeded
        if lifetime is None:
            self.refresh_at = self.expires_at = math.inf
        else:
            lifetime = max(lifetime, MIN_LIFETIME)
            self.expires_at = obtained + lifetime
            self.refresh_at = self.expires_at - min(REFRESH_MARGIN, lifetime / 10)


class TokenSource:
    """One auth setting's token for the run: fetched when first needed, renewed as the module says."""

    def __init__(
        self,
        grant: Grant,
        header: str,
        exchange: Callable[[], Awaitable[Answer]],
        redactor: Redactor,
        policy: RetryPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._grant, self._header, self._exchange = grant, header, exchange
        self._redactor, self._policy, self._clock = redactor, policy, clock
        request = grant.request
        self.describe = f"the token request {request.method} {request.url}"
        self.fetched = 0  # tokens obtained, for tests and the debug log
        self._token: Token | None = None
        self._lock = asyncio.Lock()
        self._after_401 = False  # the next token replaces one a 401 refused
        self._failure: AuthError | None = None
        self._paused_until = -math.inf

    async def current(self) -> Token:
        """The token to send now; AuthError when there is none to be had."""
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token
        return await self._renew()

    def rejected(self, token: Token) -> bool:
        """A request sent with ``token`` got a 401: whether to send it once more, with a renewed token.

        Not for a token that a 401 renewed, while nothing succeeded with it
        (the API refuses fresh tokens too) or for ``FAILURE_PAUSE`` seconds
        after it came (some 401s are about the resource, not the token, and
        must not cost a token request each).
        """
        if token.after_401 and (not token.accepted or self._clock() - token.obtained < FAILURE_PAUSE):
            return False
        if self._token is token:
            self._token, self._after_401 = None, True
        return True

    async def _renew(self) -> Token:
        async with self._lock:  # one renewal at a time; the others find its token here
            token, now = self._token, self._clock()
            if token is not None and now < token.refresh_at:
                return token
            if now < self._paused_until:
                return self._instead(token, now)
            try:
                fresh = await self._fetch()
            except AuthError as exc:
                self._failure, self._paused_until = exc, self._clock() + FAILURE_PAUSE
                log.warning("%s; requests that need its token fail with auth_error for %.0f s", exc, FAILURE_PAUSE)
                return self._instead(token, now)
            self._token, self._after_401 = fresh, False
            return fresh

    def _instead(self, token: Token | None, now: float) -> Token:
        """While the endpoint is not asked: the token being replaced while it has not expired, else the failure."""
        if token is not None and now < token.expires_at:
            return token
        assert self._failure is not None
        raise self._failure

    async def _fetch(self) -> Token:
        """A new token, asked with the target's retry policy; AuthError saying why there is none."""
        attempt = 0
        while True:
            attempt += 1
            status, retry_after = None, None
            try:
                answer = await self._exchange()
            except Exception as exc:  # CancelledError is not an Exception: it goes through
                error: FetchError = translate(exc)
                kind, why = error.kind, str(error)
            else:
                if 200 <= answer.status < 300:
                    return self._issue(answer)
                status, kind = answer.status, ErrorKind.HTTP_STATUS
                why = f"HTTP {answer.status}{_oauth_error(answer)}"
                if 300 <= answer.status < 400:
                    why += " (a token request does not follow redirects: give the final URL)"
                retry_after = parse_retry_after(answer.headers.get("Retry-After"))
            decision = decide(self._policy, attempt, status=status, error_kind=kind, retry_after=retry_after)
            if not decision.retry:
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                raise AuthError(f"{self.describe} failed{tries}: {why}")
            await asyncio.sleep(decision.delay or 0)

    def _issue(self, answer: Answer) -> Token:
        try:
            issued = self._grant.read(answer)
        except AuthError as exc:
            raise AuthError(f"{self.describe}: {exc}") from None
        # Masked before anything can print it (the header's value holds it too).
        self._redactor.add(issued.token)
        self.fetched += 1
        log.debug("%s: token %d obtained, good for %s", self.describe, self.fetched, issued.lifetime or "until a 401")
        return Token(self._header, issued.value, self._clock(), issued.lifetime, after_401=self._after_401)


class TokenSources:
    """The run's token sources, one per distinct auth setting, made when a target first needs one."""

    def __init__(self, fetcher: Fetcher, redactor: Redactor, user_agent: str) -> None:
        self._fetcher, self._redactor, self._user_agent = fetcher, redactor, user_agent
        self._sources: list[tuple[tuple[Auth, TLS, str | None], TokenSource]] = []

    def attach(self, client: TargetClient) -> TargetClient:
        """``client`` with the token source its auth needs (shared by equal settings); unchanged if none."""
        settings = client.settings
        auth = settings.auth
        if auth is None or not auth.fetches_token:
            return client
        key = (auth, settings.tls, settings.proxy)
        source = next((known for setting, known in self._sources if setting == key), None)
        if source is None:
            source = self._source(auth, client)
            self._sources.append((key, source))
        return replace(client, tokens=source)

    def _source(self, auth: Auth, client: TargetClient) -> TokenSource:
        grant = GRANTS[auth.type](auth)
        request = replace(grant.request, headers={"User-Agent": self._user_agent, **grant.request.headers})
        # Sent as the first target with these settings sends its requests, retried by its policy.
        exchange = partial(self._fetcher.exchange, request, client)
        return TokenSource(grant, auth.header, exchange, self._redactor, client.settings.retry)
