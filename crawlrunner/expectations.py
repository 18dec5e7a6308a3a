"""Expectations and extraction health: what a run must have produced, checked when it ends.

A crawl that silently breaks when a site changes its layout (no records,
null prices, pagination that stops after page 1, a wall of 404s) fails
loudly instead. Two kinds of checks, both read back from the database once
the run is finished, both listed in the summary and making ``crawlrunner
run`` exit with status 3:

- **Extraction health**, always on: a field empty in every record of a
  target with at least ``HEALTH_MIN_RECORDS`` records, a records selector
  that matched nothing on any page (not for ``incremental`` targets, where
  an empty page is the quiet state), pagination that never found a second
  page (not for ``incremental`` targets either: one page of changes is
  common). ``expect: {allow_empty: [field]}`` silences one field,
  ``expect: {health: false}`` the whole target.
- **Expectations**, as the spec states them (``expect``): ``min_records``,
  ``not_null``, ``max_failed_ratio``, ``truncated_chains`` and ``drift``
  against the last completed run of the same spec.

The facts are those of the whole logical run: every session of a resumed
run, and for a ``--retry-failed`` run, the run it retries as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .results import TRUNCATING_STOPS, ChainStop
from .selectors import Selector
from .spec.model import Change, Target

# A field empty in every record is reported from this many records on: below
# it, an optional field can be missing from every record by chance.
HEALTH_MIN_RECORDS = 5
# Truncated chains named in a fact, for the summary (the chain_ends table has them all).
TRUNCATED_EXAMPLES = 5


@dataclass(frozen=True)
class Baseline:
    """What the last completed earlier run of the spec stored for a target: drift compares with it."""

    run_id: int
    records: int
    empty: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetFacts:
    """What one logical run did for one target, read back from the database."""

    records: int
    requests: int
    failed: int
    nulls: Mapping[str, int] = field(default_factory=dict)  # field → records where it is empty
    documents: int = 0  # successful pages the records selector ran on
    empty_documents: int = 0  # of those, the pages where it found nothing
    chain_ends: Mapping[str, int] = field(default_factory=dict)  # ChainStop → chains that ended so
    first_page_no_next: int = 0  # chains that found no next page on their first page
    truncated: tuple[tuple[str, str], ...] = ()  # (reason, last URL) of the first truncated chains
    previous: Baseline | None = None
    sitemap_cuts: int = 0  # sitemap documents a limit cut short (max_urls, max_depth, max_bytes)
    sitemap_cut_examples: tuple[tuple[str, str], ...] = ()  # (URL, fetch_log.error) of the first ones
    unfollowed: int = 0  # new links follow.max_pages left out (fetch_log.unfollowed: once per page they were on)

    @property
    def chains(self) -> int:
        return sum(self.chain_ends.values())

    @property
    def truncated_chains(self) -> int:
        return sum(count for reason, count in self.chain_ends.items() if reason in TRUNCATING_STOPS)


def describe(selector: Selector | None) -> str:
    """A selector as the spec wrote it, for messages: ``li.product`` (css)."""
    if selector is None:
        return "(no selector)"
    return f"`{selector.source}` ({selector.language})"


def health_problems(target: Target, facts: TargetFacts) -> list[str]:
    """What looks broken in the target's extraction: the silent failures a site change causes."""
    expect = target.expect
    if target.extract is None or (expect is not None and not expect.health):
        return []
    allowed = set(expect.allow_empty) if expect is not None else set()
    problems = []
    extract = target.extract
    every_page_empty = bool(facts.documents) and facts.empty_documents == facts.documents
    # An incremental API answers "nothing changed since" with an empty page:
    # its quiet state, not a broken selector.
    if extract.records is not None and every_page_empty and target.incremental is None:
        pages = "the page" if facts.documents == 1 else f"any of the {facts.documents} pages"
        problems.append(f"{target.name}: the records selector {describe(extract.records)} matched nothing on {pages}")
    elif facts.records >= HEALTH_MIN_RECORDS:
        for f in extract.fields:
            if f.name not in allowed and facts.nulls.get(f.name, 0) == facts.records:
                where = f" from {describe(f.selector)}" if f.selector is not None else ""
                problems.append(f"{target.name}.{f.name}: empty in all {facts.records} records{where}")
    paginate = target.paginate
    # Every chain stopped on its first page for want of a next page: a
    # next-page selector that never matched looks exactly like this; so
    # does an incremental run with one page of changes, which is fine.
    if (
        paginate is not None and target.incremental is None
        and facts.chains and facts.first_page_no_next == facts.chains and facts.records
    ):  # fmt: skip
        chains = "its only chain" if facts.chains == 1 else f"all {facts.chains} chains"
        how = f" with next {describe(paginate.next)}" if paginate.next is not None else ""
        problems.append(
            f"{target.name}: pagination ({paginate.type}{how}) never found a next page: {chains} stopped after page 1"
        )
    return problems


