"""Latency histograms and per-target / run-wide counters."""

from __future__ import annotations

import math
import random

import pytest

from crawlrunner.results import FetchResult, Outcome
from crawlrunner.stats import LatencyHistogram, RunStats, TargetStats


def exact_percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least q% of the data at or below it."""
    ordered = sorted(values)
    rank = max(1, math.ceil(len(ordered) * q / 100))
    return ordered[rank - 1]


def histogram_of(values: list[float]) -> LatencyHistogram:
    histogram = LatencyHistogram()
    for value in values:
        histogram.add(value)
    return histogram


# --- LatencyHistogram -----------------------------------------------------------


def test_empty_histogram_has_no_percentiles() -> None:
    histogram = LatencyHistogram()
    assert histogram.percentile(50) is None
    assert histogram.total == 0


@pytest.mark.parametrize(
    "values",
    [
        [i / 1000 for i in range(1, 1001)],  # 1 ms .. 1 s, evenly
        [0.003] * 900 + [0.250] * 90 + [4.0] * 10,  # a fast majority and a slow tail
        [random.Random(7).lognormvariate(-3, 1.2) for _ in range(5000)],  # realistic skew
        [0.0005 * (1.3**i) for i in range(40)],  # spread over five decades
    ],
    ids=["uniform", "bimodal", "lognormal", "geometric"],
)
@pytest.mark.parametrize("q", [1, 10, 50, 90, 95, 99, 99.9, 100])
def test_percentiles_are_within_five_percent_of_the_exact_value(values: list[float], q: float) -> None:
    histogram = histogram_of(values)
    exact = exact_percentile(values, q)
    estimate = histogram.percentile(q)
    assert estimate is not None
    assert abs(estimate - exact) <= 0.05 * exact, (q, estimate, exact)
    # The estimate is the upper edge of a bucket: never below the true value.
    assert estimate >= exact * (1 - 1e-9)


def test_percentile_100_is_the_maximum() -> None:
    values = [0.010, 0.020, 0.7123]
    assert histogram_of(values).percentile(100) == 0.7123


def test_single_value() -> None:
    histogram = histogram_of([0.123])
    for q in (0, 1, 50, 100):
        assert histogram.percentile(q) == pytest.approx(0.123, rel=0.05)
    assert histogram.maximum == 0.123
    assert histogram.total == 1


def test_tiny_and_zero_latencies_land_in_the_first_bucket() -> None:
    histogram = histogram_of([0.0, 0.00001, 0.0001])
    assert histogram.counts[0] == 3
    assert histogram.percentile(50) == 0.0001


def test_huge_latency_is_clamped_to_the_last_bucket_not_lost() -> None:
    histogram = histogram_of([1e9])
    assert histogram.counts[-1] == 1
    assert histogram.total == 1
    assert histogram.maximum == 1e9


def test_merge_equals_adding_everything_to_one_histogram() -> None:
    a_values = [i / 997 for i in range(1, 400)]
    b_values = [i / 31 for i in range(1, 50)]
    merged = histogram_of(a_values)
    merged.merge(histogram_of(b_values))
    together = histogram_of(a_values + b_values)
    assert merged.counts == together.counts
    assert merged.total == together.total == len(a_values) + len(b_values)
    assert merged.maximum == together.maximum
    for q in (50, 90, 99):
        assert merged.percentile(q) == together.percentile(q)


def test_memory_is_constant() -> None:
    histogram = histogram_of([i / 10_000 for i in range(1, 20_000)])
    assert len(histogram.counts) == len(LatencyHistogram().counts)


# --- TargetStats / RunStats -------------------------------------------------------


def outcome(
    target: str,
    *,
    body: bytes = b"",
    elapsed: float = 0.1,
    error_kind: str | None = None,
    records: int = 0,
    dropped: int = 0,
    field_errors: int = 0,
) -> Outcome:
    fetch = FetchResult(
        target=target,
        method="GET",
        url=f"https://example.com/{target}",
        fetched_at="2024-01-01T00:00:00.000+00:00",
        body=body,
        elapsed=elapsed,
        error_kind=error_kind,
    )
    return Outcome(fetch, records=[{"n": i} for i in range(records)], dropped=dropped, field_errors=field_errors)


def test_target_stats_counts_everything() -> None:
    stats = TargetStats()
    stats.add(outcome("a", body=b"x" * 100, elapsed=0.2, records=3, dropped=1, field_errors=2))
    stats.add(outcome("a", body=b"x" * 50, elapsed=0.4, records=2))
    stats.add(outcome("a", elapsed=1.0, error_kind="timeout"))
    stats.add(outcome("a", elapsed=0.3, error_kind="http_status"))
    stats.add(outcome("a", elapsed=0.3, error_kind="timeout"))
    assert (stats.requests, stats.ok, stats.failed) == (5, 2, 3)
    assert (stats.records, stats.dropped, stats.field_errors) == (5, 1, 2)
    assert stats.bytes == 150
    assert stats.failures == {"timeout": 2, "http_status": 1}
    assert stats.latency.total == 5
    assert stats.latency.maximum == 1.0


def test_extract_error_counts_as_a_failure() -> None:
    stats = TargetStats()
    stats.add(outcome("a", body=b"not json", error_kind="extract_error"))
    assert (stats.ok, stats.failed, stats.bytes) == (0, 1, 8)
    assert stats.failures == {"extract_error": 1}


def test_run_stats_keeps_targets_apart_and_totals_them() -> None:
    run = RunStats()
    run.add(outcome("products", body=b"12345", elapsed=0.010, records=10, dropped=1))
    run.add(outcome("products", body=b"123", elapsed=0.020, records=5, field_errors=4))
    run.add(outcome("pages", body=b"1", elapsed=2.0, error_kind="connect_error"))
    run.add(outcome("pages", elapsed=0.5, records=1))

    assert list(run.targets) == ["products", "pages"]
    products, pages = run.targets["products"], run.targets["pages"]
    assert (products.requests, products.ok, products.failed, products.records) == (2, 2, 0, 15)
    assert (pages.requests, pages.ok, pages.failed, pages.records) == (2, 1, 1, 1)
    assert pages.failures == {"connect_error": 1}

    totals = run.totals
    assert (totals.requests, totals.ok, totals.failed) == (4, 3, 1)
    assert (totals.records, totals.dropped, totals.field_errors, totals.bytes) == (16, 1, 4, 9)
    assert totals.failures == {"connect_error": 1}
    assert totals.latency.total == 4
    assert totals.latency.maximum == 2.0
    assert totals.latency.percentile(100) == 2.0


def test_totals_do_not_change_the_per_target_stats() -> None:
    run = RunStats()
    run.add(outcome("a", records=1))
    run.add(outcome("b", records=2))
    first = run.totals
    second = run.totals
    assert first.records == second.records == 3
    assert run.targets["a"].records == 1
    assert run.targets["a"].latency.total == 1


def test_empty_run_totals() -> None:
    totals = RunStats().totals
    assert (totals.requests, totals.ok, totals.failed, totals.records) == (0, 0, 0, 0)
    assert totals.latency.percentile(50) is None
