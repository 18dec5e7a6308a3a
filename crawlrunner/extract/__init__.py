"""Fetched documents → records, by the target's compiled extraction rules."""

from __future__ import annotations

import logging
from typing import Any

from ..errors import ExtractError
from ..results import FetchResult, Outcome
from ..spec.model import Extraction
from . import html, json
from .fields import CoercionError, coerce

log = logging.getLogger(__name__)

__all__ = ["extract"]


def extract(extraction: Extraction, fetch: FetchResult) -> Outcome:
    """Records from one successful fetch.

    A document that cannot be parsed marks the fetch as failed (kind
    ``extract_error``); a field that cannot be coerced becomes null and is
    counted; a record missing a required field is dropped and counted.
    """
    outcome = Outcome(fetch)
    module: Any = json if extraction.format == "json" else html
    try:
        document = module.parse(fetch.body, fetch.charset)
        items = module.select_records(document, extraction.records)
    except ExtractError as exc:
        fetch.error_kind, fetch.error = exc.kind, str(exc)
        return outcome
    for item in items:
        record: dict[str, Any] = {}
        missing_required = False
        for field in extraction.fields:
            value = module.select_value(item, field.selector)
            if value is None or value == "":
                value = field.default
            try:
                value = coerce(value, field.type)
            except CoercionError as exc:
                outcome.field_errors += 1
                log.debug("%s: field %s: %s", fetch.target, field.name, exc)
                value = None
            if value is None and field.required:
                missing_required = True
            record[field.name] = value
        if missing_required:
            outcome.dropped += 1
        else:
            outcome.records.append(record)
    return outcome
