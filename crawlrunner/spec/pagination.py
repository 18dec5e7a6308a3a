"""``paginate``: each style's keys, checked when the spec loads, and the ``Paginate`` it builds.

The machines that follow a chain of pages are in ``crawlrunner.paginate``,
one module per style registered under the same name. This module holds the
part a spec needs before anything is fetched: which keys a style takes,
which one it cannot do without and where its defaults differ from
``Paginate``'s. It stays in the spec layer because the machines import the
plan and the page, which sit above it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .env import Context
from .extraction import selector
from .loader import SpecPath
from .model import Format, Paginate, PaginationType

# Keys every style takes.
_COMMON = frozenset({"type", "stop_on_empty", "max_pages"})
_SELECTORS = ("next", "cursor", "has_more", "total", "total_pages")
_VALUES = ("param", "start", "limit", "limit_param", "send_cursor_as", "stop_on_empty", "max_pages")


@dataclass(frozen=True, slots=True)
class Style:
    """The keys of one pagination style, besides ``type``, ``stop_on_empty`` and ``max_pages``."""

    keys: frozenset[str]
    needs: str | None = None  # the key the style cannot work without
    defaults: dict[str, Any] = field(default_factory=dict)  # where it differs from Paginate's


STYLES: dict[PaginationType, Style] = {
    "next_url": Style(frozenset({"next", "has_more"}), needs="next"),
    "link_header": Style(frozenset({"has_more"})),
    "page_number": Style(frozenset({"param", "start", "limit", "limit_param", "has_more", "total", "total_pages"})),
    "offset": Style(
        frozenset({"param", "start", "limit", "limit_param", "has_more", "total"}),
        needs="limit",
        defaults={"param": "offset", "start": 0, "limit_param": "limit"},
    ),
    "cursor": Style(
        frozenset({"param", "cursor", "send_cursor_as", "has_more"}), needs="cursor", defaults={"param": "cursor"}
    ),
}


def paginate(ctx: Context, raw: dict[str, Any], path: SpecPath, fmt: Format) -> Paginate | None:
    kind: PaginationType = raw["type"]
    style = STYLES[kind]
    if style.needs is not None and style.needs not in raw:
        ctx.problem(path, f"{kind} pagination needs {style.needs!r}")
        return None
    for key in raw:
        if key not in style.keys | _COMMON:
            ctx.problem(path + (key,), f"{key!r} does not apply to {kind} pagination", key=True)
    selectors: dict[str, Any] = {key: selector(ctx, raw[key], fmt, path + (key,)) for key in _SELECTORS if key in raw}
    values = {**style.defaults, **{key: raw[key] for key in _VALUES if key in raw}}
    return Paginate(type=kind, **selectors, **values)
