"""``seeds: {sitemap: ...}``: sitemap URLs, robots.txt discovery, ``since`` and the limits, checked.

``seeds`` is either a seed file (a path, or ``{file, format}``) or sitemaps;
``is_sitemap`` tells which one the spec wrote, and a mapping that mixes the
two is reported key by key. Sitemap URLs are resolved against
``http.base_url`` here, so that the plan only ever sees absolute URLs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any, Literal
from urllib.parse import urlsplit

from ..settings import HttpSettings
from .env import Context
from .loader import SpecPath
from .model import RequestTemplate, Sitemaps
from .urls import absolute_url

# The keys only sitemaps have, and the one only a seed file has.
SITEMAP_KEYS = ("sitemap", "robots", "since", "max_urls", "max_depth", "max_bytes")
LAST_RUN: Literal["last_run"] = "last_run"


def is_sitemap(raw: Any) -> bool:
    """Whether ``seeds`` as written asks for sitemaps rather than a seed file."""
    return isinstance(raw, dict) and "file" not in raw


def seed_file_problems(ctx: Context, raw: Any, path: SpecPath) -> None:
    """Sitemap keys next to ``file``: one problem per key, where it is written."""
    if not isinstance(raw, dict):
        return
    for key in SITEMAP_KEYS:
        if key == "sitemap" and key in raw:
            ctx.problem(path + (key,), "give either 'file' (a seed file) or 'sitemap', not both", key=True)
        elif key in raw:
            ctx.problem(path + (key,), f"{key!r} applies to sitemaps (seeds: {{sitemap: ...}}), not to a seed file")


def sitemaps(
    ctx: Context, raw: dict[str, Any], path: SpecPath, http: HttpSettings, request: RequestTemplate
) -> Sitemaps | None:
    """The target's sitemaps, or None (with the problems reported) when they cannot be used."""
    if "format" in raw:
        ctx.problem(path + ("format",), "'format' applies to a seed file, not to sitemaps", key=True)
    written = raw.get("sitemap")
    listed = [written] if isinstance(written, str) else list(written or [])
    where = [path + ("sitemap",)] if isinstance(written, str) else [path + ("sitemap", i) for i in range(len(listed))]
    urls = [url for text, at in zip(listed, where, strict=True) if (url := _sitemap_url(ctx, text, at, http))]
    robots = bool(raw.get("robots", False))
    if not listed and not robots:
        ctx.problem(path, "missing 'file' or 'sitemap': give a seed file, or the sitemaps to read (or robots: true)")
        return None
    origins: tuple[str, ...] = ()
    if robots:
        origins = _robots_origins(urls, http, request)
        if not origins and not listed:
            ctx.problem(
                path + ("robots",),
                "robots: true needs to know which site's robots.txt to read: "
                "give 'sitemap' URLs, http.base_url, or an absolute url",
            )
    since = _since(ctx, raw["since"], path + ("since",)) if "since" in raw else None
    if len(urls) < len(listed) or ("since" in raw and since is None):
        return None
    return Sitemaps(
        urls=tuple(dict.fromkeys(urls)),
        robots=robots,
        robots_origins=origins,
        since=since,
        **{key: raw[key] for key in ("max_urls", "max_depth", "max_bytes") if key in raw},
    )


def _sitemap_url(ctx: Context, written: str, path: SpecPath, http: HttpSettings) -> str | None:
    """One sitemap URL, absolute; None (reported) when it cannot be fetched."""
    text: str = ctx.resolve(written, path, url=True)
    if path in ctx.unresolved:
        return None
    return absolute_url(ctx, text, path, http.base_url)


def _robots_origins(urls: list[str], http: HttpSettings, request: RequestTemplate) -> tuple[str, ...]:
    """Where robots.txt is read: the sitemaps' origins; else http.base_url's, or the target's url's."""
    candidates = list(urls)
    if not candidates:
        written = http.base_url or _written_url(request)
        candidates += [written] if written else []
    origins = []
    for url in candidates:
        parts = urlsplit(url)
        if parts.scheme.lower() in ("http", "https") and parts.netloc:
            origins.append(f"{parts.scheme.lower()}://{parts.netloc}")
    return tuple(dict.fromkeys(origins))


def _written_url(request: RequestTemplate) -> str | None:
    """The target's first URL, if its scheme and host are written out (no placeholder in them)."""
    if not request.urls:
        return None
    parts = request.urls[0].parts
    literal = parts[0]
    if len(parts) > 1 and not any(c in literal.split("//", 1)[-1] for c in "/?#"):
        return None  # the host goes on in a placeholder
    return literal


def _since(ctx: Context, value: Any, path: SpecPath) -> datetime | Literal["last_run"] | None:
    """``since`` as written: last_run, a date or a date-time (YAML's own, or quoted text); UTC when no zone."""
    if value == LAST_RUN:
        return LAST_RUN
    parsed: datetime | None = None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time())
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            parsed = None
    if parsed is None:
        shown = repr(value) if isinstance(value, str) else type(value).__name__
        ctx.problem(path, f"expected last_run, a date (2024-05-01) or a date-time (2024-05-01T12:00:00Z); got {shown}")
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