def unfollowed_note(target: Target, facts: TargetFacts) -> str | None:
    """``docs: follow.max_pages 20 reached: 11 links not followed``, or None when nothing was left out."""
    if target.follow is None or not facts.unfollowed:
        return None
    links = "link" if facts.unfollowed == 1 else "links"
    return f"{target.name}: follow.max_pages {target.follow.max_pages} reached: {facts.unfollowed} {links} not followed"


def conversion_problems(
    target: Target, facts: TargetFacts, unconverted: Mapping[str, int], examples: Mapping[str, str]
) -> list[str]:
    """Fields whose ``type`` refused most values: stored as null, which looks like data but is a broken rule.

    ``unconverted`` counts this session's refusals (a resumed run's earlier
    sessions are not in it), against the whole run's records.
    """
    expect = target.expect
    if target.extract is None or (expect is not None and not expect.health) or facts.records < HEALTH_MIN_RECORDS:
        return []
    allowed = set(expect.allow_empty) if expect is not None else set()
    problems = []
    for f in target.extract.fields:
        count = unconverted.get(f.name, 0)
        if facts.nulls.get(f.name) == facts.records:
            continue  # empty in every record: ``health_problems`` says so already
        if f.name not in allowed and count * 2 > facts.records:
            example = f" ({examples[f.name]})" if f.name in examples else ""
            problems.append(
                f"{target.name}.{f.name}: {count} of {facts.records} values could not be converted to"
                f" {f.type}{example}; stored as null"
            )
    return problems


def unmet(target: Target, facts: TargetFacts) -> list[str]:
    """Every expectation of ``target`` the facts do not meet, as sentences."""
    expect = target.expect
    if expect is None:
        return []
    problems = []
    if expect.min_records is not None and facts.records < expect.min_records:
        problems.append(f"{target.name}: {facts.records} records, expected at least {expect.min_records}")
    for name in expect.not_null:
        count = facts.nulls.get(name, 0)
        if count:
            problems.append(f"{target.name}: {count} of {facts.records} records have no {name}")
    if expect.max_failed_ratio is not None and facts.requests:
        ratio = facts.failed / facts.requests
        if ratio > expect.max_failed_ratio:
            problems.append(
                f"{target.name}: {facts.failed} of {facts.requests} requests failed ({ratio:.1%}),"
                f" expected at most {expect.max_failed_ratio:.1%}"
            )
    if expect.truncated_chains is not None and facts.truncated_chains > expect.truncated_chains:
        cut = ", ".join(f"{r} {n}" for r, n in sorted(facts.chain_ends.items()) if r in TRUNCATING_STOPS)
        problems.append(
            f"{target.name}: {facts.truncated_chains} pagination chains cut short ({cut}),"
            f" expected at most {expect.truncated_chains}"
        )
    problems += _drifted(target, facts)
    return problems


def drift_note(target: Target, facts: TargetFacts) -> str | None:
    """Why drift could not be checked (no earlier completed run), or None."""
    if target.expect is None or target.expect.drift is None or facts.previous is not None:
        return None
    return f"{target.name}: drift not checked: no earlier completed run of this spec crawled it"


def _drifted(target: Target, facts: TargetFacts) -> list[str]:
    assert target.expect is not None
    drift, before = target.expect.drift, facts.previous
    if drift is None or before is None:
        return []
    problems = []
    if drift.records is not None:
        change = _relative_change(before.records, facts.records)
        if change is not None and drift.records.exceeded_by(change):
            problems.append(
                f"{target.name}: {facts.records} records against {before.records} in run {before.run_id}"
                f" ({change:+.1f}%), more than the {drift.records} drift allowed"
            )
    for name, tolerance in drift.empty.items():
        now = _share(facts.nulls.get(name, 0), facts.records)
        then = _share(before.empty.get(name, 0), before.records)
        if now is None or then is None:
            continue
        points = now - then
        if tolerance.exceeded_by(points):
            problems.append(
                f"{target.name}.{name}: empty in {now:.1f}% of records against {then:.1f}% in run"
                f" {before.run_id} ({points:+.1f} points), more than the {_points(tolerance)} drift allowed"
            )
    return problems


def _relative_change(before: int, now: int) -> float | None:
    """``now`` against ``before`` in percent; None when there is nothing to compare with."""
    if before == 0:
        return None if now == 0 else float("inf")
    return (now - before) / before * 100


def _share(count: int, total: int) -> float | None:
    return count / total * 100 if total else None


def _points(change: Change) -> str:
    return str(change).replace("%", " points")


def stop_counts(facts: TargetFacts) -> str:
    """``no_next 12, max_pages 1``: how the target's chains ended, most telling first."""
    order = [str(reason) for reason in ChainStop]
    return ", ".join(
        f"{reason} {count}" for reason, count in sorted(facts.chain_ends.items(), key=lambda rc: order.index(rc[0]))
    )
