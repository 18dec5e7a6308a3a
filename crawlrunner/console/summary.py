"""The end-of-run summary: a table of counters per target, notes, and what the exit status means."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..expectations import stop_counts

if TYPE_CHECKING:
    from ..api import RunResult
    from ..stats import TargetStats


SHOWN_HOSTS = 5  # hosts named in the summary's line on pauses


def _human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


def format_summary(result: RunResult, stopped_by: str | None = None, exit_code: int = 130) -> str:
    """The end-of-run table: one row per target and a total.

    ``stopped_by`` and ``exit_code``: what interrupted a run and the status it exits with (143 for SIGTERM).
    """
    lines = _table(result)
    totals = result.totals
    notes = [f"run {result.run_id} {result.status} in {result.duration:.2f} s; database: {result.database}"]
    if result.run_totals and result.run_totals[0] != totals.requests:
        requests, records = result.run_totals
        if isinstance(result.database, str):  # a shared database: other workers, other sessions
            notes.append(f"this worker only; the whole run, every worker: {requests} requests, {records} records")
        else:
            notes.append(
                f"this session only; with the earlier sessions of this resumed run: {requests} requests, {records} records"
            )
    if totals.failures:
        kinds = ", ".join(_failure_kind(totals, kind, count) for kind, count in totals.failures.most_common())
        notes.append(f"failed requests: {kinds} (see the _crawlrunner_fetch_log table)")
        if len(result.stats.targets) > 1:
            for name, stats in result.stats.targets.items():
                if stats.failures:
                    by_kind = ", ".join(f"{kind} {count}" for kind, count in stats.failures.most_common())
                    notes.append(f"  - {name}: {by_kind}")
    if totals.warnings:
        said = ", ".join(f"{warning} ({count})" for warning, count in totals.warnings.most_common())
        count = totals.warnings.total()
        notes.append(
            f"{count} response{'s' if count != 1 else ''} with a warning: {said} (see _crawlrunner_fetch_log.error)"
        )
    if totals.dropped:
        notes.append(f"{totals.dropped} records dropped for a missing required field")
    if totals.field_errors:
        notes.append(f"{totals.field_errors} field values could not be converted and were stored as null:")
        for name, stats in result.stats.targets.items():
            notes += [f"  - {name}.{field}: {example}" for field, example in stats.field_error_examples.items()]
    if totals.robots_denied:
        count = totals.robots_denied
        notes.append(f"{count} URL{'s' if count != 1 else ''} skipped: disallowed by robots.txt")
    notes += [
        f"{name}: {stats.unchanged} unchanged (304): rows kept"
        for name, stats in result.stats.targets.items()
        if stats.unchanged
    ]
    notes += _politeness_notes(result)
    notes += _extraction_notes(result)
    if result.health:
        notes.append("extraction looks broken (a selector that matches nothing is the usual cause; `crawlrunner try`):")
        notes += [f"  - {problem}" for problem in result.health]
    if result.unmet:
        notes.append("expectations not met:")
        notes += [f"  - {problem}" for problem in result.unmet]
    notes += result.notes
    notes.append(_exit_meaning(result, stopped_by, exit_code))
    return "\n".join(lines + [""] + notes)


def _failure_kind(stats: TargetStats, kind: str, count: int) -> str:
    """``http_status 12 (e.g. https://shop.example/p/7: HTTP 404)``: one example per kind keeps the summary short."""
    example = stats.failure_examples.get(kind)
    return f"{kind} {count} (e.g. {example})" if example else f"{kind} {count}"


def _table(result: RunResult) -> list[str]:
    """One row per target and a total; a re-extraction made no requests, so it counts the bodies it read."""
    if result.status == "reextracted":
        header: tuple[str, ...] = ("target", "stored bodies", "records")
    else:
        header = ("target", "requests", "ok", "failed", "retries", "records", "bytes", "p50 ms", "p95 ms", "max ms")
    rows = [header]
    for name, stats in [*result.stats.targets.items(), ("total", result.totals)]:
        if result.status == "reextracted":
            rows.append((name, str(stats.requests), str(stats.records)))
            continue
        rows.append(
            (
                name, str(stats.requests), str(stats.ok), str(stats.failed), str(stats.retries), str(stats.records),
                _human_bytes(stats.bytes), _ms(stats.latency.percentile(50)),
                _ms(stats.latency.percentile(95)), _ms(stats.latency.percentile(100)),
            )
        )  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=False))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(-1, lines[1])
    return lines


