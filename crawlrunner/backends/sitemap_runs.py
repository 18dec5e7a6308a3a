"""What ``since: last_run`` stands for, per sitemap target, read the same way from every backend.

A completed run of the spec counts for a target only if it requested the
target (the target has rows in its fetch log) and none of the target's
requests failed in it, its sitemap documents included, and no sitemap's
limits left URLs out: as the incremental cursor ignores a run where its
target had a failed request, a page that failed (or a sitemap that could
not be read, or whose URLs a limit cut) stays due until a run reads it. A ``--retry-failed`` run that counts stands for the crawl it retried:
its time is the start of the first run of its chain, when the pages it did
not need to fetch again were read.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ..sitemaps import LastRun
from ..spec.model import Spec

# The last run counting for target {target} before run {run} (and the runs it
# retries): its chain's first run, and when that started ({spec}, {run} and
# {target} are the backend's placeholders; each may appear twice).
LAST_RUN = """
WITH RECURSIVE family(id) AS (
    SELECT {run} UNION ALL SELECT r.retry_of FROM _crawlrunner_runs AS r JOIN family AS f ON r.id = f.id WHERE r.retry_of IS NOT NULL
),
clean(id) AS (
    SELECT max(r.id) FROM _crawlrunner_runs AS r
    WHERE r.spec_name = {spec} AND r.status = 'completed' AND r.id < (SELECT min(id) FROM family)
    AND EXISTS (SELECT 1 FROM _crawlrunner_fetch_log AS f WHERE f.run_id = r.id AND f.target = {target})
    AND NOT EXISTS (
        SELECT 1 FROM _crawlrunner_fetch_log AS f WHERE f.run_id = r.id AND f.target = {target}
        AND (f.error_kind IS NOT NULL OR f.error LIKE 'sitemap limit:%')
    )
),
chain(id, retry_of) AS (
    SELECT r.id, r.retry_of FROM _crawlrunner_runs AS r JOIN clean AS c ON r.id = c.id
    UNION ALL SELECT r.id, r.retry_of FROM _crawlrunner_runs AS r JOIN chain AS c ON r.id = c.retry_of
)
SELECT id, started_at FROM _crawlrunner_runs WHERE id = (SELECT min(id) FROM chain)
"""
SQLITE_LAST_RUN = LAST_RUN.format(run="?1", spec="?2", target="?3")
POSTGRES_LAST_RUN = LAST_RUN.format(run="$1::bigint", spec="$2", target="$3")


def since_last_run(spec: Spec) -> list[str]:
    """The sitemap targets of ``spec`` whose ``since`` is ``last_run``: the ones a run looks up."""
    return [t.name for t in spec.targets if t.sitemap is not None and t.sitemap.since == "last_run"]


def as_last_runs(found: Iterable[tuple[str, tuple[Any, ...] | None]]) -> dict[str, LastRun]:
    """Per target, its ``LAST_RUN`` row (``None``: no run counts yet) as a ``LastRun``."""
    return {name: LastRun(int(row[0]), _timestamp(row[1])) for name, row in found if row is not None}


def _timestamp(value: Any) -> datetime:
    # SQLite keeps ISO text, PostgreSQL a timestamptz; both are UTC.
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
