"""Expectations: what a run must have produced, checked when it ends.

A crawl that silently breaks when a site changes its layout (no records,
null prices, a wall of 404s) fails loudly instead: unmet expectations are
listed and ``crawlrunner run`` exits with status 3.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .spec.model import Target


@dataclass(frozen=True)
class TargetFacts:
    """What one run did for one target, read back from the database."""

    records: int
    requests: int
    failed: int
    nulls: Mapping[str, int] = field(default_factory=dict)


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
    return problems