def format_problems(result: RunResult) -> str | None:
    """What a quiet run still says: the extraction problems and unmet expectations behind exit status 3."""
    if not result.health and not result.unmet:
        return None
    return "\n".join(["extraction or expectations:", *(f"  - {p}" for p in result.health + result.unmet)])


def _politeness_notes(result: RunResult) -> list[str]:
    """``throttled: products 12 × 429, 3 × 503; hosts cooled down: shop.example 14.2 s in 9 pauses``."""
    said = []
    for name, stats in result.stats.targets.items():
        counts = [f"{n} × {status}" for n, status in ((stats.throttled, 429), (stats.unavailable, 503)) if n]
        if counts:
            said.append(f"{name} {', '.join(counts)}")
    if said:
        said[0] = f"throttled: {said[0]}"
    paused = sorted(result.stats.hosts.items(), key=lambda item: -item[1].cooldown_seconds)
    cooled = [
        f"{origin.partition('://')[2]} {host.cooldown_seconds:.1f} s in {host.cooldowns} pause{'s' * (host.cooldowns != 1)}"
        for origin, host in paused
        if host.cooldowns
    ]
    if len(cooled) > SHOWN_HOSTS:  # the longest paused; the rest are in the host_stats table
        cooled[SHOWN_HOSTS:] = [f"{len(cooled) - SHOWN_HOSTS} more (see the host_stats table)"]
    if cooled:
        said.append(f"hosts cooled down: {', '.join(cooled)}")
    return ["; ".join(said)] if said else []


def _extraction_notes(result: RunResult) -> list[str]:
    """Per target: fields left empty, pages without records, how pagination chains ended, truncated ones."""
    notes: list[str] = []
    for name, facts in result.facts.items():
        empty = [(f, n) for f, n in facts.nulls.items() if n]
        if empty and facts.records:
            shown = ", ".join(f"{f} {n}/{facts.records}" for f, n in sorted(empty, key=lambda fn: -fn[1]))
            notes.append(f"empty fields: {name}: {shown}")
        if facts.empty_documents and facts.empty_documents < facts.documents:
            notes.append(f"pages without records: {name}: {facts.empty_documents} of {facts.documents}")
        if facts.chains:
            notes.append(f"pagination: {name}: {facts.chains} chain{'s' if facts.chains != 1 else ''} ended: "
                         f"{stop_counts(facts)}")  # fmt: skip
        for reason, url in facts.truncated:
            notes.append(f"  - cut short ({reason}) at {url}")
        more = facts.truncated_chains - len(facts.truncated)
        if more > 0:
            notes.append(f"  - and {more} more (see the chain_ends table)")
    return notes


def _exit_meaning(result: RunResult, stopped_by: str | None, exit_code: int) -> str:
    if result.status == "limited" and result.ok:
        return "exit status 0: stopped early by --max-requests / --max-records; `run --resume` continues"
    if result.status == "interrupted":
        by = f" by {stopped_by}" if stopped_by else ""  # else `crawlrunner stop` ended a shared run
        return f"exit status {exit_code}: interrupted{by}; `run --resume` continues the run"
    if result.health and result.unmet:
        return "exit status 3: extraction looks broken and the spec's expectations were not met"
    if result.health:
        return "exit status 3: extraction looks broken (see above; `expect: {allow_empty: [...]}` for expected gaps)"
    if result.unmet:
        return "exit status 3: the spec's expectations were not met"
    if not result.ok:
        return "exit status 1: some requests failed"
    tolerated = _tolerated_failures(result)
    if tolerated:
        return f"exit status 0: completed; failures within max_failed_ratio: {tolerated}"
    return "exit status 0: everything succeeded"


def _tolerated_failures(result: RunResult) -> str:
    """``products 3 of 200 failed (1.5%)`` for each target whose failures its max_failed_ratio allows."""
    parts = []
    failed = result.failed_by_target or {name: s.failed for name, s in result.stats.targets.items()}
    for name, count in failed.items():
        facts = result.facts.get(name)
        if not count or name not in result.tolerated or facts is None or not facts.requests:
            continue
        parts.append(f"{name} {count} of {facts.requests} failed ({count / facts.requests:.1%})")
    return ", ".join(parts)
