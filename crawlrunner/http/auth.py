"""Credentials on requests, and what must not follow a redirect to another origin.

aiohttp drops ``Authorization`` on a cross-origin redirect but not custom
headers or query parameters; redirects are followed by the fetcher, which
asks ``strip_credentials`` what to remove before each cross-origin hop.

Each auth ``type`` is a small function registered in ``AUTH_TYPES``. The
types whose token is fetched at run time say here only which header it goes
in; ``http.tokens`` fetches it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp

from ..settings import Auth
from ..spec.registry import Registry

ALWAYS_SENSITIVE = frozenset({"authorization", "proxy-authorization", "cookie"})


@dataclass(frozen=True)
class Credentials:
    """What auth adds to a request, and what counts as a credential on it."""

    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    middlewares: tuple[aiohttp.DigestAuthMiddleware, ...] = ()
    sensitive_headers: frozenset[str] = ALWAYS_SENSITIVE
    sensitive_params: frozenset[str] = frozenset()
    # The header a token fetched at run time goes in (``http.tokens``); None for the static types.
    token_header: str | None = None


# How each auth type is sent, one small unit per type; the keys each needs
# are in ``settings.AUTH_NEEDS``, the names a spec may use in the schema.
AUTH_TYPES: Registry[Callable[[Auth], Credentials]] = Registry("auth type")


def credentials(auth: Auth | None) -> Credentials:
    """What ``auth`` adds to every request it applies to."""
    if auth is None:
        return Credentials()
    return AUTH_TYPES[auth.type](auth)


@AUTH_TYPES.register("basic")
def _basic(auth: Auth) -> Credentials:
    token = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode("ascii")
    return Credentials(headers={"Authorization": f"Basic {token}"})


@AUTH_TYPES.register("bearer")
def _bearer(auth: Auth) -> Credentials:
    return Credentials(headers={"Authorization": f"Bearer {auth.token}"})


@AUTH_TYPES.register("digest")
def _digest(auth: Auth) -> Credentials:
    # aiohttp answers the server's challenge; nothing is sent up front.
    return Credentials(middlewares=(aiohttp.DigestAuthMiddleware(auth.username or "", auth.password or ""),))


@AUTH_TYPES.register("api_key")
def _api_key(auth: Auth) -> Credentials:
    name, value = auth.name or "", auth.value or ""
    if auth.location == "query":
        return Credentials(query={name: value}, sensitive_params=frozenset({name}))
    return Credentials(headers={name: value}, sensitive_headers=ALWAYS_SENSITIVE | {name.lower()})


@AUTH_TYPES.register("oauth2_client_credentials", "token")
def _fetched_token(auth: Auth) -> Credentials:
    # The token itself is fetched while the run goes (http.tokens): what is
    # known now is the header it goes in, a credential that stays on its origin.
    return Credentials(sensitive_headers=ALWAYS_SENSITIVE | {auth.header.lower()}, token_header=auth.header)


def with_query(url: str, params: Mapping[str, str]) -> str:
    if not params:
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return urlunsplit(parts._replace(query=urlencode(query + list(params.items()))))


def same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


def strip_credentials(
    url: str, headers: Mapping[str, str], creds: Credentials, secrets: Iterable[str]
) -> tuple[str, dict[str, str]]:
    """``url`` and ``headers`` without anything that authenticates the request.

    Besides the auth settings' own header and parameter, any header or query
    value holding a secret from the environment is removed too: crawlrunner
    cannot know which custom header is a key.
    """
    secret_values = tuple(s for s in secrets if s)

    def carries_secret(value: str) -> bool:
        return any(s in value for s in secret_values)

    kept = {k: v for k, v in headers.items() if k.lower() not in creds.sensitive_headers and not carries_secret(v)}
    parts = urlsplit(url)
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k not in creds.sensitive_params and not carries_secret(v)
    ]
    return urlunsplit(parts._replace(query=urlencode(query))), kept
