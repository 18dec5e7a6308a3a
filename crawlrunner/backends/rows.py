"""The ``requests`` table's row layout, defined once for every backend: a ``RequestPlan`` to a row and back.

Secrets are stored as references (``Redactor.tokenize``), never as values;
reading a row back fills them in from the spec and environment of the run
that reads it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import MissingSecret
from ..plan import PageChain, RequestPlan, page_key
from ..results import Outcome
from ..secrets import Redactor, mask_references
from ..spec.model import Spec

# Written by ``request_row``, in this order.
COLUMNS = (
    "id", "run_id", "target", "state", "seq", "method", "url", "headers", "body",
    "depth", "page", "chain_pages", "chain_items", "parent", "role",
)  # fmt: skip
# Read back by ``restore_plan``, in this order: ``select_columns("r")`` in a join.
_PLAN_COLUMNS = tuple(name for name in COLUMNS if name not in ("run_id", "state"))


def select_columns(alias: str = "") -> str:
    """The columns ``restore_plan`` reads, for a SELECT (``alias.`` prefixed in a join)."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + name for name in _PLAN_COLUMNS)


def request_row(
    plan: RequestPlan, run_id: int, redactor: Redactor, state: str, *, headers_text: str | None = None
) -> tuple[Any, ...]:
    """A request as the requests table keeps it (``COLUMNS``): secrets stored as references.

    ``headers_text`` is the headers already serialised and tokenized, if known.
    """
    tokenize = redactor.tokenize
    if headers_text is None:
        headers_text = headers_column(plan.headers, redactor)
    body: dict[str, Any] | None = None
    if plan.json_body is not None:
        body = {"json": plan.json_body}
    elif plan.data is not None:
        body = {"data": plan.data}
    # The chain's counters as they were when the page was derived: the shared ``plan.chain`` may be further on.
    chain_pages, chain_items = plan.chain_at or (None, None)
    return (
        plan.request_id, run_id, plan.target.name, state, plan.seq, plan.method, tokenize(plan.url),
        headers_text, tokenize(json.dumps(body)) if body is not None else None,
        plan.depth, plan.page, chain_pages, chain_items,
        tokenize(json.dumps(dict(plan.parent), default=str)) if plan.parent is not None else None, plan.role,
    )  # fmt: skip


class RequestRows:
    """``request_row`` for one run's writer, serialising each headers mapping once.

    A target's requests usually share one headers mapping (static headers
    are rendered once), so the JSON of the last one is kept: a page of
    twenty links costs one ``json.dumps`` of its headers, not twenty.
    """

    def __init__(self, run_id: int, redactor: Redactor) -> None:
        self.run_id = run_id
        self.redactor = redactor
        self._last: tuple[object, str] = (None, "")

    def row(self, plan: RequestPlan, state: str) -> tuple[Any, ...]:
        headers = plan.headers
        if headers is not self._last[0]:
            self._last = (headers, headers_column(headers, self.redactor))
        return request_row(plan, self.run_id, self.redactor, state, headers_text=self._last[1])


def headers_column(headers: Mapping[str, str], redactor: Redactor) -> str:
    return redactor.tokenize(json.dumps(dict(headers)))


def restore_plan(spec: Spec, row: tuple[Any, ...]) -> RequestPlan | None:
    """A request saved by ``request_row`` (``select_columns``), back as a plan; None if its target is gone.

    Secrets were stored as references; they are filled in from the spec and
    environment of this run. A secret that is no longer there makes the
    request invalid (recorded as failed) rather than sent without it.
    """
    request_id, target_name, seq, method, url, headers, body, depth, page, chain_pages, chain_items, parent, role = row
    target = next((t for t in spec.targets if t.name == target_name), None)
    if target is None:
        return None
    detokenize = spec.redactor.detokenize
    chain, chain_at = None, None
    if target.paginate is not None and role is None:
        chain = PageChain(pages=chain_pages or 1, items=chain_items or 0)
        chain_at = (chain.pages, chain.items) if chain_pages else None  # a first page was saved without
    try:
        payload = json.loads(detokenize(body)) if body else {}
        plan = RequestPlan(
            target,
            detokenize(url),
            method,
            json.loads(detokenize(headers)) if headers else {},
            json_body=payload.get("json"),
            data=payload.get("data"),
            depth=depth,
            page=page,
            chain=chain,
            chain_at=chain_at,
            parent=json.loads(detokenize(parent)) if parent else None,
            seq=seq,
            request_id=request_id,
            role=role,
        )
    except MissingSecret as exc:
        return RequestPlan(
            target, mask_references(url), method, invalid=str(exc), request_id=request_id, seq=seq, role=role
        )
    if chain is not None and target.paginate is not None:
        # The loop guard knows the page it goes on from: a next link back to it ends the chain, as in the first run.
        chain.seen.add(page_key(plan, target.paginate))
    return plan


# A request as ``validators.led_to`` keeps it: its row without the run's numbering.
_FIELDS = tuple(name for name in _PLAN_COLUMNS if name not in ("id", "seq"))


def request_fields(plan: RequestPlan, redactor: Redactor) -> dict[str, Any]:
    """``request_row``'s columns of ``plan`` as a JSON object (nulls left out), without its run's numbering."""
    row = request_row(plan, 0, redactor, "")
    return {name: value for name, value in zip(COLUMNS, row, strict=True) if name in _FIELDS and value is not None}


def restore_fields(spec: Spec, fields: Mapping[str, Any]) -> RequestPlan | None:
    """A request saved by ``request_fields``, back as a plan (``restore_plan``), without an id."""
    return restore_plan(spec, tuple(fields.get(name) for name in _PLAN_COLUMNS))


def fetch_row(outcome: Outcome, fetch_id: int, run_id: int, redact: Redactor) -> tuple[Any, ...]:
    """An outcome's ``fetch_log`` row, in its columns' order (``id`` … ``request_id``, ``items``, ``unfollowed``):
    secrets masked."""
    fetch, plan = outcome.fetch, outcome.plan
    return (
        fetch_id, run_id, fetch.target, fetch.method, redact(fetch.url),
        redact(fetch.final_url) if fetch.final_url else None, fetch.status, fetch.content_type,
        fetch.size, fetch.body_path, round(fetch.elapsed * 1000, 3), fetch.attempts,
        len(outcome.records), fetch.error_kind, redact(fetch.error) if fetch.error else None,
        fetch.fetched_at, *validators_of(outcome), plan.request_id if plan is not None else None,
        outcome.items if outcome.extracted else None, outcome.unfollowed,
    )  # fmt: skip


def chain_end_row(outcome: Outcome, fetch_id: int, run_id: int, url: str) -> tuple[Any, ...]:
    """The ``chain_ends`` row of an outcome whose page ended its pagination chain; ``url`` as logged."""
    end = outcome.chain_end
    assert end is not None
    return fetch_id, run_id, outcome.fetch.target, url, end.pages, end.items, str(end.reason)


def validators_of(outcome: Outcome) -> tuple[str | None, str | None]:
    """The (ETag, Last-Modified) a successful response gave, for the next run's conditional request."""
    fetch = outcome.fetch
    if not fetch.ok:
        return None, None
    return fetch.headers.get("ETag"), fetch.headers.get("Last-Modified")
