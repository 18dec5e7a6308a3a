"""Field sources: where a field's value comes from, registered by the key a spec uses.

Each source is a small function of the field, the page, the record node and
the request; it returns the field's value before type conversion, None when
nothing was found. ``Field.source`` names the source (one of
``spec.model.FIELD_SOURCES``); ``extract._raw_value`` looks it up here, after
its short path for the usual case (a selector's first match as it is).

Adding a source: a function here registered under its key, the key in
``FIELD_SOURCES`` (with what ``spec.extraction`` checks of it) and in the
schema's ``field`` (a test holds them together).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..document import Page
from ..plan import RequestPlan
from ..spec.model import Field
from ..spec.registry import Registry

FieldSource = Callable[[Field, Page, Any, RequestPlan], Any]

SOURCES: Registry[FieldSource] = Registry("field source")


@SOURCES.register("jmespath", "css", "xpath", "header")
def selected(field: Field, page: Page, node: Any, plan: RequestPlan) -> Any:
    """A selector's first match, or every match with ``many`` or ``join``."""
    assert field.selector is not None
    if field.many or field.join is not None:
        return refined(field, page.all(field.selector, node))
    return refined(field, [page.first(field.selector, node)])


@SOURCES.register("regex")
def searched(field: Field, page: Page, node: Any, plan: RequestPlan) -> Any:
    """A regex alone searches the document's text, or the record's markup or JSON."""
    return refined(field, [page.text(node)])


@SOURCES.register("const")
def constant(field: Field, page: Page, node: Any, plan: RequestPlan) -> Any:
    # As written: a constant is not searched, split or joined.
    return field.const


@SOURCES.register("meta")
def meta(field: Field, page: Page, node: Any, plan: RequestPlan) -> Any:
    """Response metadata: the URLs, status, content type, fetch time or depth."""
    fetch = page.fetch
    values: Mapping[str, Any] = {
        "url": fetch.url,
        "final_url": fetch.final_url,
        "status": fetch.status,
        "content_type": fetch.content_type,
        "fetched_at": fetch.fetched_at,
        "depth": plan.depth,
    }
    return refined(field, [values[field.meta or "url"]])


@SOURCES.register("parent")
def parent(field: Field, page: Page, node: Any, plan: RequestPlan) -> Any:
    """A field of the parent record a child target's request was made from."""
    assert field.parent is not None
    return refined(field, [(plan.parent or {}).get(field.parent)])


def refined(field: Field, values: list[Any]) -> Any:
    """The found values through the field's regex, then ``many`` (a list), ``join`` or the first."""
    if field.regex is not None:
        values = [search(field, v) for v in values]
    values = [v for v in values if v is not None and v != ""]
    if field.many:
        return values or None
    if field.join is not None:
        return field.join.join(str(v) for v in values) or None
    return values[0] if values else None


def search(field: Field, value: Any) -> Any:
    """The field's regex group in ``value``, or None without a match."""
    assert field.regex is not None
    match = field.regex.search(value if isinstance(value, str) else str(value))
    return match.group(field.group) if match else None
