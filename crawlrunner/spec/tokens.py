"""The keys of the auth types that fetch a token while the run goes: ``oauth2_client_credentials`` and ``token``.

Checked where they are written (``http``, ``defaults`` or a target), so a
mistake in the run-wide block is reported once, at its place: a token URL
or login URL is joined to ``http.base_url`` (a relative one without it is a
problem), the login request gets one body at most, and a selector of the
token or its lifetime is compiled. The JSON Schema has already refused line
breaks in the login request's headers, in ``header`` and in ``prefix``.
Then, per target, ``token_auth`` gives the ``settings.Auth`` keys of the
merged block. Fetching is ``http.tokens``'s job.
"""

from __future__ import annotations

from typing import Any

from ..errors import SelectorSyntaxError
from ..selectors import compile_selector
from ..settings import AnswerField, TokenRequest
from .env import Context
from .loader import SpecPath
from .urls import absolute_url

# Passed to ``Auth`` as written; the defaults are Auth's.
_KEYS = ("token_url", "client_id", "client_secret", "scope", "audience", "client_auth", "request", "header", "prefix")
_REQUEST_KEYS = ("method", "headers", "form", "body")
_BODIES = ("json", "form", "body")


def written(ctx: Context, raw: dict[str, Any], path: SpecPath, base_url: str | None) -> dict[str, Any]:
    """One level's ``auth`` block (``${env.X}`` resolved) with its token keys checked and built."""
    built = dict(raw)
    if isinstance(raw.get("token_url"), str):
        built["token_url"] = _absolute(ctx, raw["token_url"], path + ("token_url",), base_url)
    if isinstance(raw.get("request"), dict):
        built["request"] = _request(ctx, raw["request"], path + ("request",), base_url)
    # A string ``token`` is a selector only for type token (for bearer it is the token).
    if isinstance(raw.get("token"), dict) or (raw.get("type") == "token" and isinstance(raw.get("token"), str)):
        built["token"] = answer_field(ctx, raw["token"], path + ("token",))
    if raw.get("expires_in") is not None:
        built["expires_in"] = answer_field(ctx, raw["expires_in"], path + ("expires_in",))
    return built


def token_auth(ctx: Context, raw: dict[str, Any], path: SpecPath) -> dict[str, Any]:
    """The ``Auth`` keys of a merged auth block whose type fetches a token."""
    own = {key: raw[key] for key in _KEYS if key in raw}
    token = raw.get("token")
    if isinstance(token, str):  # the type came from another level than the selector: checked here
        token = answer_field(ctx, token, path + ("token",))
    own["token_field"] = token
    if isinstance(raw.get("expires_in"), AnswerField):
        own["expires_field"] = raw["expires_in"]
    return own


def answer_field(ctx: Context, raw: Any, path: SpecPath) -> AnswerField | None:
    """``token`` or ``expires_in``: a JMESPath into the answer's JSON, ``{jmespath: …}`` or ``{header: Name}``.

    The schema allows a mapping of one of those two keys only.
    """
    if isinstance(raw, AnswerField):
        return raw
    if isinstance(raw, dict) and "header" in raw:
        return AnswerField(source=raw["header"], header=True)
    source = raw["jmespath"] if isinstance(raw, dict) else raw
    try:
        compile_selector("jmespath", source)
    except SelectorSyntaxError as exc:
        ctx.problem(path + ("jmespath",) if isinstance(raw, dict) else path, str(exc))
        return None
    return AnswerField(source=source)


def _absolute(ctx: Context, url: str, path: SpecPath, base_url: str | None) -> str:
    """``url`` joined to ``base_url`` when relative (as written when it cannot be used: the problem is reported)."""
    return absolute_url(ctx, url, path, base_url) or url


def _request(ctx: Context, raw: dict[str, Any], path: SpecPath, base_url: str | None) -> TokenRequest:
    bodies = [key for key in _BODIES if key in raw]
    if len(bodies) > 1:
        ctx.problem(path, f"give one body at most, not {' and '.join(bodies)}")
    own = {key: raw[key] for key in _REQUEST_KEYS if key in raw}
    if "json" in raw:
        own["json_body"] = raw["json"]
    return TokenRequest(url=_absolute(ctx, raw.get("url", ""), path + ("url",), base_url), **own)
