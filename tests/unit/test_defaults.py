"""Every default is defined once, in the dataclasses; the schema and docs/spec.md state the same values.

The builder passes a dataclass only the keys a spec writes, so the code has
one value per default. This test reads each from the dataclass and checks
the two texts a person reads: the schema's descriptions ("Default 16.") and
the spec reference. A new "Default X" in the schema must be added here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import fields
from typing import Any

import pytest

from crawlrunner import __version__
from crawlrunner.incremental import Incremental
from crawlrunner.settings import (
    GATEWAY_TIMEOUT,
    TLS,
    UNLIMITED_POOL_WORKERS,
    Auth,
    FetchSettings,
    Gateway,
    HttpSettings,
    Limits,
    RateLimit,
    RetryPolicy,
    Timeouts,
    TokenRequest,
)
from crawlrunner.spec import spec_schema
from crawlrunner.spec.model import (
    DEFAULT_FORMAT,
    DEFAULT_LINKS,
    Extraction,
    Field,
    Follow,
    IntRange,
    Paginate,
    RequestTemplate,
    Sitemaps,
    Target,
)
from crawlrunner.spec.pagination import STYLES

from ..conftest import REPO


def default(cls: type, name: str) -> Any:
    """A dataclass field's default (slotted dataclasses hide it from the class)."""
    found = next(f for f in fields(cls) if f.name == name)
    return found.default_factory() if callable(found.default_factory) else found.default


