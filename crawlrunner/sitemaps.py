"""Sitemaps as seeds: what a sitemap document (or robots.txt) leads to, and the run-wide budget.

::

    sitemap document ──read as a stream──▶ nested sitemaps  (role SITEMAP, depth + 1; none past max_depth)
                      (document.sitemap)   page requests    (role None: rendered like seed rows, {url} {lastmod})
    robots.txt (role SITEMAP) ──Sitemap: lines──▶ sitemaps  (depth 0)

A sitemap document is a request like any other (politeness, retries, auth,
the fetch log); ``read_document`` is its extract stage: no records, and the
requests it leads to go back to the frontier as derived requests, so resume,
``--retry-failed`` and many workers treat them as they treat followed links.

Limits, when reached, cut and say so (the document's ``fetch_log.error``,
the log, the run summary) and the run goes on: ``max_bytes`` stops reading a
document, ``max_depth`` refuses nested sitemaps, and ``max_urls`` counts
page URLs per run and target: within one document here, across documents in
the frontier (``SitemapScope``; on PostgreSQL, the sink, under a lock).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from math import prod
from urllib.parse import urljoin, urlsplit

from protego import Protego

from .document.sitemap import SitemapReader, chunks_of, modified_since
from .errors import ErrorKind, ExtractError
from .expectations import TargetFacts
from .follow import normalize_url
from .plan import ROBOTS_PATH, SITEMAP, RequestPlan, sitemap_document, sitemap_page_requests
from .results import FetchResult, Outcome, SitemapCut
from .spec.model import Sitemaps, Target

log = logging.getLogger(__name__)

# The start of every sitemap limit's text in ``fetch_log.error``: how the summary finds them.
LIMIT_PREFIX = "sitemap limit: "
MAX_ROBOTS_BYTES = 512 * 1024  # as much of a robots.txt as is read for its Sitemap: lines
NO_SITEMAPS = "robots.txt lists no sitemap"


def is_robots(plan: RequestPlan) -> bool:
    """Whether a request of role SITEMAP is the robots.txt read for its ``Sitemap:`` lines."""
    return plan.depth == 0 and urlsplit(plan.url).path == ROBOTS_PATH


@dataclass(frozen=True)
class LastRun:
    """What ``since: last_run`` stands for: the start of the last run that crawled the target without a failure.

    ``run_id`` is that run (for a ``--retry-failed`` run, the crawl it
    retried); how it is found: ``backends.sitemap_runs``.
    """

    run_id: int
    started: datetime


def since_cutoff(rules: Sitemaps, last_run: LastRun | None) -> datetime | None:
    """The time ``since`` stands for in this run: as written, or the target's ``last_run`` (None: keep all)."""
    if rules.since == "last_run":
        return last_run.started if last_run is not None else None
    return rules.since


def read_document(plan: RequestPlan, fetch: FetchResult, *, since: datetime | None = None) -> Outcome:
    """A sitemap document's outcome: no records; derived, the sitemaps and pages it lists.

    A document that is not a sitemap (or refuses to be read: a DOCTYPE, a
    broken gzip) fails as ``extract_error`` and leads nowhere. ``since``
    drops pages whose ``lastmod`` is older.
    """
    outcome = Outcome(fetch, plan)
    if is_robots(plan):
        _robots_sitemaps(plan, fetch, outcome)
        return outcome
    if not fetch.ok or fetch.status == 304:
        return outcome
    try:
        _read_sitemap(plan, fetch, outcome, since)
    except ExtractError as exc:
        fetch.error_kind, fetch.error = exc.kind, str(exc)
        outcome.derived, outcome.sitemap_cut = [], None
    return outcome


