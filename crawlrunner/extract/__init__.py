"""A fetched response → records, and the requests it leads to.

``process`` is the extract stage of the pipeline: it parses the body once,
extracts the target's records, and derives new requests (the next page,
followed links, child-target requests) that go back to the engine's
frontier. It does no I/O.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from typing import Any

from ..coercion import coerce
from ..document import Page
from ..errors import CoercionError, ExtractError
from ..follow import links
from ..incremental import Cursors
from ..paginate import failed_page, next_page
from ..plan import SITEMAP, RequestPlan, child_requests
from ..results import ChainEnd, FetchResult, LedTo, Outcome
from ..sitemaps import read_document
from ..spec.model import Extraction, Field, Format, KeyPaths, Target
from .graphql import graphql_warning
from .recrawl import remembered, replay
from .sources import SOURCES

log = logging.getLogger(__name__)

__all__ = ["Page", "derived_requests", "extract_records", "field_value", "page_format", "process", "schema_error"]


def page_format(target: Target) -> Format:
    if target.extract is not None:
        return target.extract.format
    return "html" if target.follow is not None else "json"


def _needs_page(target: Target, children: tuple[Target, ...]) -> bool:
    return target.extract is not None or target.paginate is not None or target.follow is not None or bool(children)


def process(
    plan: RequestPlan,
    fetch: FetchResult,
    *,
    children: tuple[Target, ...] = (),
    derive: bool = True,
    unchanged: LedTo | None = None,
    cursors: Cursors | None = None,
    since: datetime | None = None,
) -> Outcome:
    """Records and derived requests from one response.

    Derived requests, in this order: the next page (pagination; or
    ``outcome.chain_end``, where and why the chain ended), the links
    to follow, and a request of each child target per record. They are
    candidates: the frontier decides which the run makes (a link seen
    before is not). ``derive=False`` extracts records only (re-extraction).
    ``cursors``: where incremental children start (None: at their ``initial``).
    A body that cannot be parsed marks the fetch failed (``extract_error``)
    and yields nothing; the run goes on. A conditional target's whole page
    also notes what it led to (``outcome.led_to``); a 304 of it derives that
    again from ``unchanged``, what the page led to last time (``recrawl``).
    A sitemap document (role SITEMAP) has no records: it leads to the
    sitemaps and pages it lists, those last modified before ``since`` left
    out (``sitemaps.read_document``).
    """
    if plan.role == SITEMAP:
        return read_document(plan, fetch, since=since) if derive else Outcome(fetch, plan)
    outcome = Outcome(fetch, plan)
    target = plan.target
    if not fetch.ok:
        if derive:
            outcome.chain_end = failed_page(plan)
        return outcome
    if fetch.status == 304:
        if derive and unchanged is not None:
            replay(plan, unchanged, outcome, children, cursors)
        return outcome
    if plan.method == "HEAD" or fetch.body_path:
        return outcome
    if not _needs_page(target, children):
        return outcome
    try:
        page = Page(fetch, page_format(target))
        if page.warning is not None:
            # Recorded in the fetch log's error column and counted in the
            # summary; error_kind stays null, since the request did not fail.
            fetch.error = page.warning
        # Only a request with a JSON body can be GraphQL: most pages skip the call.
        if plan.json_body is not None and (partial := graphql_warning(plan, page)) is not None:
            fetch.error = partial  # a warning, like the one above
        if target.extract is not None:
            extract_records(target.extract, page, plan, outcome)
        else:
            outcome.items = 1  # a page without extraction rules is not an empty page
    except ExtractError as exc:
        fetch.error_kind, fetch.error = exc.kind, str(exc)
        if derive:
            outcome.chain_end = failed_page(plan)
        return outcome
    if derive:
        outcome.derived = derived_requests(plan, page, outcome, children, cursors)
        if target.conditional:
            outcome.led_to = remembered(plan, page, outcome, children)
    return outcome


def derived_requests(
    plan: RequestPlan, page: Page, outcome: Outcome, children: tuple[Target, ...], cursors: Cursors | None = None
) -> list[RequestPlan]:
    """What one page leads to: its next page, its links, its records' child requests."""
    derived: list[RequestPlan] = []
    if plan.target.paginate is not None:
        # Items found, not records kept: a page whose records were all dropped
        # is not the end of the chain.
        follow_up = next_page(plan, page, outcome.items)
        if isinstance(follow_up, ChainEnd):
            outcome.chain_end = follow_up
        elif follow_up is not None:
            derived.append(follow_up)
    if plan.target.follow is not None:
        derived.extend(links(plan, page))
    for child in children:
        for record in outcome.records:
            derived.extend(child_requests(child, record, page.url, cursors))
    return derived


