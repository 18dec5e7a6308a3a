"""The facts expectations and extraction health are checked on, read back the same way from either database.

Both layouts have the same tables and columns for these (``runs``,
``fetch_log``, ``chain_ends``, ``extraction_health``, the target tables), so
the statements are written once, in SQL both SQLite and PostgreSQL read.
Named parameters (``:target``, ``:spec``) are the only thing a backend
translates; run ids go in as integers, since they come from the database.

A **logical run** is a run together with the runs it retries
(``runs.retry_of``, followed back to the crawl that started it). Its
records are the target-table rows any of them stored; its failures are
the latest run's alone, since a retry fetches again every request the run
before it failed, and a chain that ended on a failed page of an earlier run
is a chain the retry continued.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from ..expectations import TRUNCATED_EXAMPLES, Baseline, TargetFacts
from ..results import TRUNCATING_STOPS
from ..spec.model import Field, Target


class FactsDatabase(Protocol):
    """What a backend lends for reading facts: statements with ``:name`` parameters, and one write."""

    async def fetch(self, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of one statement."""
        ...

    async def keep_health(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert or update ``extraction_health`` rows (run_id, target, field, records, empty), in one transaction."""
        ...


def _quote(name: str) -> str:
    # The same quoting in both databases (double quotes, doubled inside).
    return '"' + name.replace('"', '""') + '"'


def _ids(run_ids: Iterable[int]) -> str:
    return "(" + ", ".join(str(int(i)) for i in run_ids) + ")"


_FAMILY = """
WITH RECURSIVE family(id) AS (
    SELECT CAST({run} AS BIGINT)
    UNION ALL
    SELECT r.retry_of FROM _crawlrunner_runs AS r JOIN family AS f ON r.id = f.id WHERE r.retry_of IS NOT NULL
)
SELECT id FROM family
"""

_REQUESTS = """
SELECT count(CASE WHEN run_id = {root} THEN 1 END),
       count(CASE WHEN run_id = {run} AND error_kind IS NOT NULL THEN 1 END)
FROM _crawlrunner_fetch_log WHERE run_id IN {family} AND target = :target
"""

_DOCUMENTS = """
SELECT count(*), count(CASE WHEN items = 0 THEN 1 END)
FROM _crawlrunner_fetch_log
WHERE run_id IN {family} AND target = :target AND items IS NOT NULL AND status BETWEEN 200 AND 299
"""

_CHAIN_ENDS = """
SELECT reason, count(*), count(CASE WHEN reason = 'no_next' AND pages = 1 THEN 1 END)
FROM _crawlrunner_chain_ends
WHERE run_id IN {family} AND target = :target AND (reason <> 'failed' OR run_id = {run})
GROUP BY reason
"""

_TRUNCATED = """
SELECT reason, url FROM _crawlrunner_chain_ends
WHERE run_id IN {family} AND target = :target AND reason IN {reasons} AND (reason <> 'failed' OR run_id = {run})
ORDER BY fetch_id LIMIT {limit}
"""

# Sitemap documents a limit cut short: their error says so (``sitemaps.LIMIT_PREFIX``).
_SITEMAP_CUTS = """
SELECT url, error, count(*) OVER () FROM _crawlrunner_fetch_log
WHERE run_id IN {family} AND target = :target AND error_kind IS NULL AND error LIKE 'sitemap limit:%'
ORDER BY id LIMIT {limit}
"""

# Links follow.max_pages left out, page by page.
_UNFOLLOWED = """
SELECT coalesce(sum(unfollowed), 0) FROM _crawlrunner_fetch_log WHERE run_id IN {family} AND target = :target
"""

# The last completed run of the spec before this logical run that kept this target's health.
_BASELINE = """
SELECT run_id, field, records, empty FROM _crawlrunner_extraction_health
WHERE target = :target AND run_id = (
    SELECT max(r.id) FROM _crawlrunner_runs AS r
    WHERE r.spec_name = :spec AND r.status = 'completed' AND r.id < {run} AND r.id NOT IN {family}
      AND EXISTS (SELECT 1 FROM _crawlrunner_extraction_health AS h WHERE h.run_id = r.id AND h.target = :target)
)
"""


def _empty(field: Field) -> str:
    """When the field's column counts as empty: null, or an empty list for ``many`` fields."""
    column = _quote(field.name)
    return f"{column} IS NULL OR {column} = '[]'" if field.many else f"{column} IS NULL"


async def family(db: FactsDatabase, run_id: int) -> list[int]:
    """The run and every run it retries, newest first (the last is the crawl that started it)."""
    return [int(row[0]) for row in await db.fetch(_FAMILY.format(run=int(run_id)), {})]


async def run_facts(
    db: FactsDatabase, run_id: int, targets: Iterable[Target], spec_name: str
) -> dict[str, TargetFacts]:
    """What the logical run of ``run_id`` did for each of ``targets``; its field counts kept in ``extraction_health``.

    The counts are kept under ``run_id``: the run's own numbers, which a
    later run's ``drift`` compares with. They are counted from the stored
    rows, so every session of a resumed run counts, once.
    """
    runs = await family(db, run_id)
    facts = {}
    for target in targets:
        empty = await _count_empty(db, runs, target) if target.extract is not None else None
        if empty is not None:
            records, by_field = empty
            await db.keep_health([(run_id, target.name, name, records, count) for name, count in by_field.items()])
        facts[target.name] = await _target_facts(db, runs, target, spec_name, empty)
    return facts


async def _count_empty(db: FactsDatabase, runs: list[int], target: Target) -> tuple[int, dict[str, int]]:
    """(records, field → records leaving it empty) of the logical run ``runs``."""
    assert target.extract is not None
    fields = target.extract.fields
    sums = "".join(f", sum(CASE WHEN {_empty(f)} THEN 1 ELSE 0 END)" for f in fields)
    rows = await db.fetch(f"SELECT count(*){sums} FROM {_quote(target.name)} WHERE _run_id IN {_ids(runs)}", {})
    records, *empty = rows[0] if rows else (0,)
    return int(records or 0), {f.name: int(n or 0) for f, n in zip(fields, empty or [0] * len(fields), strict=True)}


async def _target_facts(
    db: FactsDatabase, runs: list[int], target: Target, spec_name: str, empty: tuple[int, dict[str, int]] | None
) -> TargetFacts:
    run_id, ids, named = runs[0], _ids(runs), {"target": target.name}
    rows = await db.fetch(_REQUESTS.format(root=runs[-1], run=run_id, family=ids), named)
    requests, failed = (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)
    cuts: dict[str, Any] = {}
    if target.sitemap is not None:
        rows = await db.fetch(_SITEMAP_CUTS.format(family=ids, limit=TRUNCATED_EXAMPLES), named)
        examples = tuple((str(url), str(error)) for url, error, _ in rows)
        cuts = {"sitemap_cuts": int(rows[0][2]) if rows else 0, "sitemap_cut_examples": examples}
    if target.follow is not None:
        rows = await db.fetch(_UNFOLLOWED.format(family=ids), named)
        cuts["unfollowed"] = int(rows[0][0]) if rows else 0
    if empty is None:
        return TargetFacts(records=0, requests=requests, failed=failed, **cuts)
    rows = await db.fetch(_DOCUMENTS.format(family=ids), named)
    documents, empty_documents = (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)
    chain_ends: dict[str, int] = {}
    first_page_no_next = 0
    for reason, count, first_page in await db.fetch(_CHAIN_ENDS.format(family=ids, run=run_id), named):
        chain_ends[str(reason)] = int(count)
        first_page_no_next += int(first_page)
    truncated: tuple[tuple[str, str], ...] = ()
    if any(reason in TRUNCATING_STOPS for reason in chain_ends):
        reasons = "(" + ", ".join(f"'{r}'" for r in sorted(TRUNCATING_STOPS)) + ")"
        statement = _TRUNCATED.format(family=ids, run=run_id, reasons=reasons, limit=TRUNCATED_EXAMPLES)
        truncated = tuple((str(r), str(u)) for r, u in await db.fetch(statement, named))
    return TargetFacts(
        records=empty[0],
        requests=requests,
        failed=failed,
        nulls=empty[1],
        documents=documents,
        empty_documents=empty_documents,
        chain_ends=chain_ends,
        first_page_no_next=first_page_no_next,
        truncated=truncated,
        previous=await _baseline(db, runs, target, spec_name),
        **cuts,
    )


async def _baseline(db: FactsDatabase, runs: list[int], target: Target, spec_name: str) -> Baseline | None:
    rows = await db.fetch(_BASELINE.format(run=runs[0], family=_ids(runs)), {"target": target.name, "spec": spec_name})
    if not rows:
        return None
    return Baseline(
        run_id=int(rows[0][0]),
        records=max(int(r[2]) for r in rows),
        empty={str(r[1]): int(r[3]) for r in rows},
    )