def text(value: Any) -> str:
    """A value as the schema and the docs write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, frozenset):
        return str(sorted(value))
    if value is None:
        return "off"
    return str(value)


_USER_AGENT = default(HttpSettings, "user_agent").replace(__version__, "<version>")

# Every "Default X" in the schema's descriptions: where → the code's value.
SCHEMA = {
    "http.limits.connections": default(Limits, "connections"),
    "http.limits.per_host": default(Limits, "per_host"),
    "http.limits.keepalive": default(Limits, "keepalive"),
    "http.limits.dns_cache": default(Limits, "dns_cache"),
    "http.trust_env": default(HttpSettings, "trust_env"),
    "http.download_dir": default(HttpSettings, "download_dir"),
    "http.block_private_addresses": default(HttpSettings, "block_private_addresses"),
    **{
        f"{where}.{key}": default(FetchSettings, key)
        for where in ("http", "target", "defaults")
        for key in ("max_body_bytes", "max_redirects")
    },
    **{f"{where}.method": default(RequestTemplate, "method") for where in ("target", "defaults")},
    **{
        f"{where}.{key}": default(Target, key)
        for where in ("target", "defaults")
        for key in ("conditional", "store_bodies")
    },
    "target.incremental.lag": default(Incremental, "lag"),
    "field.many": default(Field, "many"),
    "field.required": default(Field, "required"),
    "extract.format": DEFAULT_FORMAT,
    "paginate.stop_on_empty": default(Paginate, "stop_on_empty"),
    "paginate.max_pages": default(Paginate, "max_pages"),
    "paginate.in": default(Paginate, "location"),
    "seeds.robots": default(Sitemaps, "robots"),
    "seeds.max_urls": default(Sitemaps, "max_urls"),
    "seeds.max_depth": default(Sitemaps, "max_depth"),
    "seeds.max_bytes": default(Sitemaps, "max_bytes"),
    "follow.max_depth": default(Follow, "max_depth"),
    "follow.max_pages": default(Follow, "max_pages"),
    "follow.robots": default(Follow, "robots"),
    "retry.attempts": default(RetryPolicy, "attempts"),
    "retry.backoff": default(RetryPolicy, "backoff"),
    "retry.max_backoff": default(RetryPolicy, "max_backoff"),
    "retry.max_retry_after": default(RetryPolicy, "max_retry_after"),
    "retry.statuses": default(RetryPolicy, "statuses"),
    "rate_limit.cooldown": default(RateLimit, "cooldown"),
    "rate_limit.adaptive": default(RateLimit, "adaptive"),
    "rate_limit.target_concurrency": default(RateLimit, "target_concurrency"),
    "rate_limit.max_delay": default(RateLimit, "max_delay"),
    "auth.in": default(Auth, "location"),
    "auth.client_auth": default(Auth, "client_auth"),
    "auth.header": default(Auth, "header"),
    "auth.request.method": default(TokenRequest, "method"),
    "tls.verify": default(TLS, "verify"),
    "gateway.key_param": default(Gateway, "key_param"),
    "gateway.url_param": default(Gateway, "url_param"),
}

_DEFAULT = re.compile(r"Default:? (\[[^\]]*\]|[^\s;,]+?)(?=[.;,]?(?:\s|$))")


def _described(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """(where, description) for every property under ``node``."""
    if not isinstance(node, dict):
        return
    for key, child in node.get("properties", {}).items():
        where = f"{path}.{key}" if path else key
        if isinstance(child, dict) and "description" in child:
            yield where, child["description"]
        yield from _described(child, where)
    for alternative in node.get("anyOf", []) + node.get("oneOf", []):
        yield from _described(alternative, path)


def _schema_defaults() -> dict[str, str]:
    found: dict[str, str] = {}
    for name, definition in spec_schema()["$defs"].items():
        for where, description in _described(definition, name):
            match = _DEFAULT.search(description)
            if match and not description[match.start() :].startswith("Default:"):
                found[where] = match.group(1)
    return found


def test_every_default_in_the_schema_is_the_codes() -> None:
    found = _schema_defaults()
    assert sorted(found) == sorted(SCHEMA), "a new 'Default X' in the schema: add it to SCHEMA"
    assert found == {k: text(v) for k, v in SCHEMA.items()}


def test_the_schemas_other_defaults_are_the_codes() -> None:
    defs = spec_schema()["$defs"]
    assert f"Default: {_USER_AGENT}." in defs["http"]["properties"]["user_agent"]["description"]
    assert f"Default total timeout {text(GATEWAY_TIMEOUT)} s" in defs["gateway"]["description"]
    assert default(FetchSettings, "max_download_bytes") is None
    for where in ("http", "target", "defaults"):
        assert "Default: no limit." in defs[where]["properties"]["max_download_bytes"]["description"]
    paginate = defs["paginate"]["properties"]
    offset, cursor = STYLES["offset"].defaults, STYLES["cursor"].defaults
    assert paginate["param"]["description"] == (
        f"Query parameter carrying the page number (default {default(Paginate, 'param')}), "
        f"offset (default {offset['param']}) or cursor (default {cursor['param']}); with in: header, the header; "
        "with in: body, a dotted path into the json: body (variables.after) or a form: field."
    )
    assert paginate["start"]["description"] == (
        f"First page number (default {default(Paginate, 'start')}) or offset (default {offset['start']})."
    )
    assert f"(offset default {offset['limit_param']})" in paginate["limit_param"]["description"]
    assert default(Paginate, "location") == "query"  # as send_cursor_as: param, its older spelling
    assert "query parameter (default)" in paginate["send_cursor_as"]["description"]
    assert f"{default(Target, 'mode')} (default)" in defs["target"]["properties"]["mode"]["description"]
    auth = next(s for s in defs["auth"]["anyOf"] if s.get("type") == "object")["properties"]
    assert f'Default: "{default(Auth, "prefix")}" (with its space)' in auth["prefix"]["description"]


def _doc() -> str:
    # Whitespace collapsed: a default may sit at a line break.
    return " ".join((REPO / "docs" / "spec.md").read_text(encoding="utf-8").split())


def _row(key: str, value: Any) -> str:
    return f"| `{key}` | {value} |"


# What docs/spec.md must say, built from the code's values.
DOCS = [
    _row("user_agent", f"`{_USER_AGENT}`"),
    _row("trust_env", text(default(HttpSettings, "trust_env"))),
    _row("download_dir", f"`{default(HttpSettings, 'download_dir')}`"),
    _row("block_private_addresses", text(default(HttpSettings, "block_private_addresses"))),
    *(f"`{name}` ({text(default(Timeouts, name))}:" for name in ("total", "connect", "sock_connect", "sock_read")),
    *(f"`{name}` ({text(default(Limits, name))}:" for name in ("connections", "per_host", "keepalive", "dns_cache")),
    f"with {UNLIMITED_POOL_WORKERS} requests at once",
    _row("retry", f"{default(RetryPolicy, 'attempts')} attempts"),
    _row("max_body_bytes", f"`{default(FetchSettings, 'max_body_bytes')}`"),
    _row("max_redirects", text(default(FetchSettings, "max_redirects"))),
    _row("download", text(default(FetchSettings, "download"))),
    f"`attempts` ({default(RetryPolicy, 'attempts')}, the first included)",
    f"`backoff` ({text(default(RetryPolicy, 'backoff'))} s before",
    f"`max_backoff` ({text(default(RetryPolicy, 'max_backoff'))})",
    f"`max_retry_after` ({text(default(RetryPolicy, 'max_retry_after'))}:",
    f"`statuses` (`{text(default(RetryPolicy, 'statuses'))}`)",
    f"`cooldown` ({text(default(RateLimit, 'cooldown'))}:",
    f"`adaptive` ({text(default(RateLimit, 'adaptive'))}:",
    f"`target_concurrency` ({text(default(RateLimit, 'target_concurrency'))})",
    f"`max_delay` ({text(default(RateLimit, 'max_delay'))})",
    f"`in` (`{default(Auth, 'location')}`, the default,",
    f"`client_auth` (`{default(Auth, 'client_auth')}`, the default:",
    f"`method` (default `{default(TokenRequest, 'method')}`;",
    f"`header` (default `{default(Auth, 'header')}`)",
    f'`prefix` (default `"{default(Auth, "prefix")}"`',
    f"`verify` ({text(default(TLS, 'verify'))};",
    _row("key_param", f"`{default(Gateway, 'key_param')}`"),
    _row("url_param", f"`{default(Gateway, 'url_param')}`"),
    f"the default total timeout is {text(GATEWAY_TIMEOUT)} s",
    f"`step` ({default(IntRange, 'step')})",
    f"`{default(RequestTemplate, 'method')}` (default)",
    f"`{default(Target, 'mode')}` (default:",
    f"(default {text(default(Target, 'conditional'))})",
    f"(default {text(default(Target, 'store_bodies'))})",
    f"| `lag` | default {text(default(Incremental, 'lag'))}:",
    f"`param` (`{default(Paginate, 'param')}`), `start` ({default(Paginate, 'start')})",
    f"`param` (`{STYLES['offset'].defaults['param']}`), `start` ({STYLES['offset'].defaults['start']})",
    f"`limit_param` (`{STYLES['offset'].defaults['limit_param']}`)",
    f"`param` (`{STYLES['cursor'].defaults['param']}`)",
    _row(default(Paginate, "location"), "a query parameter named `param` (the default)"),
    f"(`stop_on_empty`, default {text(default(Paginate, 'stop_on_empty'))})",
    f"`max_pages` (default {default(Paginate, 'max_pages')}, with a warning)",
    _row("links", f"`{DEFAULT_LINKS}`"),
    _row("max_depth", default(Follow, "max_depth")),
    _row("max_pages", default(Follow, "max_pages")),
    _row("robots", text(default(Follow, "robots"))),
    _row("format", f"`{DEFAULT_FORMAT}`"),
    _row("many", text(default(Field, "many"))),
    _row("required", text(default(Field, "required"))),
]


@pytest.mark.parametrize("statement", DOCS)
def test_the_spec_reference_states_the_codes_default(statement: str) -> None:
    assert statement in _doc()


def test_extract_format_defaults_to_json() -> None:
    from crawlrunner.spec import load_spec_text

    spec = load_spec_text("name: d\ntargets:\n  - {name: t, url: 'http://x.test/', extract: {fields: {a: a}}}\n")
    extract = spec.targets[0].extract
    assert isinstance(extract, Extraction) and extract.format == DEFAULT_FORMAT == "json"
