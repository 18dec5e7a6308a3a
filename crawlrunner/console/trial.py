"""``crawlrunner try``'s report of one page, as text lines or one JSON object (the data: ``crawlrunner.trial``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from ..results import ChainEnd, ChainStop
from ..trial import PageFetch, PageTrial, RequestGroup, TrialRecord, TrialRequest

VALUE_WIDTH = 40  # characters of a value shown before it is cut

# What each end of a pagination chain means, in the words of results.ChainStop.
CHAIN_STOPS = {
    ChainStop.NO_NEXT: "no next link, URL or cursor on the page",
    ChainStop.EMPTY_PAGE: "the page held no records (stop_on_empty)",
    ChainStop.HAS_MORE_FALSE: "the page's has_more said no",
    ChainStop.TOTAL_REACHED: "total / total_pages reached",
    ChainStop.SHORT_PAGE: "a page shorter than its limit",
    ChainStop.MAX_PAGES: "max_pages reached",
    ChainStop.LOOP: "the next page is one the chain already fetched",
    ChainStop.FAILED: "the page's request failed",
}


def trial_json(trial: PageTrial) -> str:
    """The whole trial as one JSON object: every record, every field's provenance, ``kept`` and ``problem``."""
    data = asdict(trial)
    data["records"] = [{"values": record.values, **asdict(record)} for record in trial.records]
    data["kept"], data["problem"] = trial.kept, trial.problem
    return json.dumps(data, ensure_ascii=False, indent=2, default=str)


def trial_lines(trial: PageTrial, first: int) -> Iterator[str]:
    """The report: the fetch, the first ``first`` records field by field, empty fields, the next page, requests."""
    yield from _fetch_lines(trial.target, trial.fetch)
    if not trial.fetch.ok:
        if trial.chain_end is not None:
            yield ""
            yield _chain_end(trial.chain_end)
        return
    if trial.warning:
        yield f"  warning: {trial.warning}"
    if trial.extracts:
        yield ""
        yield from _record_lines(trial, first)
    elif trial.fetch.method == "HEAD":
        yield ""
        yield "a HEAD request has no body: nothing to extract"
    elif any(group.kind == "sitemap" for group in trial.requests):
        yield ""
        yield "a sitemap: its entries are requests, not records (to try a page: crawlrunner try SPEC TARGET URL)"
    else:
        yield ""
        yield "no extraction rules: the page yields no records"
    if trial.paginates:
        yield ""
        if trial.next_page is not None:
            yield f"next page: {_request(trial.next_page)}"
        elif trial.chain_end is not None:
            yield _chain_end(trial.chain_end)
    for group in trial.requests:
        yield ""
        yield from _group_lines(group)


def _fetch_lines(target: str, fetch: PageFetch) -> Iterator[str]:
    if fetch.saved:
        yield f"{target}: a saved page, as if from {fetch.url}"
        yield f"  {fetch.size:,} bytes, read as {fetch.content_type}; nothing was fetched"
        return
    through = f" (through {fetch.gateway})" if fetch.gateway else ""
    yield f"{target}: {fetch.method} {fetch.url}{through}"
    if fetch.skipped is not None:
        yield f"  not fetched: {fetch.skipped}"
        return
    took = f"{fetch.elapsed * 1000:.0f} ms"
    if fetch.status is None:
        facts = [f"no response after {took}"]
    else:
        facts = [f"HTTP {fetch.status}", *([fetch.content_type] if fetch.content_type else [])]
        facts.append(f"{fetch.size:,} bytes in {took}")
    if fetch.attempts > 1:
        facts.append(f"{fetch.attempts} attempts")
    yield "  " + ", ".join(facts)
    if fetch.final_url and fetch.final_url != fetch.url:
        yield f"  final URL: {fetch.final_url}"
    if fetch.error_kind is not None:
        yield f"  failed: {fetch.error_kind}: {fetch.error}"


def _record_lines(trial: PageTrial, first: int) -> Iterator[str]:
    found_by = f" found by `{trial.records_selector}`" if trial.records_selector else " (the page is the record)"
    if trial.found == 0:
        yield f"records: none: {trial.problem}"
        return
    dropped = trial.found - trial.kept
    shown = min(first, len(trial.records))
    more = f"; the first {shown} shown" if shown else "; none shown"
    more = f"{more} (-n N for more, -f json for all)" if shown < len(trial.records) else ""
    yield f"records: {trial.found}{found_by}, {trial.kept} kept{f', {dropped} dropped' if dropped else ''}{more}"
    shown_records = trial.records[:first]
    values = [[_value(f.value) for f in record.fields] for record in shown_records]
    widths = (max(len(f.name) for f in trial.records[0].fields), max((len(v) for vs in values for v in vs), default=0))
    for number, (record, texts) in enumerate(zip(shown_records, values, strict=True), 1):
        yield from _fields(number, record, texts, widths)
    if trial.empty_fields:
        empty = {f.name: f.source for f in trial.records[0].fields if f.name in trial.empty_fields}
        yield ""
        yield "fields that matched nothing on any record:"
        for name, source in empty.items():
            note = "  (a child target tried alone has no parent record)" if source.startswith("parent:") else ""
            yield f"  {name}  {source}{note}"
    if trial.field_errors:
        yield ""
        yield "values that could not be converted (stored as null):"
        for name, message in trial.field_errors.items():
            yield f"  {name}: {message}"


def _fields(number: int, record: TrialRecord, values: list[str], widths: tuple[int, int]) -> Iterator[str]:
    """A record's lines: each field's name, value and source, in columns; marks for defaults and failures."""
    yield f"  record {number}" + (f"  (dropped: {record.dropped})" if record.dropped else "")
    for field, value in zip(record.fields, values, strict=True):
        mark = "  (default)" if field.from_default else f"  (not converted: {field.error})" if field.error else ""
        yield f"    {field.name:<{widths[0]}}  {value:<{widths[1]}}  {field.source}{mark}".rstrip()


def _value(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 3] + "..."


def _chain_end(end: ChainEnd) -> str:
    pages = f"{end.pages} page{'s' if end.pages != 1 else ''}"
    return f"next page: none, the chain ends here after {pages} ({end.items} items): {end.reason} ({CHAIN_STOPS.get(end.reason, '')})"


def _group_lines(group: RequestGroup) -> Iterator[str]:
    if group.kind == "links":
        skipped = f" ({group.not_followed} more not followed: seen, off its hosts or past max_pages)"
        yield f"links to follow: {group.count}{skipped if group.not_followed else ''}"
    elif group.kind == "sitemap":
        yield f"requests it lists (sitemaps, then pages): {group.count or 'none'}"
    else:
        yield f"requests of child target {group.target}: {group.count or 'none'}"
    for request in group.first:
        yield f"  {_request(request)}"
    if group.count > len(group.first):
        yield f"  ... {group.count - len(group.first)} more"


def _request(request: TrialRequest) -> str:
    body = f", body {request.body}" if request.body is not None else ""
    return f"{request.method} {request.url}{body}" + (f"  [invalid: {request.invalid}]" if request.invalid else "")
