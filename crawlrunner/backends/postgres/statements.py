"""The statements of the cluster's coordination: claiming, loading, fencing, reaping.

The queries that carry the exactly-once guarantee are here, next to each
other, so that they can be read (and reviewed) as one protocol::

    load   plan → requests (pending)            one worker per target at a time (FOR UPDATE SKIP LOCKED)
    claim  pending → leased, a fresh token      FOR UPDATE SKIP LOCKED: workers never wait for each other
    fence  leased (same token) → done/failed    in the transaction that writes the outcome's records
    reap   leased by a dead worker → pending    its token dies with it: a late commit is dropped

The data rows (records, history, validators, bodies) are ``records.py``'s;
the politeness rows are ``hosts.py``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..rows import COLUMNS, select_columns

if TYPE_CHECKING:
    import asyncpg

# The request columns written, as ``backends.rows.request_row`` lays them out
# (less the id, which the database gives), with PostgreSQL's array types for unnest.
_REQUEST_TYPES = {
    "run_id": "bigint", "target": "text", "state": "text", "seq": "bigint", "method": "text", "url": "text",
    "headers": "text", "body": "text", "depth": "integer", "page": "integer", "chain_pages": "integer",
    "chain_items": "integer", "parent": "text", "role": "text",
}  # fmt: skip
_WRITTEN = [c for c in COLUMNS if c != "id"]
assert set(_WRITTEN) == set(_REQUEST_TYPES), "backends.rows.COLUMNS changed: map the new column's type here"

INSERT_REQUESTS = (
    f"INSERT INTO _crawlrunner_requests ({', '.join(_WRITTEN)}, reason, priority)"
    f" SELECT * FROM unnest({', '.join(f'${i}::{_REQUEST_TYPES[c]}[]' for i, c in enumerate(_WRITTEN, 1))},"
    f" ${len(_WRITTEN) + 1}::text[], ${len(_WRITTEN) + 2}::smallint[])"
    " ON CONFLICT (run_id, target, seq) WHERE seq IS NOT NULL DO NOTHING"
)

# Derived requests (next pages, links, children) before start requests, as the
# in-process frontier serves them: chains keep moving and the queue stays short.
DERIVED, START = 0, 1

CLAIM = f"""
WITH picked AS (
    SELECT id FROM _crawlrunner_requests
    WHERE run_id = $1 AND state = 'pending' AND target = ANY($3::text[])
    ORDER BY priority, id
    LIMIT $4
    FOR UPDATE SKIP LOCKED
)
UPDATE _crawlrunner_requests AS r
SET state = 'leased', lease_owner = $2, lease_token = nextval('_crawlrunner_lease_tokens'), claims = r.claims + 1
FROM picked WHERE r.id = picked.id
RETURNING r.lease_token, r.reason, {select_columns("r")}
"""

# The fence: only a request still leased under the token this worker holds is
# marked finished; only for those does the transaction write anything else.
FENCE = """
UPDATE _crawlrunner_requests AS r SET state = v.state, reason = v.reason, lease_owner = NULL
FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[]) AS v(id, token, state, reason)
WHERE r.id = v.id AND r.lease_token = v.token AND r.state = 'leased'
RETURNING r.id
"""

RELEASE = """
UPDATE _crawlrunner_requests SET state = 'pending', lease_owner = NULL
WHERE id = ANY($1::bigint[]) AND lease_owner = $2 AND state = 'leased'
"""
# Leases a worker holds but does not know of: a claim whose reply was lost
# (the connection dropped after its commit) leased them. Given back before it
# claims again, or they would stay leased to a live worker for ever.
RELEASE_UNKNOWN = """
UPDATE _crawlrunner_requests SET state = 'pending', lease_owner = NULL
WHERE run_id = $1 AND lease_owner = $2 AND state = 'leased' AND NOT (id = ANY($3::bigint[]))
"""
RELEASE_WORKER = """
UPDATE _crawlrunner_requests SET state = 'pending', lease_owner = NULL WHERE run_id = $1 AND lease_owner = $2 AND state = 'leased'
"""

TAKE_PLAN_CURSOR = """
SELECT target, next_seq FROM _crawlrunner_run_targets
WHERE run_id = $1 AND NOT exhausted AND target = ANY($2::text[])
ORDER BY target = $3 DESC, position
LIMIT 1
FOR UPDATE SKIP LOCKED
"""
MOVE_PLAN_CURSOR = "UPDATE _crawlrunner_run_targets SET next_seq = $3, exhausted = $4 WHERE run_id = $1 AND target = $2"

# Link following's run-wide budget (follow.max_pages): the row lock also
# orders the commits that add links to one target, so the budget is exact.
LOCK_FOLLOWED = "SELECT followed FROM _crawlrunner_run_targets WHERE run_id = $1 AND target = $2 FOR UPDATE"
ADD_FOLLOWED = "UPDATE _crawlrunner_run_targets SET followed = followed + $3 WHERE run_id = $1 AND target = $2"
# Sitemaps' run-wide budget (seeds.max_urls), under the same row lock.
SITEMAP_URLS = "SELECT sitemap_urls FROM _crawlrunner_run_targets WHERE run_id = $1 AND target = $2"
ADD_SITEMAP_URLS = (
    "UPDATE _crawlrunner_run_targets SET sitemap_urls = sitemap_urls + $3 WHERE run_id = $1 AND target = $2"
)
# Every run_targets row a commit will lock, first and in one order: a commit
# that reads a sitemap budget and adds links locks two rows, never crosswise.
LOCK_TARGETS = """
SELECT target FROM _crawlrunner_run_targets WHERE run_id = $1 AND target = ANY($2::text[]) ORDER BY target FOR UPDATE
"""
# Insert-only; sorted, so that two transactions never wait for each other in opposite orders.
FIRST_SEEN = """
INSERT INTO _crawlrunner_seen (run_id, target, url)
SELECT $1, $2, u FROM unnest($3::text[]) AS u ORDER BY u
ON CONFLICT DO NOTHING
RETURNING url
"""
FORGET_SEEN = "DELETE FROM _crawlrunner_seen WHERE run_id = $1 AND target = $2 AND url = ANY($3::text[])"

# --retry-failed: the failed requests of run $1, pending again in run $2 (fresh
# ids; a start request's number does not carry over). A page keeps its place
# in its chain, as on SQLite: max_pages still holds, and the chain's end says
# how many pages it really had.
COPY_FAILED = """
INSERT INTO _crawlrunner_requests (run_id, target, state, method, url, headers, body, depth, page, chain_pages, chain_items,
    parent, role, reason, priority)
