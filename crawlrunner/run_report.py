"""A run as one HTML page, for people who would rather look than read: ``crawlrunner report``.

::

    import crawlrunner

    html = crawlrunner.report("shop.db")  # the latest run; run_id=3 for another
    Path("report.html").write_text(html, encoding="utf-8")

Per target: requests, failures by kind with example URLs, records,
extraction health (``extraction_health``) and why pagination stopped
(``chain_ends``), a latency histogram and requests per second over time
(``fetch_log``); for the run, how long each host made it wait
(``host_stats``, kept per origin, not per target).

The page is self-contained: inline CSS, charts drawn here as inline SVG, and
one small inline script that only marks the charts the browser laid out
(``data-charts-drawn`` on ``<body>``, which the browser test reads). It
references nothing on the network, so it opens offline and can be mailed or
attached to a CI job. Every text from the database (targets, URLs, field
names, hosts) is escaped; URLs are shown as text, never as links. The
database is read read-only, through ``read.query`` and ``read.stream_query``,
so a PostgreSQL URL works wherever a file does. Nothing comes from the
environment: secrets in stored URLs are already masked by the run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from .backends.postgres.connect import is_postgres_url
from .errors import OutputPathError, UsageError
from .read import Database, is_database, query, stream_query

# Upper bounds of the latency histogram's buckets, in ms; the last bucket is everything slower.
LATENCY_BOUNDS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
# Failing URLs shown per target and kind: enough to start looking, few enough to read.
EXAMPLES_PER_KIND = 3
# Bars of the requests-per-second chart: a long run's seconds are merged into at most this many.
MAX_TIME_BARS = 60


@dataclass(slots=True)
class TargetFacts:
    """What one target did in the run."""

    name: str
    requests: int = 0
    failed: int = 0
    records: int = 0
    bytes: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # error kind → count
    examples: dict[str, list[str]] = field(default_factory=dict)  # error kind → first failing URLs
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))
    per_second: Counter[int] = field(default_factory=Counter)  # epoch second → requests
    health: list[tuple[str, int, int]] = field(default_factory=list)  # field, records, empty
    chain_ends: dict[str, int] = field(default_factory=dict)  # reason → chains


@dataclass(frozen=True, slots=True)
class HostWait:
    """One origin's row of ``host_stats``."""

    origin: str
    requests: int
    throttled: int
    unavailable: int
    cooldowns: int
    cooldown_seconds: float
    crawl_delay: float | None


@dataclass(frozen=True, slots=True)
class RunFacts:
    """Everything the report shows, read from the database."""

    run_id: int
    spec_name: str
    status: str
    started_at: str
    finished_at: str | None
    targets: tuple[TargetFacts, ...]
    hosts: tuple[HostWait, ...]


def report(database: Database, run_id: int | None = None) -> str:
    """The HTML report of run ``run_id`` in ``database`` (default: its latest run).

    A run id the database does not have is a ``UsageError``; an unreadable
    database raises what ``read.query`` raises.
    """
    return render(run_facts(database, run_id))


def write_report(database: Database, path: str | Path, run_id: int | None = None) -> Path:
    """Write ``report(database, run_id)`` to ``path``; the path written.

    Never over an SQLite file (``-o shop.db`` by mistake would destroy the
    crawl); a path that cannot be written is an ``OutputPathError``. The
    database is read before the file is opened, so a bad run id leaves no file.
    """
    path = Path(path)
    if is_database(path):
        raise OutputPathError(f"{path}: is an SQLite database; a report will not overwrite it")
    html = report(database, run_id)
    try:
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise OutputPathError(f"{path}: cannot write: {exc.strerror}") from None
    return path