def _robots_sitemaps(plan: RequestPlan, fetch: FetchResult, outcome: Outcome) -> None:
    """The sitemaps robots.txt lists, as documents of depth 0; a missing robots.txt lists none, and is no failure."""
    if fetch.error_kind == ErrorKind.HTTP_STATUS and fetch.status is not None and 400 <= fetch.status < 500:
        # RFC 9309: a robots.txt that is not there is no error; it just lists nothing.
        fetch.error_kind, fetch.error = None, f"no robots.txt (HTTP {fetch.status}): {NO_SITEMAPS}"
        return
    if not fetch.ok or fetch.status == 304:
        return
    body = fetch.body[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace")
    found = {urljoin(plan.url, url.strip()) for url in Protego.parse(body).sitemaps}
    urls = sorted(url for url in found if normalize_url(url) is not None)
    if not urls:
        fetch.error = NO_SITEMAPS
    outcome.derived = [sitemap_document(plan.target, url) for url in urls]


def _read_sitemap(plan: RequestPlan, fetch: FetchResult, outcome: Outcome, since: datetime | None) -> None:
    target = plan.target
    rules = target.sitemap
    assert rules is not None
    reader = SitemapReader(rules.max_bytes, truncated=fetch.size > rules.max_bytes)
    base = fetch.final_url or fetch.url
    cut = SitemapCut()
    documents: dict[str, RequestPlan] = {}
    pages: list[RequestPlan] = []
    seen: set[str] = set()
    older = taken = 0
    for entry in reader.entries(chunks_of(fetch.body)):
        url = normalize_url(urljoin(base, entry.url))
        if url is None or url in seen:
            continue  # not an http(s) URL, or listed twice
        seen.add(url)
        if entry.is_sitemap:
            if plan.depth >= rules.max_depth:
                cut.sitemaps += 1
            else:
                documents[url] = sitemap_document(target, url, depth=plan.depth + 1)
        elif since is not None and not modified_since(entry.lastmod, since):
            older += 1
        elif taken >= rules.max_urls:  # the run's own count is the frontier's: no document needs more
            cut.urls += 1
        else:
            taken += 1
            pages.extend(sitemap_page_requests(target, {"url": url, "lastmod": entry.lastmod or ""}))
    if reader.cut:
        cut.bytes_read = reader.read
    if older:
        log.info("%s: %d URLs of %s last modified before %s: not fetched", target.name, older, base, since)
    outcome.derived = [*documents.values(), *pages]
    if cut.bytes_read is not None or cut.sitemaps or cut.urls:
        outcome.sitemap_cut = cut
        outcome.fetch.error = describe_cut(cut, rules)  # logged by the frontier, once the run's max_urls adds its part


def note_cut(outcome: Outcome) -> None:
    """Say what the document's limits left out, all of it: in its fetch-log error (a warning: the fetch succeeded) and
    the log, once."""
    cut, plan = outcome.sitemap_cut, outcome.plan
    assert cut is not None and plan is not None and plan.target.sitemap is not None
    text = describe_cut(cut, plan.target.sitemap)
    outcome.fetch.error = text
    log_cut(plan.target.name, text, plan.url)


def log_cut(target: str, text: str, url: str) -> None:
    """The one warning a document a limit cut gets, with every limit it reached."""
    log.warning("%s: %s (%s)", target, text, url)


def describe_cut(cut: SitemapCut, rules: Sitemaps) -> str:
    """``sitemap limit: max_urls 1,000,000 reached; 2,345 URLs not fetched``, each limit reached."""
    parts = []
    if cut.bytes_read is not None:
        parts.append(f"max_bytes {rules.max_bytes:,} reached; the rest of the document was not read")
    if cut.sitemaps:
        parts.append(f"max_depth {rules.max_depth} reached; {_count(cut.sitemaps, 'nested sitemap')} not read")
    if cut.urls:
        parts.append(f"max_urls {rules.max_urls:,} reached; {_count(cut.urls, 'URL')} not fetched")
    return LIMIT_PREFIX + "; ".join(parts)


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'s' if number != 1 else ''}"


def requests_per_url(target: Target) -> int:
    """How many requests one page URL of a sitemap becomes: one per URL template and combination of vars."""
    return len(target.request.urls) * prod(len(values) for _, values in target.vars)


def split_pages(outcome: Outcome, room: int) -> tuple[list[RequestPlan], int, int]:
    """The requests of a sitemap document's outcome that fit ``room`` more page URLs: (requests, URLs taken, URLs left out).

    Nested sitemaps always fit (``max_depth`` bounds them). Changes nothing:
    a writer that may run twice (a commit tried again) can call it twice.
    """
    per_url = requests_per_url(outcome.plan.target) if outcome.plan is not None else 1
    documents = [r for r in outcome.derived if r.role == SITEMAP]
    pages = [r for r in outcome.derived if r.role != SITEMAP]
    urls = -(-len(pages) // per_url)
    room = max(room, 0)
    if urls <= room:
        return documents + pages, urls, 0
    return documents + pages[: room * per_url], room, urls - room


def with_left_out(outcome: Outcome, urls: int) -> SitemapCut:
    """The document's cut, with ``urls`` more page URLs the run's ``max_urls`` left out (a copy)."""
    cut = outcome.sitemap_cut or SitemapCut()
    return replace(cut, urls=cut.urls + urls)


@dataclass
class SitemapScope:
    """One sitemap target's run-wide state in a frontier: the documents it read, and the page URLs it took.

    A document is read once per run, however many indexes or robots.txt
    files list it; ``urls`` counts against ``max_urls``. A resumed run starts
    from what its earlier sessions saved.
    """

    rules: Sitemaps
    documents: set[str] = field(default_factory=set)
    urls: int = 0

    def remember(self, url: str) -> None:
        """A sitemap an earlier part of this run already requested (resume)."""
        self.documents.add(normalize_url(url) or url)

    def admit_document(self, plan: RequestPlan) -> bool:
        """Register a sitemap document; False if the run already read (or queued) it."""
        url = normalize_url(plan.url) or plan.url
        if url in self.documents:
            return False
        self.documents.add(url)
        return True

    def admit(self, outcome: Outcome) -> list[RequestPlan]:
        """The requests a document's outcome may add: sitemaps not read yet, pages within ``max_urls``.

        Pages the run's ``max_urls`` leaves out are noted on the outcome (its cut, its fetch-log error).
        """
        outcome.derived = [r for r in outcome.derived if r.role != SITEMAP or self.admit_document(r)]
        kept, taken, left_out = split_pages(outcome, self.rules.max_urls - self.urls)
        self.urls += taken
        if left_out:
            outcome.sitemap_cut = with_left_out(outcome, left_out)
        if outcome.sitemap_cut is not None:
            note_cut(outcome)
        return kept


def limit_notes(target: str, facts: TargetFacts) -> list[str]:
    """The summary's notes on a target's sitemap documents that limits cut short (the first few, and how many)."""
    if not facts.sitemap_cuts:
        return []
    notes = [f"sitemaps: {target}: {_count(facts.sitemap_cuts, 'document')} cut short by a limit:"]
    notes += [f"  - {url}: {error.removeprefix(LIMIT_PREFIX)}" for url, error in facts.sitemap_cut_examples]
    more = facts.sitemap_cuts - len(facts.sitemap_cut_examples)
    if more > 0:
        notes.append(f"  - and {more} more (see fetch_log.error)")
    return notes
