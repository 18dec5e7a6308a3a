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

A token endpoint that fails (after the target's own retry policy) is not
asked again for a pause; meanwhile a token that has not expired yet is still
sent. A failure that may pass (a network error, a retryable status) makes the
requests that need a token wait for the next try, holding no host slot
(``ready``), while the pause grows from ``FIRST_PAUSE`` to ``FAILURE_PAUSE``:
a blip of a few seconds fails nothing. Once the endpoint has been failing for
``retry.max_retry_after`` seconds, or at once for a failure that will not
pass (a refused client, an answer without a token), the source gives up:
requests fail at once with ``auth_error`` and the endpoint is asked again every
``FAILURE_PAUSE`` seconds at most, so a dead endpoint neither hangs the run
nor gets a request per URL. A token that a 401 renewed is not renewed on a
401 in turn before a request succeeded with it (the API refuses what the
endpoint gives) nor during ``FAILURE_PAUSE`` seconds after it came (a 401
about a resource, not the token): asking for more would only hammer the
endpoint.

Secrets: a token, once read, goes to the run's redactor before anything can
print it; the answer's body is never logged nor kept (a failed answer's
OAuth 2 error code, or a login's short error message with the request's own
values masked, is quoted, nothing else); and the token request goes through
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
from ..secrets import MASK, Redactor
from ..selectors import compile_selector
from ..settings import TLS, AnswerField, Auth, RetryPolicy, TokenRequest
from ..spec.registry import Registry
from .retry import decide, parse_retry_after, retryable
from .translate import translate

if TYPE_CHECKING:  # the fetcher sends the token request; it imports this module
    from .fetcher import Fetcher, TargetClient

log = logging.getLogger(__name__)

REFRESH_MARGIN = 30.0  # seconds before expiry a token is renewed (or a tenth of its lifetime)
FIRST_PAUSE = 1.0  # seconds before a token endpoint that just failed is asked again; doubled after each failure
FAILURE_PAUSE = 30.0  # the longest pause, and the one once requests fail instead of waiting
MIN_LIFETIME = 1.0  # a token said to expire at once is still used this long: no renewal per request
ANSWER_BYTES = 64 * 1024  # a token endpoint's answer is small; more is refused
# RFC 6749 5.2 error codes are short words of this alphabet; anything else is not quoted.
_OAUTH_ERROR = re.compile(r"[a-z_]{1,40}\Z")
# Where a failed login's JSON answer says what went wrong, and how much of it is quoted.
_MESSAGE_KEYS = ("error", "message", "detail")
EXCERPT_CHARS = 80
SHORT_SECRET = 4  # shorter values are masked as whole words only: as letters they would mask half the text


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

    def refusal(self, answer: Answer) -> str:
        """What a failed (not 2xx) answer says of why, to quote after its status: `` (invalid_client)``, or ""."""
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

    def refusal(self, answer: Answer) -> str:
        return _oauth_error(answer)


@GRANTS.register("token")
class LoginAnswer:
    """A login request as the spec writes it; the token where ``token`` says, sent as ``prefix`` + token."""

    def __init__(self, auth: Auth) -> None:
        assert auth.request is not None and auth.token_field is not None  # checked when the spec loaded
        self._request = auth.request
        self._token = _Picker(auth.token_field)
        self._expires = _Picker(auth.expires_field) if auth.expires_field is not None else None
        self._prefix = auth.prefix
        # A server may echo what it was sent ("no user reader with password pw123"): never quoted.
        sent = _strings([auth.request.headers, auth.request.json_body, auth.request.form, auth.request.body])
        self._sent = _echo_pattern(sent)

    @property
    def request(self) -> TokenRequest:
        return self._request

    def read(self, answer: Answer) -> Issued:
        token = _usable(self._token.pick(answer), self._token.shown)
        lifetime = _seconds(self._expires.pick(answer)) if self._expires is not None else None
        return Issued(token, f"{self._prefix}{token}", lifetime)

    def refusal(self, answer: Answer) -> str:
        """`` (message: "wrong password")``: a short excerpt of the JSON answer's ``error``, ``message`` or ``detail``."""
        said = _said(answer) if not 200 <= answer.status < 300 else None
        if said is None:
            return ""
        key, text = said
        text = " ".join(text.split())  # one line
        if self._sent is not None:  # masked before it is cut: no part of a secret shows
            text = self._sent.sub(MASK, text)
        if len(text) > EXCERPT_CHARS:
            text = text[: EXCERPT_CHARS - 1].rstrip() + "…"
        return f' ({key}: "{text}")'


