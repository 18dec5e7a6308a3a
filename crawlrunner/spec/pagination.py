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

from ..templates import Template
from .env import Context
from .extraction import selector
from .loader import SpecPath
from .model import Format, PageLocation, Paginate, PaginationType, RequestTemplate

# Keys every style takes.
_COMMON = frozenset({"type", "stop_on_empty", "max_pages"})
_SELECTORS = ("next", "cursor", "has_more", "total", "total_pages")
_VALUES = ("param", "start", "limit", "limit_param", "stop_on_empty", "max_pages")
# ``send_cursor_as``, the older spelling of ``in`` for cursors, in ``in``'s words.
_SEND_CURSOR_AS: dict[str, PageLocation] = {"param": "query", "header": "header"}


@dataclass(frozen=True, slots=True)
class Style:
    """The keys of one pagination style, besides ``type``, ``stop_on_empty`` and ``max_pages``."""

    keys: frozenset[str]
    needs: str | None = None  # the key the style cannot work without
    defaults: dict[str, Any] = field(default_factory=dict)  # where it differs from Paginate's


STYLES: dict[PaginationType, Style] = {
    "next_url": Style(frozenset({"next", "has_more"}), needs="next"),
    "link_header": Style(frozenset({"has_more"})),
    "page_number": Style(
        frozenset({"param", "in", "start", "limit", "limit_param", "has_more", "total", "total_pages"})
    ),
    "offset": Style(
        frozenset({"param", "in", "start", "limit", "limit_param", "has_more", "total"}),
        needs="limit",
        defaults={"param": "offset", "start": 0, "limit_param": "limit"},
    ),
    "cursor": Style(
        frozenset({"param", "in", "cursor", "send_cursor_as", "has_more"}), needs="cursor", defaults={"param": "cursor"}
    ),
}


def paginate(
    ctx: Context, raw: dict[str, Any], path: SpecPath, fmt: Format, request: RequestTemplate
) -> Paginate | None:
    """The target's ``paginate`` (None after a problem); ``request`` is where ``in: body`` puts the page."""
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
    if ("in" in raw or "send_cursor_as" in raw) and "in" in style.keys:
        values["location"] = _location(ctx, raw, path)
    built = Paginate(type=kind, **selectors, **values)
    if built.location == "body":
        _check_body(ctx, built, request, path)
    return built


def _location(ctx: Context, raw: dict[str, Any], path: SpecPath) -> PageLocation:
    """Where the page goes: ``in``, or the older ``send_cursor_as`` (never both)."""
    if "send_cursor_as" in raw and "in" in raw:
        ctx.problem(
            path + ("send_cursor_as",), "give either 'in' or 'send_cursor_as' (its older name), not both", key=True
        )
    if "in" not in raw:
        return _SEND_CURSOR_AS[raw["send_cursor_as"]]
    location: PageLocation = raw["in"]
    if location == "header" and raw["type"] != "cursor":
        ctx.problem(path + ("in",), "in: header is for a cursor; a page number or offset goes in the query or the body")
    return location


def _check_body(ctx: Context, paginate: Paginate, request: RequestTemplate, path: SpecPath) -> None:
    """``in: body`` needs a JSON or form body, with room for the page at ``param`` (and ``limit_param``).

    Room means: objects on the way (JSON), the page and its size at places of
    their own, and nothing the user wrote already there, since the page would
    replace it. A null there only marks the place (GraphQL's ``after: null``).
    """
    if request.body is not None:
        ctx.problem(path + ("in",), "in: body puts the page into a json: or form: body; a raw body: cannot be edited")
        return
    if request.form is None and not request.has_json_body:
        ctx.problem(path + ("in",), "in: body needs a request body to put the page in: give the target json: or form:")
        return
    sizes = paginate.limit is not None and paginate.limit_param is not None
    keys = ("param", "limit_param") if sizes else ("param",)
    if sizes and (overlap := _overlap(paginate.param, paginate.limit_param or "", json=request.form is None)):
        ctx.problem(path + ("limit_param",), overlap)
        keys = ("param",)
    for key in keys:
        if problem := _room_problem(request, paginate, key):
            ctx.problem(path + (key,), problem)


