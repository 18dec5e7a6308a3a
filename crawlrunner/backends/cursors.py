"""The ``cursors`` table, the same on every backend: what a batch reached, merged into its run's rows, and read back.

A sink keeps, per (run, target, scope), the largest value of the target's
cursor field among the records it stores, in the transaction that stores
them: ``reached`` finds a batch's, ``merged`` says which rows change. A
request of an incremental target that fails marks its scope ``null`` for
the run, for good: the pages after a failed one were not read, and the run
must not move a cursor past records it never saw (the next run asks again
from where the last complete one got to).

When a run opens, ``start_points`` folds the rows of the spec's completed
runs older than it (``COMPLETED``) into the ``Cursors`` it starts from.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from ..incremental import Cursors, Known, larger, largest, order_key
from ..results import Outcome
from ..secrets import Redactor
from ..spec.model import Spec

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (target, scope)

# The cursors of the spec's completed runs before run {run}, oldest first
# ({spec} and {run} are the backend's placeholders).
COMPLETED = (
    "SELECT c.target, c.scope, c.value, c.run_id FROM _crawlrunner_cursors AS c JOIN _crawlrunner_runs AS r ON r.id = c.run_id"
    " WHERE r.spec_name = {spec} AND r.status = 'completed' AND r.id < {run} ORDER BY c.run_id"
)
# Where no run id bounds them (``plan``: the next run's id is larger than every one).
NO_RUN_YET = 1 << 62


def reached(outcomes: Iterable[Outcome], redact: Redactor) -> dict[Key, Any]:
    """Per (target, scope) of incremental targets, the largest cursor value among ``outcomes``' records.

    None for a scope the run did not read whole: a request failed, one was not
    sent (robots.txt), or a pagination chain was cut short (``max_pages``, a
    loop); it stays null for the run, so the next run asks from where this
    one started.
    """
    found: dict[Key, Any] = {}
    for outcome in outcomes:
        plan = outcome.plan
        if plan is None or plan.target.incremental is None:
            continue
        incremental = plan.target.incremental
        key = (plan.target.name, redact(incremental.scope(plan.parent)))
        chain_end = outcome.chain_end
        if not outcome.fetch.ok or outcome.skipped is not None or (chain_end is not None and chain_end.truncated):
            found[key] = None
            continue
        values = [v for record in outcome.records if (v := record.get(incremental.cursor)) is not None]
        if not values or (key in found and found[key] is None):
            continue
        best = largest(values, incremental.type)
        if key not in found or larger(best, found[key], incremental.type):
            found[key] = best
    return found


def merged(found: Mapping[Key, Any], stored: Mapping[Key, str], spec: Spec) -> list[tuple[str, str, str]]:
    """The (target, scope, value as JSON) rows that ``found`` changes, given the run's ``stored`` ones."""
    rows = []
    for (name, scope), value in found.items():
        before = stored.get((name, scope))
        if before == "null":
            continue  # a failed request: the run does not move this cursor, whatever came after
        if value is not None and before is not None:
            incremental = spec.target(name).incremental
            assert incremental is not None
            try:
                if not larger(value, json.loads(before), incremental.type):
                    continue
            except ValueError:  # the stored value is not of the field's type (it changed): replaced
                pass
        rows.append((name, scope, json.dumps(value, ensure_ascii=False)))
    return rows


def start_points(rows: Iterable[tuple[Any, ...]], spec: Spec) -> Cursors:
    """``Cursors`` from ``COMPLETED`` rows: per (target, scope), the largest value and the run that stored it."""
    targets = {t.name: t.incremental for t in spec.targets if t.incremental is not None}
    known: dict[Key, Known] = {}
    for name, scope, text, run_id in rows:
        incremental = targets.get(name)
        if incremental is None:
            continue
        value = json.loads(text)
        if value is None:  # a request of that scope failed in that run
            continue
        try:
            key = order_key(value, incremental.type)
        except ValueError:
            log.warning("%s: cursor %r of run %d is not a %s; ignored", name, value, run_id, incremental.type)
            continue
        best = known.get((name, scope))
        # Rows come oldest run first: of equal values, the later run is named.
        if best is None or key >= order_key(best.value, incremental.type):
            known[(name, scope)] = Known(value, int(run_id))
    return Cursors(known, spec.redactor)