def run_facts(database: Database, run_id: int | None = None) -> RunFacts:
    """The facts of one run, read read-only from an SQLite file or a PostgreSQL URL."""
    mark = "$1" if is_postgres_url(database) else "?"
    run = _run_row(database, run_id, mark)
    run_id = int(run[0])
    targets: dict[str, TargetFacts] = {}

    def target(name: str) -> TargetFacts:
        return targets.setdefault(name, TargetFacts(name))

    for name, requests, failed, records, size in query(
        database,
        "SELECT target, count(*), count(error_kind), coalesce(sum(records), 0), coalesce(sum(bytes), 0)"
        f" FROM _crawlrunner_fetch_log WHERE run_id = {mark} GROUP BY target ORDER BY target",
        [run_id],
    ):
        facts = target(name)
        facts.requests, facts.failed, facts.records, facts.bytes = int(requests), int(failed), int(records), int(size)
    _read_failures(database, run_id, mark, target)
    _read_latency(database, run_id, mark, target)
    _read_times(database, run_id, mark, target)
    for name, field_name, records, empty in query(
        database,
        f"SELECT target, field, records, empty FROM _crawlrunner_extraction_health WHERE run_id = {mark} ORDER BY target, field",
        [run_id],
    ):
        target(name).health.append((field_name, int(records), int(empty)))
    for name, reason, chains in query(
        database,
        f"SELECT target, reason, count(*) FROM _crawlrunner_chain_ends WHERE run_id = {mark} GROUP BY target, reason"
        " ORDER BY target, reason",
        [run_id],
    ):
        target(name).chain_ends[reason] = int(chains)
    return RunFacts(
        run_id,
        str(run[1]),
        str(run[2]),
        str(run[3]),
        None if run[4] is None else str(run[4]),
        tuple(targets[name] for name in sorted(targets)),
        _read_hosts(database, run_id, mark),
    )


def _run_row(database: Database, run_id: int | None, mark: str) -> tuple[Any, ...]:
    if run_id is None:
        latest = query(database, "SELECT max(id) FROM _crawlrunner_runs").rows[0][0]
        if latest is None:
            raise UsageError(f"{database}: no runs yet, so nothing to report")
        run_id = int(latest)
    rows = query(
        database,
        f"SELECT id, spec_name, status, started_at, finished_at FROM _crawlrunner_runs WHERE id = {mark}",
        [run_id],
    )
    if not rows.rows:
        raise UsageError(f"{database}: no run {run_id} (crawlrunner runs lists them)")
    return rows.rows[0]


def _read_failures(database: Database, run_id: int, mark: str, target: Any) -> None:
    for name, kind, count in query(
        database,
        f"SELECT target, error_kind, count(*) FROM _crawlrunner_fetch_log WHERE run_id = {mark} AND error_kind IS NOT NULL"
        " GROUP BY target, error_kind ORDER BY target, error_kind",
        [run_id],
    ):
        target(name).failures[kind] = int(count)
    # The first failing URLs of each kind, numbered in the database so that a run
    # with a million failures sends only a few of them.
    for name, kind, url in query(
        database,
        "SELECT target, error_kind, url FROM (SELECT target, error_kind, url,"
        " row_number() OVER (PARTITION BY target, error_kind ORDER BY id) AS n"
        f" FROM _crawlrunner_fetch_log WHERE run_id = {mark} AND error_kind IS NOT NULL) AS e"
        f" WHERE n <= {EXAMPLES_PER_KIND} ORDER BY target, error_kind, n",
        [run_id],
    ):
        target(name).examples.setdefault(kind, []).append(str(url))


def _read_latency(database: Database, run_id: int, mark: str, target: Any) -> None:
    # Bucketed in the database: the histogram costs one row per bucket, whatever the run's size.
    cases = " ".join(f"WHEN elapsed_ms < {bound} THEN {i}" for i, bound in enumerate(LATENCY_BOUNDS_MS))
    bucket = f"CASE {cases} ELSE {len(LATENCY_BOUNDS_MS)} END"
    for name, index, count in query(
        database,
        f"SELECT target, {bucket} AS b, count(*) FROM _crawlrunner_fetch_log WHERE run_id = {mark} GROUP BY target, b",
        [run_id],
    ):
        target(name).latency[int(index)] = int(count)


def _read_times(database: Database, run_id: int, mark: str, target: Any) -> None:
    # SQLite keeps ISO text and PostgreSQL a timestamptz: seconds are counted
    # here, streamed, so both read the same and memory grows with seconds, not rows.
    with stream_query(
        database, f"SELECT target, fetched_at FROM _crawlrunner_fetch_log WHERE run_id = {mark}", [run_id]
    ) as rows:
        for name, fetched_at in rows.rows:
            moment = fetched_at if isinstance(fetched_at, datetime) else datetime.fromisoformat(str(fetched_at))
            target(name).per_second[int(moment.timestamp())] += 1