def _overlap(param: str, limit_param: str, *, json: bool) -> str | None:
    """Why the page and its size would overwrite each other; None when they have places of their own."""
    shorter, longer = sorted((param.split("."), limit_param.split(".")), key=len) if json else ([param], [limit_param])
    if longer[: len(shorter)] != shorter:
        return None
    where = "the JSON body: use two paths side by side, as page.number and page.size" if json else "the form"
    return f"{limit_param!r} and param {param!r} would overwrite each other in {where}"


def _room_problem(request: RequestTemplate, paginate: Paginate, key: str) -> str | None:
    """Why the body has no room for ``paginate``'s ``key`` (param or limit_param); None when it has."""
    dotted: str = getattr(paginate, key)
    what = "page" if key == "param" else "page size"
    if request.form is not None:
        written: Any = request.form.get(dotted)
        body = "form: body"
    elif problem := _json_path_problem(request.json_body, dotted):
        return problem
    else:
        written = _json_value(request.json_body, dotted)
        body = "json: body"
    if written is None or (key == "param" and paginate.type == "cursor" and _is_placeholder(written)):
        return None  # a placeholder is the first page's cursor: a cursor chain sends its first body as written
    if paginate.type in ("page_number", "offset") and (number := _literal_number(written)) is not None:
        # The first page written out, as people do: fine when the chain sends the same.
        setting = "start" if key == "param" else "limit"
        sent = paginate.start if key == "param" else paginate.limit
        if number == sent:
            return None
        return (
            f"the {body} has {number:g} at {dotted!r}, but the chain sends {sent} there on its first page: "
            f"set paginate.{setting}: {number:g} instead (or leave it out of the body)"
        )
    kind = f"the template {written.source!r}" if isinstance(written, Template) and written.names else json_kind(written)
    fix = "leave the field out" if request.form is not None else "write null there"
    return (
        f"cannot put the {what} at {dotted!r}: the {body} already has {kind} there, "
        f"which the {what} would replace (choose another {key}, or {fix})"
    )


def _json_value(tree: Any, dotted: str) -> Any:
    """The value the JSON body template ``tree`` has at ``dotted`` (None: none, or not known before it is filled)."""
    node = tree
    for name in dotted.split("."):
        if not isinstance(node, dict):
            return None  # only known once a template is filled in
        node = node.get(name)
    return node


def _literal_number(value: Any) -> float | None:
    """``value`` as a number when it is one written in the body (a JSON number, or a form field's digits)."""
    if isinstance(value, Template):
        value = value.parts[0] if value.is_static else None
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _is_placeholder(value: Any) -> bool:
    return isinstance(value, Template) and value.is_single_placeholder


def _json_path_problem(tree: Any, dotted: str) -> str | None:
    """Why the JSON body template ``tree`` has no room for a value at ``dotted``; None when it has."""
    names = dotted.split(".")
    if "" in names:
        return f"{dotted!r} is not a path into the JSON body: names separated by single dots, as in variables.after"
    node = tree
    for depth, name in enumerate(names):
        if node is None or (isinstance(node, Template) and node.is_single_placeholder):
            return None  # created on the way, or only known once the template is filled in
        if not isinstance(node, dict):
            where = repr(".".join(names[:depth])) if depth else "the JSON body"
            return f"cannot put the page at {dotted!r}: {where} is {json_kind(node)} in the json: body, not an object"
        node = node.get(name)
    return None


def json_kind(node: Any) -> str:
    """What a JSON value (or a body template's string) is, with its article: "an array"."""
    if isinstance(node, list):
        return "an array"
    if isinstance(node, bool):
        return "a boolean"
    if isinstance(node, int | float):
        return "a number"
    return "a string"
