"""When a completed crawl may record an upsert target's unseen keys as removed; for every backend.

A key that earlier runs stored and a completed crawl of the whole spec no
longer saw gets a ``removed`` history row and its row's ``_removed_run``
(the row itself stays). Not seeing a key proves it is gone only if the run
saw everything the target has: a failed page, a page not sent, links
``follow.max_pages`` left out, a child target whose parent's page failed,
all hide keys that still exist; a target that asks only for what changed
(``incremental``, a sitemap's ``since``), or whose parent does, never sees
them all. Each
backend gathers the run's facts (``RunGaps``: the ``GAPS`` query, and the
upsert tables that got no row in the run); ``may_record_removals`` weighs
them, the one place that decides.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace

from ..spec.model import Target

# (target, what) of every target that did not see all it has in run {run}
# (a placeholder: "?1" on SQLite, "$1" on PostgreSQL): a request that failed,
# one not sent on purpose (robots.txt), a pagination chain cut short by
# max_pages or a loop (a chain ended by a failed page is a failed request),
# a sitemap whose limits left URLs out, links follow.max_pages left out.
# Both layouts have these columns.
GAPS = """
SELECT DISTINCT target, 'failed' FROM _crawlrunner_fetch_log WHERE run_id = {run} AND error_kind IS NOT NULL
UNION
SELECT DISTINCT target, 'skipped' FROM _crawlrunner_requests WHERE run_id = {run} AND state = 'skipped'
UNION
SELECT DISTINCT target, 'truncated' FROM _crawlrunner_chain_ends WHERE run_id = {run} AND reason IN ('max_pages', 'loop')
UNION
SELECT DISTINCT target, 'truncated' FROM _crawlrunner_fetch_log WHERE run_id = {run} AND error LIKE 'sitemap limit:%'
UNION
SELECT DISTINCT target, 'unfollowed' FROM _crawlrunner_fetch_log WHERE run_id = {run} AND unfollowed > 0
"""


@dataclass(frozen=True)
class RunGaps:
    """What a run did not see fully, by target name: the facts ``may_record_removals`` weighs."""

    failed: frozenset[str] = frozenset()  # a request of the target failed (fetch_log.error_kind)
    skipped: frozenset[str] = frozenset()  # a request of the target was not sent (robots.txt)
    truncated: frozenset[str] = frozenset()  # a pagination chain of the target was cut short
    empty: frozenset[str] = frozenset()  # the target's table got no row in the run: more likely broken than empty
    unfollowed: frozenset[str] = frozenset()  # follow.max_pages left links of the target out
    changes_only: frozenset[str] = frozenset()  # the target asks only for what changed (``Target.changes_only``)

    @classmethod
    def of(cls, rows: Iterable[tuple[str, str]], empty: Collection[str] = ()) -> RunGaps:
        """From the rows of ``GAPS``, and the targets whose tables got no row."""
        found: dict[str, set[str]] = {"failed": set(), "skipped": set(), "truncated": set(), "unfollowed": set()}
        for target, what in rows:
            found[what].add(target)
        return cls(
            frozenset(found["failed"]), frozenset(found["skipped"]), frozenset(found["truncated"]), frozenset(empty),
            frozenset(found["unfollowed"]),
        )  # fmt: skip


def may_record_removals(target: Target, gaps: RunGaps, parents: Mapping[str, str | None]) -> bool:
    """Whether a completed whole crawl may mark the keys of ``target`` it did not see as removed.

    The one place that decides. The callers have already checked that
    the run is a completed (or re-extracted) crawl of the whole spec:
    not limited, interrupted, failed, nor a ``--retry-failed`` run.
    ``parents``: target name → its parent's name, for child targets, whose
    requests come from their parent's records.
    """
    if target.name in gaps.empty:
        return False
    name: str | None = target.name
    seen: set[str] = set()
    while name is not None and name not in seen:
        if any(name in gap for gap in (gaps.failed, gaps.skipped, gaps.truncated, gaps.unfollowed, gaps.changes_only)):
            return False
        seen.add(name)
        name = parents.get(name)
    return True


def removal_targets(targets: Iterable[Target], gaps: RunGaps) -> list[Target]:
    """The upsert targets among ``targets`` (in their order) whose unseen keys the run records as removed."""
    targets = list(targets)
    parents = {t.name: t.parent for t in targets}
    gaps = replace(gaps, changes_only=frozenset(t.name for t in targets if t.changes_only))
    return [
        t for t in targets if t.mode == "upsert" and t.extract is not None and may_record_removals(t, gaps, parents)
    ]


def upsert_targets(targets: Iterable[Target]) -> list[Target]:
    """The targets removals concern: ``mode: upsert`` with records."""
    return [t for t in targets if t.mode == "upsert" and t.extract is not None]