def _said(answer: Answer) -> tuple[str, str] | None:
    """The first of ``_MESSAGE_KEYS`` that holds text in a JSON answer (``{"error": {"message": …}}`` too)."""
    try:
        data = json.loads(answer.body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for key in _MESSAGE_KEYS:
        value = data.get(key)
        if isinstance(value, dict):
            value = value.get("message")
        if isinstance(value, str) and value.strip():
            return key, "".join(c if c.isprintable() else " " for c in value)
    return None


def _echo_pattern(values: list[str]) -> re.Pattern[str] | None:
    """What masks the login request's own values in its answer: a short one (a password "x") as a whole word only."""
    spelled = [
        re.escape(v) if len(v) >= SHORT_SECRET else rf"(?<!\w){re.escape(v)}(?!\w)"
        for v in sorted({v for v in values if v.strip()}, key=len, reverse=True)
    ]
    return re.compile("|".join(spelled)) if spelled else None


def _strings(value: Any) -> list[str]:
    """Every string in ``value`` (nested mappings and lists), keys excepted."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


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


@dataclass(frozen=True, slots=True)
class _Failure:
    """A token request that failed: the error requests get, its short reason, and whether it may pass."""

    error: AuthError
    why: str  # "HTTP 500", "Cannot connect to host …": what the live view shows
    transient: bool  # a network error or a retryable status: worth waiting for


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
        self.targets: list[str] = []  # those the token is for, named in log lines
        self.fetched = 0  # tokens obtained, for tests
        self.waiting = 0  # requests waiting for the endpoint's next try, for the live view
        self._token: Token | None = None
        self._lock = asyncio.Lock()
        self._after_401 = False  # the next token replaces one a 401 refused
        self._failure: _Failure | None = None
        self._paused_until = -math.inf
        self._down_since: float | None = None  # when the first of the failed fetches in a row began
        self._failures = 0  # failed fetches in a row: the pause doubles with each
        self._given_up = False  # requests fail at once instead of waiting for the next try

    @property
    def name(self) -> str:
        """``items``, or ``items and 2 more targets``: who the token is for."""
        first, more = (self.targets or ["auth"])[0], len(self.targets) - 1
        return f"{first} and {more} more target{'s' if more > 1 else ''}" if more > 0 else first

    async def current(self) -> Token | None:
        """The token to send now; AuthError when there is none to be had.

        None: the endpoint just failed and is asked again soon: ``ready()``
        waits for that (the caller lets its host slot go meanwhile), then ask again.
        """
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token
        return await self._renew()

    async def ready(self) -> None:
        """Wait, holding nothing, while the endpoint is paused after a failure that may pass and no token is usable."""
        while (left := self._wait_left()) > 0:
            self.waiting += 1
            try:
                await asyncio.sleep(left)
            finally:
                self.waiting -= 1

    def _wait_left(self) -> float:
        now = self._clock()
        if self._given_up or now >= self._paused_until:
            return 0.0
        token = self._token
        if token is not None and now < token.expires_at:
            return 0.0  # still sent while the endpoint is down
        return self._paused_until - now

    def note(self) -> str:
        """``waiting for a token: …, next try in 4 s`` while requests wait for this source; else ""."""
        failure = self._failure
        if not self.waiting or failure is None:
            return ""
        left = math.ceil(max(self._paused_until - self._clock(), 0.0))
        return self._redactor(
            f"{self.waiting} waiting for a token: the endpoint failed ({failure.why}), next try in {left} s"
        )

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

    async def _renew(self) -> Token | None:
        async with self._lock:  # one renewal at a time; the others find its token here
            token, now = self._token, self._clock()
            if token is not None and now < token.refresh_at:
                return token
            if now < self._paused_until:
                return self._instead(token, now)
            reason = self._renewal_reason(token, now)
            fetched = await self._fetch()
            if isinstance(fetched, _Failure):
                self._failed(fetched, started=now)
                return self._instead(token, self._clock())
            self._token, self._after_401 = fetched, False
            self._down_since, self._failures, self._given_up = None, 0, False
            request = self._grant.request
            log.info(
                "%s: token %s from %s %s, good for %s", self.name, reason, request.method,
                self._redactor(request.url), _lifetime(fetched),
            )  # fmt: skip
            return fetched

    def _renewal_reason(self, token: Token | None, now: float) -> str:
        """Why a token is fetched now, for the log line."""
        if self._after_401:
            return "renewed (a request sent with the last one got HTTP 401)"
        if token is None:
            return "obtained"
        if now >= token.expires_at:
            return "renewed (the last one expired)"
        return f"renewed (the last one expires in {token.expires_at - now:.1f} s)"

    def _instead(self, token: Token | None, now: float) -> Token | None:
        """While the endpoint is not asked: the token being replaced while it has not expired, else wait or fail."""
        if token is not None and now < token.expires_at:
            return token
        assert self._failure is not None
        if not self._given_up:
            return None
        raise self._failure.error

    def _failed(self, failure: _Failure, *, started: float) -> None:
        """Pause the endpoint after ``failure``: requests wait for the next try, or give up and fail at once."""
        if self._down_since is None:
            self._down_since = started
        now = self._clock()
        bound = self._policy.max_retry_after  # the longest the run waits on a server that asks for patience
        self._given_up = not failure.transient or now - self._down_since >= bound
        if self._given_up:
            pause = FAILURE_PAUSE
            then = f"requests that need its token fail with auth_error; asked again in {pause:.0f} s at the earliest"
        else:
            # Growing, and never past the bound: the last try comes when it is reached.
            pause = min(FIRST_PAUSE * 2**self._failures, FAILURE_PAUSE, self._down_since + bound - now)
            then = f"requests that need its token wait for the next try, in {pause:.1f} s"
        self._failures += 1
        self._failure, self._paused_until = failure, now + pause
        log.warning("%s: %s; %s", self.name, self._redactor(str(failure.error)), then)

    async def _fetch(self) -> Token | _Failure:
        """A new token, asked with the target's retry policy; else why there is none."""
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
                    try:
                        return self._issue(answer)
                    except AuthError as exc:
                        return _Failure(exc, "an answer without a usable token", transient=False)
                status, kind = answer.status, ErrorKind.HTTP_STATUS
                why = f"HTTP {answer.status}{self._grant.refusal(answer)}"
                if 300 <= answer.status < 400:
                    why += " (a token request does not follow redirects: give the final URL)"
                retry_after = parse_retry_after(answer.headers.get("Retry-After"))
            decision = decide(self._policy, attempt, status=status, error_kind=kind, retry_after=retry_after)
            if not decision.retry:
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                passes = decision.kind is None and retryable(self._policy, status=status, error_kind=kind)
                return _Failure(AuthError(f"{self.describe} failed{tries}: {why}"), why, transient=passes)
            await asyncio.sleep(decision.delay or 0)

    def _issue(self, answer: Answer) -> Token:
        try:
            issued = self._grant.read(answer)
        except AuthError as exc:
            raise AuthError(f"{self.describe}: {exc}") from None
        # Masked before anything can print it (the header's value holds it too).
        self._redactor.add(issued.token)
        self.fetched += 1
        return Token(self._header, issued.value, self._clock(), issued.lifetime, after_401=self._after_401)


def _lifetime(token: Token) -> str:
    """``3600 s`` or ``until a 401``: how long a token is good for, as it was given."""
    if token.expires_at == math.inf:
        return "until a request gets HTTP 401"
    return f"{token.expires_at - token.obtained:g} s"


class TokenSources:
    """The run's token sources, one per distinct auth setting, made when a target first needs one."""

    def __init__(self, fetcher: Fetcher, redactor: Redactor, user_agent: str) -> None:
        self._fetcher, self._redactor, self._user_agent = fetcher, redactor, user_agent
        self._sources: list[tuple[tuple[Auth, TLS, str | None], TokenSource]] = []

    def attach(self, client: TargetClient, target: str = "") -> TargetClient:
        """``client`` (``target``'s) with the token source its auth needs (shared by equal settings); unchanged if none."""
        settings = client.settings
        auth = settings.auth
        if auth is None or not auth.fetches_token:
            return client
        key = (auth, settings.tls, settings.proxy)
        source = next((known for setting, known in self._sources if setting == key), None)
        if source is None:
            source = self._source(auth, client)
            self._sources.append((key, source))
        if target:
            source.targets.append(target)
        return replace(client, tokens=source)

    def waiting(self) -> str:
        """What requests wait for, for the live view: each source's ``note``, or ""."""
        return "; ".join(note for _, source in self._sources if (note := source.note()))

    def _source(self, auth: Auth, client: TargetClient) -> TokenSource:
        grant = GRANTS[auth.type](auth)
        request = replace(grant.request, headers={"User-Agent": self._user_agent, **grant.request.headers})
        # Sent as the first target with these settings sends its requests, retried by its policy.
        exchange = partial(self._fetcher.exchange, request, client)
        return TokenSource(grant, auth.header, exchange, self._redactor, client.settings.retry)