def extract_records(extraction: Extraction, page: Page, plan: RequestPlan, outcome: Outcome) -> None:
    """Fill ``outcome.records``; count dropped records and unconvertible values."""
    validator = extraction.record_validator
    nodes = page.records(extraction.records)
    outcome.items, outcome.extracted = len(nodes), True
    key_paths = extraction.key_paths
    plain = extraction.plain_keys
    for node in nodes:
        if plain is not None:
            record: dict[str, Any] | None = _plain_record(plain, node)
        elif key_paths is not None:
            record = _key_path_record(key_paths, node, plan, outcome)
        else:
            record = _record(extraction, page, node, plan, outcome)
        if record is not None and (validator is None or _fits(validator, record, plan, outcome)):
            outcome.records.append(record)


def _record(
    extraction: Extraction, page: Page, node: Any, plan: RequestPlan, outcome: Outcome
) -> dict[str, Any] | None:
    """A record by the general path, every field's source as it says; None: dropped, a required field is empty."""
    record = {}
    missing: list[str] = []
    for field in extraction.fields:
        value, _, error = field_value(field, page, node, plan)
        if error is not None:
            _field_error(field.name, error, plan, outcome)
        if value is None and field.required:
            missing.append(field.name)
        record[field.name] = value
    if missing:
        outcome.dropped += 1
        log.info("%s: record dropped, required field(s) empty: %s", plan.target.name, ", ".join(missing))
        return None
    return record


def _plain_record(fields: tuple[tuple[str, str], ...], node: Any) -> dict[str, Any]:
    """``_key_path_record`` of fields that are all one untyped key: a lookup each, nothing to convert."""
    if not isinstance(node, dict):
        return dict.fromkeys(name for name, _ in fields)
    record = {}
    for name, key in fields:
        value = node.get(key)
        # An empty string is no value. Not ``value == ""``: comparing a number with a string tries both sides.
        record[name] = None if type(value) is str and not value else value
    return record


def _key_path_record(key_paths: KeyPaths, node: Any, plan: RequestPlan, outcome: Outcome) -> dict[str, Any]:
    """A record whose fields are all plain key paths: the same values as the general path, with less work."""
    record: dict[str, Any] = {}
    is_object = isinstance(node, dict)
    for name, path, type_, date_format, decimal in key_paths:
        if len(path.keys) == 1:  # most fields: one lookup, without a call
            value = node.get(path.keys[0]) if is_object else None
        else:
            value = path.search(node)
        if type(value) is str and not value:  # as in ``_plain_record``
            value = None
        elif type_ is not None and value is not None:
            try:
                value = coerce(value, type_, date_format, decimal)
            except CoercionError as exc:
                _field_error(name, exc, plan, outcome)
                value = None
        record[name] = value
    return record


def _field_error(name: str, exc: CoercionError, plan: RequestPlan, outcome: Outcome) -> None:
    outcome.field_errors += 1
    outcome.field_error_examples.setdefault(name, str(exc))
    if outcome.unconverted is None:  # made only when needed: most pages convert every value
        outcome.unconverted = Counter()
    outcome.unconverted[name] += 1
    log.debug("%s: %s: %s", plan.target.name, name, exc)


def field_value(field: Field, page: Page, node: Any, plan: RequestPlan) -> tuple[Any, bool, CoercionError | None]:
    """One field of one record: its value, whether the page had one (else: the default), why conversion failed.

    A value that cannot be converted is None, with the error.
    """
    raw = _raw_value(field, page, node, plan)
    found = raw is not None
    if not found:
        raw = field.default
    try:
        if field.many and isinstance(raw, list):
            return [coerce(item, field.type, field.date_format, field.decimal) for item in raw], found, None
        return coerce(raw, field.type, field.date_format, field.decimal), found, None
    except CoercionError as exc:
        return None, found, exc


def schema_error(validator: Any, record: dict[str, Any]) -> str | None:
    """Why ``record`` fails the target's record schema (where, and what); None when it passes."""
    error = next(iter(validator.iter_errors(record)), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "record"
    return f"at {where}: {error.message}"


def _fits(validator: Any, record: dict[str, Any], plan: RequestPlan, outcome: Outcome) -> bool:
    """Whether the record passes the target's record schema; a record that does not is dropped and counted."""
    error = schema_error(validator, record)
    if error is None:
        return True
    outcome.dropped += 1
    log.info("%s: record dropped by its schema %s", plan.target.name, error)
    return False


def _raw_value(field: Field, page: Page, node: Any, plan: RequestPlan) -> Any:
    """The field's value before type conversion; None when nothing was found."""
    if field.direct:  # the selector's first match as it is: the usual case, taken first
        found = page.first_match(field.selector, node)  # type: ignore[arg-type]
        return None if found == "" else found
    return SOURCES[field.source](field, page, node, plan)
