"""``run --summary-json``: the end of a run as one JSON document, for scripts and CI.

The same facts as the text summary (``console/summary.py``), as data: the
run, its exit status, counts per target and in total, failures by kind with
an example each, and what a check found. Secrets are masked as in the text
(the examples were masked when they were counted).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .summary import format_summary

if TYPE_CHECKING:
    from ..api import RunResult
    from ..stats import TargetStats

VERSION = 1  # of this document's layout: a script can tell a layout it does not know


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def _counts(stats: TargetStats) -> dict[str, Any]:
    return {
        "requests": stats.requests, "ok": stats.ok, "failed": stats.failed,
        "failed_by_kind": dict(stats.failures.most_common()), "failure_examples": dict(stats.failure_examples),
        "retries": stats.retries, "records": stats.records, "dropped": stats.dropped, "bytes": stats.bytes,
        "unchanged": stats.unchanged, "robots_denied": stats.robots_denied,
        "p50_ms": _ms(stats.latency.percentile(50)), "p95_ms": _ms(stats.latency.percentile(95)),
        "max_ms": _ms(stats.latency.percentile(100)),
    }  # fmt: skip


def summary_data(result: RunResult, exit_status: int, stopped_by: str | None = None) -> dict[str, Any]:
    """The run as plain data: what ``summary_json`` writes."""
    run_totals = None
    if result.run_totals is not None:
        run_totals = dict(zip(("requests", "records"), result.run_totals, strict=True))
    return {
        "version": VERSION,
        "run_id": result.run_id,
        "database": str(result.database),
        "status": result.status,
        "exit_status": exit_status,
        "ok": result.ok,
        "stopped_by": stopped_by,
        "already_completed": result.already_completed,
        "duration_s": round(result.duration, 3),
        "targets": {name: _counts(stats) for name, stats in result.stats.targets.items()},
        "totals": _counts(result.totals),
        "run_totals": run_totals,  # every session (resume) or worker of the run; null: this one is the run
        "failed_by_target": dict(result.failed_by_target) if result.failed_by_target is not None else None,
        "unmet_expectations": list(result.unmet),
        "health_problems": list(result.health),
        "notes": list(result.notes),
        "summary": format_summary(result, stopped_by, exit_status).splitlines(),
    }


def summary_json(result: RunResult, exit_status: int, stopped_by: str | None = None) -> str:
    """``summary_data`` as indented JSON text."""
    return json.dumps(summary_data(result, exit_status, stopped_by), indent=2, ensure_ascii=False)
