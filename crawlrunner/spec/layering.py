"""Run settings from the spec: the ``http`` block and the request settings, layered.

Precedence, lowest first: the dataclass defaults in ``settings`` < ``http``
< ``defaults`` < the target < command-line flags. For mappings (headers,
params, timeout, retry, ...) keys are merged one by one, and ``null``
removes an inherited key or switches a setting off.

A key the spec does not write is not passed to its dataclass at all, so the
default comes from ``settings`` and is written nowhere else.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..overrides import ABSOLUTE_HTTP_URL
from ..settings import (
    AUTH_NEEDS,
    FETCHED_TOKEN_TYPES,
    TLS,
    AnswerField,
    Auth,
    FetchSettings,
    Gateway,
    HttpSettings,
    Limits,
    RateLimit,
    RetryPolicy,
    Timeouts,
)
from ..templates import Template
from . import tokens
from .env import Context
from .loader import SpecPath
from .urls import check_authority

# Settings whose values are credentials whether or not they come from ${env.X}.
_SECRET_KEYS = {
    "auth": ("username", "password", "token", "value", "client_secret"),
    "gateway": ("api_key",),
    "proxy": (),
}
FETCH_KEYS = (
    "retry", "rate_limit", "auth", "tls", "proxy", "gateway", "max_body_bytes", "max_redirects", "download",
    "max_download_bytes",
)  # fmt: skip
_TLS_FILES = ("ca_bundle", "client_cert", "client_key")
_GATEWAY_OPTIONS = ("render", "country_code", "device_type", "premium")


def given(raw: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """The ``keys`` the spec writes in ``raw``: passed to a dataclass, the others keep its defaults."""
    return {key: raw[key] for key in keys if key in raw}


def merge(inherited: dict[str, Any], own: dict[str, Any], *, ignore_case: bool = False) -> dict[str, Any]:
    """``own`` over ``inherited`` key by key, ``null`` deleting a key.

    Header names ignore case, so ``accept`` replaces an inherited ``Accept``.
    """
    merged = dict(inherited)
    for key, value in own.items():
        for existing in [k for k in merged if (k.lower() == key.lower() if ignore_case else k == key)]:
            del merged[existing]
        if value is not None:
            merged[key] = value
    return merged


def scalar_text(value: Any) -> str:
    """A YAML scalar as the text sent on the wire (``true``, not ``True``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def single_line(ctx: Context, values: Any, path: SpecPath) -> Any:
    """``values`` (a mapping) without the values that hold a line break, each reported at ``path``.

    Headers are merged from ``http``, ``defaults`` and the target: a bad value
    is reported in the layer that writes it, not blamed on every target that
    inherits it.
    """
    if not isinstance(values, dict):
        return values
    kept: dict[str, Any] = {}
    for name, value in values.items():
        if value is not None and any(c in scalar_text(value) for c in "\r\n"):
            ctx.problem(path + (name,), "values must not contain line breaks")
            continue
        kept[name] = value
    return kept


def http_settings(ctx: Context, raw: dict[str, Any], base_url_override: str | None) -> HttpSettings:
    """The run-wide ``http`` block (its request settings are layered per target)."""
    path: SpecPath = ("http",)
    base_url = base_url_override or ctx.resolve(raw.get("base_url"), path + ("base_url",))
    resolved = path + ("base_url",) not in ctx.unresolved
    if base_url is not None and resolved and not ABSOLUTE_HTTP_URL.match(base_url):
        ctx.problem(path + ("base_url",), "expected an absolute http:// or https:// URL")
    elif base_url is not None and resolved:
        check_authority(ctx, Template(base_url, (base_url,)), path + ("base_url",))
    own = given(raw, ("user_agent", "trust_env", "block_private_addresses", "allowed_hosts", "download_dir"))
    if "user_agent" in own:
        own.update(single_line(ctx, {"user_agent": ctx.resolve(own["user_agent"], path + ("user_agent",))}, path))
    return HttpSettings(
        base_url=base_url,
        # Header values are templates (targets render them per request).
        headers=single_line(
            ctx, ctx.resolve(raw.get("headers") or {}, path + ("headers",), template=True), path + ("headers",)
        ),
        timeout=Timeouts().merged(raw.get("timeout")),
        limits=Limits(**given(raw.get("limits") or {}, ("connections", "per_host", "keepalive", "dns_cache"))),
        cookies=ctx.resolve(raw.get("cookies") or {}, path + ("cookies",)),
        **own,
    )


def fetch_layer(ctx: Context, raw: Mapping[str, Any], path: SpecPath, *, base_url: str | None) -> dict[str, Any]:
    """The request settings written at one level, resolved where they are written.

    ``base_url`` (``http.base_url``) is what a relative token URL is joined to.
    """
    layer: dict[str, Any] = {}
    for key in FETCH_KEYS:
        if key not in raw:
            continue
        value = raw[key]
        layer[key] = ctx.secret(value, path + (key,), _secret_keys(key, value)) if key in _SECRET_KEYS else value
        if key == "rate_limit" and isinstance(value, dict):
            _check_rate_limit(ctx, value, path + (key,))
        if key == "auth" and isinstance(layer[key], dict):
            layer[key] = tokens.written(ctx, layer[key], path + (key,), base_url)
        if key == "tls" and isinstance(value, dict):
            # Files are checked (and made absolute) where they are written.
            layer[key] = {k: ctx.spec_file(v, path + (key, k)) if k in _TLS_FILES else v for k, v in value.items()}
    return layer


def _secret_keys(key: str, value: Any) -> tuple[str, ...]:
    # For type token, ``token`` says where the login answer holds the token: not a secret.
    if key == "auth" and isinstance(value, dict) and value.get("type") == "token":
        return tuple(k for k in _SECRET_KEYS[key] if k != "token")
    return _SECRET_KEYS[key]


_RATES = frozenset({"per_second", "per_minute"})


Layers = Sequence[tuple[SpecPath, dict[str, Any]]]  # http → defaults → target, each with where it is written


def fetch_settings(ctx: Context, layers: Layers, path: SpecPath) -> FetchSettings:
    """The target's request settings from its ``layers``: mappings merge key by key, null switches off."""
    merged = _merged(layers)
    _check_auth(ctx, layers, merged.get("auth"))
    _check_adaptive_only(ctx, layers, merged.get("rate_limit") or {})
    return FetchSettings(
        retry=_retry(merged.get("retry", {})),
        rate_limit=_rate_limit(merged.get("rate_limit") or {}),
        auth=auth(ctx, merged.get("auth"), path),
        tls=_tls(merged.get("tls") or {}),
        gateway=gateway(merged.get("gateway")),
        **given(merged, ("proxy", "max_body_bytes", "max_redirects", "download", "max_download_bytes")),
    )


def _merged(layers: Layers) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for _, layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                inherited = merged[key]
                if key == "rate_limit" and _RATES & value.keys():
                    # One setting written two ways: a layer's per_minute replaces an inherited per_second.
                    inherited = {k: v for k, v in inherited.items() if k not in _RATES}
                merged[key] = merge(inherited, value)
            else:
                merged[key] = value
    return merged


def _retry(raw: dict[str, Any] | None) -> RetryPolicy:
    if raw is None:
        return RetryPolicy(attempts=1)  # retry: null is a single attempt
    own = given(raw, ("attempts", "backoff", "max_backoff", "max_retry_after", "statuses"))
    if "statuses" in own:
        own["statuses"] = frozenset(own["statuses"])
    return RetryPolicy(**own)


def _rate_limit(raw: dict[str, Any]) -> RateLimit:
    per_second = raw.get("per_second") or (raw["per_minute"] / 60 if raw.get("per_minute") else None)
    return RateLimit(
        per_second=per_second, **given(raw, ("min_delay", "cooldown", "adaptive", "target_concurrency", "max_delay"))
    )


def _check_rate_limit(ctx: Context, raw: Mapping[str, Any], path: SpecPath) -> None:
    """Mistakes within one level's ``rate_limit``, reported where they are written.

    Both rates in one block is the one way the merged setting can hold both:
    a level that writes either replaces both inherited ones.
    """
    if "per_second" in raw and "per_minute" in raw:
        ctx.problem(path, "give per_second or per_minute, not both")
    if raw.get("adaptive") is False and "target_concurrency" in raw:
        ctx.problem(path + ("target_concurrency",), "has no effect with adaptive: false", key=True)
    if raw.get("max_delay") is None:
        return
    kept = max(
        raw.get("min_delay") or 0, 1 / (raw.get("per_second") or math.inf), 60 / (raw.get("per_minute") or math.inf)
    )
    if raw["max_delay"] < kept:
        ctx.problem(
            path + ("max_delay",),
            f"{raw['max_delay']:g} s is less than the {kept:g} s between requests that min_delay or the rate already keeps",
        )


def _check_adaptive_only(ctx: Context, layers: Layers, merged: Mapping[str, Any]) -> None:
    """``target_concurrency`` in a rate limit that is not adaptive in the end: reported where it is written, once.

    ``layers`` are http, defaults and the target's own, with where each is
    written, as ``fetch_settings`` merges them; a level that says
    ``adaptive: false`` beside it was told already (``_check_rate_limit``).
    """
    if "target_concurrency" not in merged or merged.get("adaptive") is True:
        return
    for where, layer in reversed(list(layers)):
        raw = layer.get("rate_limit")
        if isinstance(raw, dict) and "target_concurrency" in raw:
            if raw.get("adaptive") is not False:
                problem = ctx.document.problem(
                    (*where, "rate_limit", "target_concurrency"), "has no effect without adaptive: true", key=True
                )
                if problem not in ctx.problems:  # an inherited one, once for all the targets
                    ctx.problems.append(problem)
            return


def _tls(raw: dict[str, Any]) -> TLS:
    fingerprint = raw["fingerprint"].replace(":", "").lower() if raw.get("fingerprint") else None
    return TLS(fingerprint=fingerprint, **given(raw, ("verify", *_TLS_FILES)))


def auth(ctx: Context, raw: dict[str, Any] | None, path: SpecPath) -> Auth | None:
    """The target's credentials (their mistakes are ``_check_auth``'s)."""
    if not raw:
        return None
    own = given(raw, ("username", "password", "token", "name", "value"))
    if "in" in raw:
        own["location"] = raw["in"]  # "in" is a keyword in Python, not in the spec
    if raw["type"] in FETCHED_TOKEN_TYPES:
        own = tokens.token_auth(ctx, raw, path + ("auth",))
    return Auth(type=raw["type"], **own)


def _check_auth(ctx: Context, layers: Layers, raw: dict[str, Any] | None) -> None:
    """The merged ``auth`` block's mistakes, each reported where it is written.

    That is the first level from which on the mistake holds (the level's
    block with what it inherits): a run-wide ``auth`` without its token is
    one problem under ``http`` (every target's report of it is kept once),
    while a target switching to a type whose keys nothing gives, or removing
    one with null, gets it under its own name.
    """
    if not raw:
        return
    for mistake in _auth_mistakes(raw):
        level = len(layers) - 1
        while level > 0 and mistake in _auth_mistakes(_merged(layers[:level]).get("auth")):
            level -= 1
        where, message = mistake
        ctx.problem(layers[level][0] + ("auth", *where), message)


def _auth_mistakes(raw: dict[str, Any] | None) -> list[tuple[SpecPath, str]]:
    """(path within the block, message) for each mistake of an auth block; ``settings.AUTH_NEEDS`` the keys."""
    mistakes: list[tuple[SpecPath, str]] = []
    if not raw:
        return mistakes
    missing = [k for k in AUTH_NEEDS[raw["type"]] if k not in raw]
    if missing:
        mistakes.append(((), f"{raw['type']} auth needs {' and '.join(map(repr, missing))}"))
    if raw["type"] not in FETCHED_TOKEN_TYPES and isinstance(raw.get("token"), AnswerField):
        # Worded without the type: the mistake stays one while later levels change the type.
        mistakes.append(
            (("token",), "a selector of the token is for type token only; other types take the token itself")
        )
    return mistakes


def gateway(raw: dict[str, Any] | None) -> Gateway | None:
    if not raw:
        return None
    options = {k: scalar_text(raw[k]) for k in _GATEWAY_OPTIONS if k in raw}
    options.update({k: scalar_text(v) for k, v in (raw.get("options") or {}).items()})
    return Gateway(
        endpoint=raw["endpoint"],
        api_key=raw["api_key"],
        options=options,
        **given(raw, ("key_param", "url_param")),
    )