def _read_hosts(database: Database, run_id: int, mark: str) -> tuple[HostWait, ...]:
    rows = query(
        database,
        "SELECT origin, requests, throttled, unavailable, cooldowns, cooldown_seconds, crawl_delay"
        f" FROM _crawlrunner_host_stats WHERE run_id = {mark} ORDER BY origin",
        [run_id],
    )
    return tuple(
        HostWait(str(o), int(r), int(t), int(u), int(c), float(s), None if d is None else float(d))
        for o, r, t, u, c, s, d in rows
    )


def per_interval(per_second: Counter[int], start: int, end: int) -> tuple[int, list[float]]:
    """Requests per second over ``[start, end]``, in at most ``MAX_TIME_BARS`` intervals: (seconds each, rates)."""
    span = end - start + 1
    width = max(1, -(-span // MAX_TIME_BARS))
    counts = [0] * (-(-span // width))
    for second, count in per_second.items():
        counts[(second - start) // width] += count
    return width, [count / width for count in counts]


# ---- rendering -----------------------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#1d2330;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #d8dce4;padding-bottom:4px;margin-top:32px}
h3{font-size:14px;margin:16px 0 4px}table{border-collapse:collapse;margin:4px 0}
td,th{padding:2px 10px 2px 0;text-align:left;vertical-align:top}td.n,th.n{text-align:right}
.facts span{display:inline-block;margin-right:18px}.facts b{font-size:18px}.bad{color:#b3261e}
.charts{display:flex;flex-wrap:wrap;gap:24px}.url{font-family:ui-monospace,monospace;word-break:break-all}
svg rect.bar{fill:#3b6fd8}svg rect.bar.fail{fill:#c8553d}svg text{font-size:10px;fill:#555}
.muted{color:#777}
"""

# Marks each chart the browser laid out (a box with a size), so a headless browser can tell "drawn".
_SCRIPT = """
addEventListener("load",function(){var n=0;document.querySelectorAll("svg.chart").forEach(function(s){
var b=s.getBBox();if(b.width>0&&b.height>0){s.setAttribute("data-drawn","yes");n++;}});
document.body.setAttribute("data-charts-drawn",String(n));});
"""


def render(facts: RunFacts) -> str:
    """The report's HTML for ``facts``."""
    title = f"crawlrunner report: {facts.spec_name}, run {facts.run_id}"
    times = [s for t in facts.targets for s in t.per_second]
    span = (min(times), max(times)) if times else (0, 0)
    parts = [
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>',
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="muted">status {escape(facts.status)}; started {escape(facts.started_at)}'
        f"{'' if facts.finished_at is None else '; finished ' + escape(facts.finished_at)}</p>",
    ]
    if not facts.targets:
        parts.append("<p>This run made no requests.</p>")
    parts.extend(_target_section(t, span) for t in facts.targets)
    parts.append(_hosts_section(facts.hosts))
    parts.append(f"<script>{_SCRIPT}</script></body></html>\n")
    return "\n".join(parts)


def _target_section(t: TargetFacts, span: tuple[int, int]) -> str:
    failed = f'<span class="bad"><b>{t.failed}</b> failed</span>' if t.failed else "<span><b>0</b> failed</span>"
    parts = [
        f'<section class="target" data-target="{escape(t.name)}"><h2>{escape(t.name)}</h2>',
        f'<p class="facts"><span><b>{t.requests}</b> requests</span>{failed}'
        f"<span><b>{t.records}</b> records</span><span><b>{t.bytes}</b> bytes</span></p>",
    ]
    if t.failures:
        rows = "".join(
            f'<tr><td>{escape(kind)}</td><td class="n">{count}</td>'
            f'<td class="url">{"<br>".join(escape(u) for u in t.examples.get(kind, []))}</td></tr>'
            for kind, count in sorted(t.failures.items(), key=lambda item: (-item[1], item[0]))
        )
        parts.append(
            f'<h3>Failures by kind</h3><table class="failures"><tr><th>kind</th><th class="n">requests</th>'
            f"<th>first URLs</th></tr>{rows}</table>"
        )
    labels = [f"<{b}" for b in LATENCY_BOUNDS_MS] + [f"≥{LATENCY_BOUNDS_MS[-1]}"]
    width, rates = per_interval(t.per_second, *span)
    parts.append('<div class="charts">')
    parts.append(_bars("latency", "Latency (ms)", list(zip(labels, map(float, t.latency), strict=True)), "requests"))
    parts.append(
        _bars(
            "rate",
            f"Requests per second ({width} s per bar)",
            [(f"+{i * width} s", r) for i, r in enumerate(rates)],
            "requests/s",
        )
    )
    if t.failures:
        parts.append(_bars("failures", "Failures by kind", [(k, float(n)) for k, n in t.failures.items()], "", True))
    parts.append("</div>")
    parts.append(_health(t))
    parts.append("</section>")
    return "\n".join(parts)


def _health(t: TargetFacts) -> str:
    parts = []
    if t.health:
        rows = "".join(
            f'<tr><td>{escape(name)}</td><td class="n">{records}</td><td class="n{" bad" if empty else ""}">{empty}</td>'
            f'<td class="n">{(empty / records * 100 if records else 0):.0f}%</td></tr>'
            for name, records, empty in t.health
        )
        parts.append(
            '<h3>Extraction health</h3><table class="health"><tr><th>field</th><th class="n">records</th>'
            f'<th class="n">empty</th><th class="n">empty %</th></tr>{rows}</table>'
        )
    if t.chain_ends:
        rows = "".join(f'<tr><td>{escape(r)}</td><td class="n">{n}</td></tr>' for r, n in sorted(t.chain_ends.items()))
        parts.append(
            '<h3>Why pagination stopped</h3><table class="chain-ends"><tr><th>reason</th>'
            f'<th class="n">chains</th></tr>{rows}</table>'
        )
    return "\n".join(parts)


def _hosts_section(hosts: tuple[HostWait, ...]) -> str:
    if not hosts:
        return '<section class="hosts"><h2>Hosts</h2><p class="muted">No host statistics for this run.</p></section>'
    rows = "".join(
        f'<tr><td class="url">{escape(h.origin)}</td><td class="n">{h.requests}</td><td class="n">{h.throttled}</td>'
        f'<td class="n">{h.unavailable}</td><td class="n">{h.cooldowns}</td><td class="n">{h.cooldown_seconds:.1f}</td>'
        f'<td class="n">{"" if h.crawl_delay is None else f"{h.crawl_delay:g}"}</td></tr>'
        for h in hosts
    )
    chart = _bars("waits", "Time waited per host (s)", [(h.origin, h.cooldown_seconds) for h in hosts], "s")
    return (
        '<section class="hosts"><h2>Hosts</h2><p class="muted">Per origin, for the whole run: 429 (throttled) and 503'
        " (unavailable) answers, the cooldowns they called for and the seconds waited, and robots.txt's Crawl-delay.</p>"
        '<table class="host-waits"><tr><th>origin</th><th class="n">requests</th><th class="n">429</th>'
        '<th class="n">503</th><th class="n">cooldowns</th><th class="n">waited s</th><th class="n">crawl-delay</th></tr>'
        f'{rows}</table><div class="charts">{chart}</div></section>'
    )


def _bars(kind: str, title: str, values: list[tuple[str, float]], unit: str, failing: bool = False) -> str:
    """A bar chart as inline SVG: one ``rect.bar`` per value, its label and value in a ``<title>`` tooltip."""
    height, top, bottom, step = 120.0, 14.0, 16.0, max(8.0, min(36.0, 540.0 / max(1, len(values))))
    width = step * len(values) + 8
    peak = max((v for _, v in values), default=0.0) or 1.0
    bars = []
    for i, (label, value) in enumerate(values):
        h = (height - top - bottom) * value / peak
        x, y = 4 + i * step, height - bottom - h
        bars.append(
            f'<rect class="bar{" fail" if failing else ""}" x="{x:.1f}" y="{y:.1f}" width="{step - 2:.1f}"'
            f' height="{h:.1f}"><title>{escape(label)}: {value:g} {escape(unit)}</title></rect>'
        )
    # The first and last labels only: the others are in the tooltips, and would overlap.
    axis = "".join(
        f'<text x="{x:.0f}" y="{height - 3:.0f}" text-anchor="{anchor}">{escape(label)}</text>'
        for (label, _), x, anchor in zip(values[:1] + values[1:][-1:], (4, width - 4), ("start", "end"), strict=False)
    )
    return (
        f'<figure><h3>{escape(title)}</h3><svg class="chart" data-chart="{kind}" data-bars="{len(values)}"'
        f' width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img">'
        f'<text x="4" y="10">max {peak:g}</text><line x1="2" x2="{width:.0f}" y1="{height - bottom:.0f}"'
        f' y2="{height - bottom:.0f}" stroke="#999"/>{"".join(bars)}{axis}</svg></figure>'
    )