SELECT $2, target, 'pending', method, url, headers, body, depth, page, chain_pages, chain_items,
    parent, role, reason, priority
FROM _crawlrunner_requests WHERE run_id = $1 AND state = 'failed' AND target = ANY($3::text[])
ORDER BY id
"""

# Each state on its own, so that each look is one probe of its partial index.
RUN_OVER = """
SELECT NOT EXISTS (SELECT 1 FROM _crawlrunner_requests WHERE run_id = $1 AND state = 'pending')
   AND NOT EXISTS (SELECT 1 FROM _crawlrunner_requests WHERE run_id = $1 AND state = 'leased')
   AND NOT EXISTS (SELECT 1 FROM _crawlrunner_run_targets WHERE run_id = $1 AND NOT exhausted)
"""

INSERT_FETCH_LOG = """
INSERT INTO _crawlrunner_fetch_log (id, run_id, target, method, url, final_url, status, content_type, bytes, body_path,
    elapsed_ms, attempts, records, error_kind, error, fetched_at, etag, last_modified, request_id, items, unfollowed,
    worker_id)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::integer[],
    $8::text[], $9::bigint[], $10::text[], $11::double precision[], $12::integer[], $13::integer[], $14::text[],
    $15::text[], $16::timestamptz[], $17::text[], $18::text[], $19::bigint[], $20::integer[], $21::integer[],
    $22::bigint[])
"""
INSERT_CHAIN_ENDS = """
INSERT INTO _crawlrunner_chain_ends (fetch_id, run_id, target, url, pages, items, reason)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::integer[], $6::bigint[], $7::text[])
"""
FETCH_LOG_IDS = "SELECT nextval('_crawlrunner_fetch_log_id_seq') FROM generate_series(1, $1)"

# Workers: a heartbeat, and the reaping of those whose heartbeat stopped.
JOIN_WORKER = "INSERT INTO _crawlrunner_workers (run_id, hostname, pid) VALUES ($1, $2, $3) RETURNING id"
HEARTBEAT = """
UPDATE _crawlrunner_workers SET heartbeat = now(), left_at = NULL, status = 'running' WHERE id = $1
RETURNING (SELECT stop_requested FROM _crawlrunner_runs WHERE id = $2)
"""
LOST_WORKERS = """
UPDATE _crawlrunner_workers SET left_at = now(), status = 'lost'
WHERE run_id = $1 AND left_at IS NULL AND heartbeat < now() - make_interval(secs => $2)
RETURNING id
"""
# Leases held by workers that left or were lost; rows a live transaction
# still holds are skipped, and taken back on a later round.
REAP = """
UPDATE _crawlrunner_requests SET state = 'pending', lease_owner = NULL
WHERE id IN (
    SELECT r.id FROM _crawlrunner_requests AS r JOIN _crawlrunner_workers AS w ON w.id = r.lease_owner
    WHERE r.run_id = $1 AND r.state = 'leased' AND w.left_at IS NOT NULL
    FOR UPDATE OF r SKIP LOCKED
)
"""
LIVE_WORKERS = """
SELECT count(*) FROM _crawlrunner_workers
WHERE run_id = $1 AND left_at IS NULL AND heartbeat >= now() - make_interval(secs => $2) AND id <> $3
"""
LEAVE = "UPDATE _crawlrunner_workers SET left_at = now(), status = $2 WHERE id = $1"

TOTALS = """
UPDATE _crawlrunner_runs SET status = $2, finished_at = now(),
    requests = t.requests, ok = t.ok, failed = t.failed, records = t.records, bytes = t.bytes, unchanged = t.unchanged
FROM (
    SELECT count(*) AS requests,
           count(*) FILTER (WHERE error_kind IS NULL) AS ok,
           count(*) FILTER (WHERE error_kind IS NOT NULL) AS failed,
           coalesce(sum(records), 0) AS records,
           coalesce(sum(bytes), 0) AS bytes,
           count(*) FILTER (WHERE status = 304) AS unchanged
    FROM _crawlrunner_fetch_log WHERE run_id = $1
) AS t
WHERE id = $1
"""


async def insert_requests(
    conn: asyncpg.Connection, rows: Sequence[tuple[Any, ...]], reasons: Iterable[str | None], priority: int
) -> None:
    """Save requests laid out by ``request_row`` (their id column ignored) in one statement."""
    if not rows:
        return
    columns = list(zip(*(row[1:] for row in rows), strict=True))
    reasons = list(reasons)
    await conn.execute(INSERT_REQUESTS, *columns, reasons, [priority] * len(rows))
