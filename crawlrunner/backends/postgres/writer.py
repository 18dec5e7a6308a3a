"""The PostgreSQL sink: each batch one transaction, fenced by the lease tokens.

For every outcome of the batch the transaction first marks its request
finished, but only where the request is still leased under the token this
worker claimed it with (``statements.FENCE``). Everything else the outcome
writes (its fetch-log row, its records and their history, its ETag, its
body, the requests it led to) is written only for those: a worker paused past
its lease, whose requests another worker took over, wakes up to find its
outcomes superseded, and writes nothing twice. A batch whose commit was lost
with the connection is run again whole; the fence makes that safe too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ...follow import is_link, normalize_url
from ...plan import SITEMAP, RequestPlan
from ...results import Outcome
from ...sitemaps import describe_cut, log_cut, split_pages, with_left_out
from ...spec.model import Spec
from ..batching import BatchingSink
from ..rows import RequestRows, chain_end_row, fetch_row
from . import statements as sql
from .connect import retrying
from .frontier import Leases
from .records import RecordWriter

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger(__name__)


class PostgresSink(BatchingSink):
    """One worker process's writer (see ``Sink`` for the contract, ``BatchingSink`` for the queue)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        name: str,
        run_id: int,
        worker_id: int,
        spec: Spec,
        leases: Leases,
        committed: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(spec)
        self._pool, self._name, self._run_id, self._worker_id = pool, name, run_id, worker_id
        self._spec = spec
        self._targets = {t.name: t for t in spec.targets}
        self._leases = leases
        self._committed = committed
        self._records = RecordWriter(spec, run_id)
        self._request_row = RequestRows(run_id, spec.redactor).row
        self._cut_notes: list[tuple[str, str, str]] = []  # (target, text, url) of the last commit's cut documents

    async def commit(self, batch: list[Outcome]) -> None:
        if not batch:
            return
        await retrying(self._name, "write", lambda: self._commit_once(batch))
        for note in self._cut_notes:  # once the commit holds: a commit tried again does not say it twice
            log_cut(*note)
        for outcome in batch:
            if outcome.plan is not None:
                self._leases.drop(outcome.plan)
        self._committed()

    async def _commit_once(self, batch: list[Outcome]) -> None:
        self._cut_notes = []
        async with self._pool.acquire() as conn, conn.transaction():
            kept = await self._fence(conn, batch)
            derived, errors = await self._sitemap_budget(conn, kept)
            fetched = [o for o in kept if o.skipped is None]
            ids = [int(r[0]) for r in await conn.fetch(sql.FETCH_LOG_IDS, len(fetched))] if fetched else []
            # Links first: which ones max_pages leaves out is decided there, and logged with their page.
            unfollowed = await self._save_derived(conn, kept, derived)
            await self._log_fetches(conn, fetched, ids, errors, unfollowed)
            await self._records.write(conn, list(zip(fetched, ids, strict=True)))

    async def _sitemap_budget(
        self, conn: asyncpg.Connection, kept: list[Outcome]
    ) -> tuple[dict[int, list[RequestPlan]], dict[int, str]]:
        """The requests each sitemap document may add within its target's run-wide ``max_urls``, and the errors
        saying what it left out, by ``id`` of the outcome.

        The count is the run's, every worker's (``run_targets.sitemap_urls``),
        under the target's row lock; the outcomes are not changed, so a
        commit tried again counts again from what the database holds. What
        each cut document left out, all limits together, waits in
        ``_cut_notes`` for the commit to hold.
        """
        documents = [
            o
            for o in kept
            if o.plan is not None and o.plan.role == SITEMAP and (o.derived or o.sitemap_cut is not None)
        ]
        if not documents:
            return {}, {}
        locked = {o.fetch.target for o in documents}
        locked |= {r.target.name for o in kept if o.plan is not None for r in o.derived if is_link(r, o.plan)}
        await conn.fetch(sql.LOCK_TARGETS, self._run_id, sorted(locked))
        derived: dict[int, list[RequestPlan]] = {}
        errors: dict[int, str] = {}
        for outcome in documents:
            assert outcome.plan is not None and outcome.plan.target.sitemap is not None
            rules, name = outcome.plan.target.sitemap, outcome.fetch.target
            taken_so_far = int(await conn.fetchval(sql.SITEMAP_URLS, self._run_id, name))
            requests, taken, left_out = split_pages(outcome, rules.max_urls - taken_so_far)
            derived[id(outcome)] = requests
            if taken:
                await conn.execute(sql.ADD_SITEMAP_URLS, self._run_id, name, taken)
            if left_out:
                errors[id(outcome)] = describe_cut(with_left_out(outcome, left_out), rules)
            if outcome.sitemap_cut is not None or left_out:
                self._cut_notes.append(self._cut_note(outcome, errors.get(id(outcome), outcome.fetch.error or "")))
        return derived, errors

    def _cut_note(self, outcome: Outcome, text: str) -> tuple[str, str, str]:
        return outcome.fetch.target, text, self._spec.redactor(outcome.fetch.url)

    async def _fence(self, conn: asyncpg.Connection, batch: list[Outcome]) -> list[Outcome]:
        """Mark the batch's requests finished where their lease still holds; the outcomes that may be written."""
        # One outcome per request: a request this worker lost (presumed dead)
        # and claimed again may be here twice; only the newer claim's (the
        # higher token) can match its row.
        newest: dict[int, tuple[int, Outcome]] = {}
        for outcome in batch:
            plan = outcome.plan
            assert plan is not None and plan.request_id is not None, "every request of a shared run has a row"
            token = self._leases.token(plan)
            if plan.request_id not in newest or token > newest[plan.request_id][0]:
                newest[plan.request_id] = (token, outcome)
        ids, tokens, states, reasons = [], [], [], []
        for request_id, (token, outcome) in newest.items():
            ids.append(request_id)
            tokens.append(token)
            states.append("skipped" if outcome.skipped is not None else "done" if outcome.fetch.ok else "failed")
            reasons.append(outcome.skipped)
        held = {r[0] for r in await conn.fetch(sql.FENCE, ids, tokens, states, reasons)}
        kept = [outcome for request_id, (_, outcome) in newest.items() if request_id in held]
        if len(kept) < len(batch):
            # Their requests were taken over (this worker was presumed dead), or
            # an earlier try of this very commit went through, its reply lost.
            log.warning(
                "%d outcome(s) not written again: their requests were finished already (taken over by another "
                "worker, or committed by a try whose reply was lost)",
                len(batch) - len(kept),
            )
        return kept

    async def _log_fetches(
        self,
        conn: asyncpg.Connection,
        fetched: list[Outcome],
        ids: list[int],
        errors: dict[int, str],
        unfollowed: dict[int, int],
    ) -> None:
        """The fetch-log rows (``errors``: a sitemap document's error, by ``id`` of its outcome, in place of its own;
        ``unfollowed``: the links max_pages left out, by ``id`` of the outcome whose page had them)."""
        if not fetched:
            return
        redact = self._spec.redactor
        rows: list[tuple[Any, ...]] = []
        chain_ends: list[tuple[Any, ...]] = []
        for outcome, fetch_id in zip(fetched, ids, strict=True):
            row = fetch_row(outcome, fetch_id, self._run_id, redact)
            error = errors.get(id(outcome), row[14])
            left_out = unfollowed.get(id(outcome), 0)
            rows.append((*row[:14], error, datetime.fromisoformat(row[15]), *row[16:-1], left_out, self._worker_id))
            if outcome.chain_end is not None:
                chain_ends.append(chain_end_row(outcome, fetch_id, self._run_id, row[4]))
        await conn.execute(sql.INSERT_FETCH_LOG, *zip(*rows, strict=True))
        if chain_ends:
            await conn.execute(sql.INSERT_CHAIN_ENDS, *zip(*chain_ends, strict=True))

    async def _save_derived(
        self, conn: asyncpg.Connection, kept: list[Outcome], allowed: dict[int, list[RequestPlan]]
    ) -> dict[int, int]:
        """The requests the kept outcomes led to (``allowed``, where a budget cut them), pending; returns
        how many new links ``follow.max_pages`` left out, by ``id`` of the outcome whose page had them.

        Followed links only if new to the run; a sitemap only if no sitemap
        or robots.txt listed it before, nor the spec; a sitemap's page of a
        link-following target only if no link reached it first.
        """
        plain: list[RequestPlan] = []
        links: dict[str, dict[str, RequestPlan]] = {}
        found_on: dict[int, int] = {}  # id of a link's plan → id of the outcome it was first found on
        once: dict[str, dict[str, RequestPlan]] = {}  # sitemaps, and pages links may reach too
        for outcome in kept:
            source = outcome.plan
            assert source is not None
            for request in allowed.get(id(outcome), outcome.derived):
                if is_link(request, source):
                    link = links.setdefault(request.target.name, {}).setdefault(request.url, request)
                    found_on.setdefault(id(link), id(outcome))
                elif source.role == SITEMAP and (request.role == SITEMAP or request.target.follow is not None):
                    url = normalize_url(request.url) or request.url
                    once.setdefault(request.target.name, {}).setdefault(url, request)
                else:
                    plain.append(request)
        unfollowed: dict[int, int] = {}
        for name in sorted(links):  # one lock order for every worker
            new, left_out = await self._first_seen(conn, name, links[name])
            plain += new
            for plan in left_out:
                unfollowed[found_on[id(plan)]] = unfollowed.get(found_on[id(plan)], 0) + 1
        sitemaps: list[RequestPlan] = []
        for name in sorted(once):
            fresh = {r[0] for r in await conn.fetch(sql.FIRST_SEEN, self._run_id, name, sorted(once[name]))}
            new = [plan for url, plan in once[name].items() if url in fresh]
            pages = [plan for plan in new if plan.role is None]
            if pages:  # as a start URL does, a sitemap's page counts against follow.max_pages
                await conn.execute(sql.ADD_FOLLOWED, self._run_id, name, len(pages))
            plain += pages
            sitemaps += [plan for plan in new if plan.role == SITEMAP]
        rows = [self._request_row(plan, "pending") for plan in plain]
        await sql.insert_requests(conn, rows, (plan.invalid for plan in plain), sql.DERIVED)
        # Sitemaps found in indexes are claimed after the pages found so far, as start requests
        # are: an index of many sitemaps is read about one at a time.
        rows = [self._request_row(plan, "pending") for plan in sitemaps]
        await sql.insert_requests(conn, rows, (plan.invalid for plan in sitemaps), sql.START)
        return unfollowed

    async def _first_seen(
        self, conn: asyncpg.Connection, target: str, links: dict[str, RequestPlan]
    ) -> tuple[list[RequestPlan], list[RequestPlan]]:
        """The links (by normalised URL) no worker requested before, within the target's ``max_pages``; and
        the new ones past it, left out.

        The count of what was taken is the run's, under its row lock, so the cut is exact across workers.
        """
        follow = self._targets[target].follow
        assert follow is not None
        followed = int(await conn.fetchval(sql.LOCK_FOLLOWED, self._run_id, target))
        fresh = {r[0] for r in await conn.fetch(sql.FIRST_SEEN, self._run_id, target, sorted(links))}
        new = [plan for url, plan in links.items() if url in fresh]
        budget = max(follow.max_pages - followed, 0)
        new, left_out = new[:budget], new[budget:]
        if left_out:
            await conn.execute(sql.FORGET_SEEN, self._run_id, target, [plan.url for plan in left_out])
        if new:
            await conn.execute(sql.ADD_FOLLOWED, self._run_id, target, len(new))
        return new, left_out
