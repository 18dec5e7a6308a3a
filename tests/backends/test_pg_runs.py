"""Runs on a PostgreSQL output through the library API: a fresh run, the resume a restart is, a retry of failures.

One process here; the many-process guarantees (kill -9, SIGSTOP, politeness
across workers) are in tests/distributed.
"""

from __future__ import annotations

import pytest

import crawlrunner
from crawlrunner.spec import load_spec_text
from crawlrunner.spec.model import Spec

pytestmark = pytest.mark.timeout(120)


def _spec(server: str, *, failing: bool = True) -> Spec:
    urls = "[/json/item/1, /json/item/2, /status/503]" if failing else "[/json/item/1, /json/item/2]"
    return load_spec_text(
        f"""
name: pg-runs
http: {{base_url: "{server}", retry: null}}
targets:
  - name: items
    urls: {urls}
    mode: upsert
    key: [id]
    extract: {{fields: {{id: {{jmespath: id, type: int}}, name: name, active: {{jmespath: active, type: bool}}}}}}
  - name: lists
    url: /json/list/{{n}}?size=5
    vars: {{n: {{from: 1, to: 4}}}}
    extract:
      records: items
      fields: {{id: {{jmespath: id, type: int}}, tags: {{jmespath: tags, many: true}}}}
"""
    )


def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    return list(crawlrunner.query(url, sql))


def test_a_run_stores_typed_rows_and_its_counts(server: str, pg_url: str) -> None:
    result = crawlrunner.run(_spec(server), output=pg_url)
    assert result.status == "completed"
    assert result.run_totals == (7, 22)  # 3 item requests (1 failed), 4 list pages of 5
    assert result.failed_by_target == {"items": 1}
    assert _rows(pg_url, "SELECT id, name, active FROM items ORDER BY id") == [
        (1, "item 1", False),
        (2, "item 2", True),
    ]
    assert _rows(pg_url, "SELECT count(DISTINCT id), count(*) FROM lists") == [(20, 20)]
    assert _rows(pg_url, "SELECT tags FROM lists WHERE id = 3") == [('["t", "3"]',)]
    (run,) = crawlrunner.list_runs(pg_url).records()
    assert (run["status"], run["requests"], run["ok"], run["failed"], run["records"]) == ("completed", 7, 6, 1, 22)
    assert run["workers"] == 0  # the one worker left


def test_starting_again_after_an_early_stop_resumes_the_run(server: str, pg_url: str) -> None:
    from crawlrunner import runtime

    spec = _spec(server, failing=False)
    stopped = runtime.run(crawlrunner.run_async(spec, output=pg_url, max_requests=3))
    assert stopped.status == "limited"
    again = crawlrunner.run(spec, output=pg_url)
    assert again.run_id == stopped.run_id  # the same run, continued: no second crawl
    assert again.status == "completed"
    assert _rows(pg_url, "SELECT count(*), count(DISTINCT id) FROM lists") == [(20, 20)]
    assert _rows(pg_url, "SELECT count(*) FROM _crawlrunner_fetch_log") == [(6,)]  # nothing fetched twice
    assert _rows(pg_url, "SELECT resumed FROM _crawlrunner_runs") == [(1,)]


def test_retry_failed_fetches_only_what_the_last_run_failed(server: str, pg_url: str) -> None:
    first = crawlrunner.run(_spec(server), output=pg_url)
    assert first.failed_by_target == {"items": 1}
    retry = crawlrunner.run(_spec(server), output=pg_url, retry_failed=True)
    assert retry.run_id != first.run_id
    assert _rows(pg_url, f"SELECT url, status FROM _crawlrunner_fetch_log WHERE run_id = {retry.run_id}") == [
        (f"{server}/status/503", 503)
    ]
    assert _rows(pg_url, f"SELECT retry_of, status FROM _crawlrunner_runs WHERE id = {retry.run_id}") == [
        (first.run_id, "completed")
    ]
    # Its rows are not a whole crawl: the upsert table keeps the first run's rows as they were.
    assert _rows(pg_url, "SELECT count(*) FROM items") == [(2,)]


def test_resume_of_a_completed_run_does_nothing(server: str, pg_url: str) -> None:
    spec = _spec(server, failing=False)
    done = crawlrunner.run(spec, output=pg_url)
    again = crawlrunner.run(spec, output=pg_url, resume=True)
    assert again.already_completed and again.run_id == done.run_id
    assert _rows(pg_url, "SELECT count(*) FROM _crawlrunner_fetch_log") == [(6,)]


def test_resume_without_any_run_is_refused(server: str, pg_url: str) -> None:
    with pytest.raises(crawlrunner.UsageError, match="no unfinished run"):
        crawlrunner.run(_spec(server), output=pg_url, resume=True)


def test_joining_a_run_that_stopped_is_refused_and_one_that_completed_is_nothing_to_do(
    server: str, pg_url: str
) -> None:
    from crawlrunner import runtime

    spec = _spec(server, failing=False)
    stopped = runtime.run(crawlrunner.run_async(spec, output=pg_url, max_requests=2))
    assert stopped.status == "limited"
    with pytest.raises(crawlrunner.UsageError, match=f"run {stopped.run_id} is limited"):
        runtime.run(crawlrunner.run_async(spec, output=pg_url, join=stopped.run_id))
    done = crawlrunner.run(spec, output=pg_url)  # the resume a restart is
    joined = runtime.run(crawlrunner.run_async(spec, output=pg_url, join=done.run_id))
    assert joined.already_completed and joined.status == "completed"
