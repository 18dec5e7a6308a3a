"""The statements of cluster-wide politeness (``hosts.py``): the layout of ``hosts`` and ``host_turns``, and their SQL.

Kept apart from the logic that uses them so that the protocol can be read
(and reviewed) on its own, as ``statements.py`` is for the frontier's.

Leasing turns in fixed blocks was the alternative; it was not taken because
a block idles turns another worker could use, and sizing it needs to know
how many workers want the host, which only the database knows.

The tables are UNLOGGED: this is state of the moment, written for every
request and worth nothing after a crash. A crash of the server (not a clean
restart) empties them: for the requests in flight then, a host may get up to
twice its ``per_host``, and a running cooldown is forgotten by the workers
that had not read it yet. A worker declared dead (its turns released) that
was only paused has the same effect for a while: it goes on using the turns
it holds until they are ``HANDOFF_WINDOW`` old.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncpg

# One round of the broker, as a function: its statements are planned once per
# connection (generic plans; planning them cost three times what running them
# does, and PostgreSQL would plan them at each call, as the sizes of its
# arrays show), and with sequential scans off: every row is reached through
# its primary key, driven by the arguments, so the plans hold however many
# rows the run has, whatever the statistics of these short-lived rows say.
#
# It gives back turns (``p_back_*``: host, turn, token) and takes up to
# ``p_wanted[i]`` free turns of host ``p_hosts[i]``, all under ``p_token``.
# ``p_unserved``: the hosts of ``p_hosts`` this worker holds no turn of, and
# ``p_waited`` how long it has waited for each (seconds); ``p_marked``: those
# its mark is on.
#
# The turns are given back first, so they may be taken again by the same call.
# A turn another worker takes at the same moment is skipped (DO NOTHING) and
# asked for again in the next round. Each worker tries the turn numbers from
# its own offset, so that they seldom collide; rows go in in (host, turn)
# order, so that two rounds seldom wait for each other.
#
# Fairness: a worker that holds no turn of a host and asks in vain puts its
# mark on the host's row (``wanted_by``, renewed at each ask: ``wanted_at``),
# unless a fresh mark of a worker that has waited longer is there
# (``wanted_since``). While a mark is fresh, no one else takes a turn of the
# host: the next free one is the marker's, and taking it clears the mark. So
# the turns go round the workers that have none, longest waiting first. The
# rows returned are the turns taken, then (host, -1) for each host this
# worker's mark is on.
_ROUND_FUNCTION = """
CREATE OR REPLACE FUNCTION crawlrunner_host_round(
    p_run bigint, p_worker bigint, p_back_hosts text[], p_back_turns int[], p_back_tokens bigint[],
    p_token bigint, p_hosts text[], p_wanted int[], p_per_host int, p_mark_lasts float8,
    p_unserved text[], p_waited float8[], p_marked text[]
) RETURNS TABLE (out_host text, out_turn int)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $round$
DECLARE
    m text;
BEGIN
    IF cardinality(p_back_hosts) > 0 THEN
        -- By the rows' addresses, each found by its key: the rows are this worker's, never updated.
        DELETE FROM _crawlrunner_host_turns WHERE ctid = ANY (ARRAY(
            SELECT mine.ctid FROM unnest(p_back_hosts, p_back_turns, p_back_tokens) AS r(host, turn, token)
            CROSS JOIN LATERAL (
                SELECT t.ctid FROM _crawlrunner_host_turns t
                WHERE t.run_id = p_run AND t.host = r.host AND t.turn = r.turn AND t.token = r.token
                    AND t.worker_id = p_worker
            ) AS mine
        ));
    END IF;
    IF cardinality(p_hosts) = 0 THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH others_first AS (
        SELECT w.host FROM unnest(p_hosts) AS w(host)
        WHERE EXISTS (
            SELECT 1 FROM _crawlrunner_hosts h
            WHERE h.run_id = p_run AND h.host = w.host AND h.rate_key = '' AND h.wanted_by <> p_worker
                AND h.wanted_at > clock_timestamp() - make_interval(secs => p_mark_lasts))
    ), taken AS (
        INSERT INTO _crawlrunner_host_turns (run_id, host, turn, worker_id, token)
        SELECT p_run, w.host, free.turn, p_worker, p_token
        FROM unnest(p_hosts, p_wanted) AS w(host, wanted)
        CROSS JOIN LATERAL (
            SELECT ARRAY(SELECT t.turn FROM _crawlrunner_host_turns t WHERE t.run_id = p_run AND t.host = w.host) AS turns
        ) AS held
        CROSS JOIN LATERAL (
            SELECT s AS turn FROM generate_series(0, p_per_host - 1) AS s
            WHERE s <> ALL (held.turns)
            ORDER BY (s + p_worker) % p_per_host
            LIMIT w.wanted
        ) AS free
        WHERE w.host NOT IN (SELECT host FROM others_first)
        ORDER BY w.host, free.turn
        ON CONFLICT (run_id, host, turn) DO NOTHING
        RETURNING host, turn
    ), marked AS (
        INSERT INTO _crawlrunner_hosts AS h (run_id, host, rate_key, wanted_at, wanted_by, wanted_since)
        SELECT p_run, w.host, '', clock_timestamp(), p_worker, clock_timestamp() - make_interval(secs => w.waited)
        FROM unnest(p_unserved, p_waited) AS w(host, waited)
        WHERE w.host NOT IN (SELECT host FROM taken)
        ORDER BY w.host
        ON CONFLICT (run_id, host, rate_key) DO UPDATE
            SET wanted_at = excluded.wanted_at, wanted_by = excluded.wanted_by, wanted_since = excluded.wanted_since
            WHERE h.wanted_by = excluded.wanted_by OR excluded.wanted_since < h.wanted_since
                OR h.wanted_at <= clock_timestamp() - make_interval(secs => p_mark_lasts)
        RETURNING host
    )
    SELECT host, turn FROM taken
    UNION ALL
    SELECT host, -1 FROM marked;
    -- A turn taken for a host this worker's mark is on: the mark has served.
    FOREACH m IN ARRAY p_marked LOOP
        UPDATE _crawlrunner_hosts h SET wanted_at = '-infinity'
        WHERE h.run_id = p_run AND h.host = m AND h.rate_key = '' AND h.wanted_by = p_worker
            AND EXISTS (SELECT 1 FROM _crawlrunner_host_turns t WHERE t.run_id = p_run AND t.host = m AND t.token = p_token);
    END LOOP;
END
$round$;
"""

# ``hosts``: per run and host, one row per rate (pacing: ``next_at``, the send
# reserved last) and one with ``rate_key = ''``: the cooldown, and the mark of
# the worker that waits first for a turn (``wanted_*``: see the round), made by the
# first 429, 503 or wait. Updates of ``next_at`` and ``wanted_*`` touch no
# indexed column: HOT, in the room the fillfactor leaves.
# ``host_turns``: the turns held now. The primary key is the limit; ``token``
# tells two holdings of one turn apart (a lost reply, a server crash);
# ``taken_at`` is for whoever looks. No foreign keys: a check per take, for
# rows that live a second.
HOSTS_DDL = (
    """
CREATE UNLOGGED TABLE IF NOT EXISTS _crawlrunner_hosts (
    run_id bigint NOT NULL,
    host text NOT NULL,
    rate_key text NOT NULL,
    next_at timestamptz NOT NULL DEFAULT '-infinity',
    cooldown_until timestamptz NOT NULL DEFAULT '-infinity',
    wanted_at timestamptz NOT NULL DEFAULT '-infinity',
    wanted_by bigint,
    wanted_since timestamptz NOT NULL DEFAULT '-infinity',
    PRIMARY KEY (run_id, host, rate_key)
) WITH (fillfactor = 50);
CREATE INDEX IF NOT EXISTS _crawlrunner_hosts_cooling ON _crawlrunner_hosts (run_id, cooldown_until) WHERE cooldown_until > '-infinity';
CREATE UNLOGGED TABLE IF NOT EXISTS _crawlrunner_host_turns (
    run_id bigint NOT NULL,
    host text NOT NULL,
    turn integer NOT NULL,
    worker_id bigint NOT NULL,
    token bigint NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (run_id, host, turn)
) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
"""
    + _ROUND_FUNCTION
)

# Reserve the next send to a host at one rate: $1 run, $2 host, $3 rate key,
# $4 interval (this send's: the gap it keeps from the send reserved last),
# $5 lead (seconds). Returns when the send is due and the time now, both by
# the database's clock (epoch seconds). The new ``next_at``, the send's moment,
# is greatest(old next_at + interval, now + lead, cooldown); ``excluded`` holds
# the last two terms. The interval goes before the send, not after it: a gap a
# host's answer just called for holds the very next send, and one that ended
# (a fresh budget) holds none.
RESERVE = """
INSERT INTO _crawlrunner_hosts AS h (run_id, host, rate_key, next_at)
VALUES ($1, $2, $3, greatest(clock_timestamp() + make_interval(secs => $5),
    (SELECT c.cooldown_until FROM _crawlrunner_hosts c WHERE c.run_id = $1 AND c.host = $2 AND c.rate_key = '')))
ON CONFLICT (run_id, host, rate_key) DO UPDATE
    SET next_at = greatest(h.next_at + make_interval(secs => $4), excluded.next_at)
RETURNING extract(epoch FROM h.next_at)::float8, extract(epoch FROM clock_timestamp())::float8
"""

# A send woken too late for its reservation ($5: its moment, epoch seconds)
# reserves again: if nobody reserved after it, now; else an interval after the
# last one. Same arguments ($1 to $4) and results as RESERVE; no row if the row
# is gone.
RESERVE_AGAIN = """
UPDATE _crawlrunner_hosts h SET next_at = CASE
        WHEN h.next_at <= to_timestamp($5) + interval '1 millisecond'
        THEN greatest(h.next_at, clock_timestamp())
        ELSE h.next_at + make_interval(secs => $4) END
WHERE h.run_id = $1 AND h.host = $2 AND h.rate_key = $3
RETURNING extract(epoch FROM h.next_at)::float8, extract(epoch FROM clock_timestamp())::float8
"""

# The time, and the run's running cooldowns: hosts and when each ends ($1 run),
# by the database's clock. One row always: each read also tells where that
# clock stands. The conditions are hosts_cooling's: its predicate (only the
# rows of hosts that ever cooled down: no lookup by host is tempted to scan
# it), and ``now()``, stable, unlike clock_timestamp().
ACTIVE_COOLDOWNS = """
SELECT extract(epoch FROM clock_timestamp())::float8,
       coalesce(array_agg(host), '{}'), coalesce(array_agg(extract(epoch FROM cooldown_until)::float8), '{}')
FROM _crawlrunner_hosts WHERE run_id = $1 AND cooldown_until > '-infinity' AND cooldown_until > now()
"""

# $1 run, $2 hosts, $3 seconds from now; sorted, so two workers never deadlock.
WRITE_COOLDOWNS = """
INSERT INTO _crawlrunner_hosts AS h (run_id, host, rate_key, cooldown_until)
SELECT $1, c.host, '', clock_timestamp() + make_interval(secs => c.seconds)
FROM unnest($2::text[], $3::float8[]) AS c(host, seconds)
ORDER BY c.host
ON CONFLICT (run_id, host, rate_key) DO UPDATE SET cooldown_until = greatest(h.cooldown_until, excluded.cooldown_until)
"""

# One round of the broker (``crawlrunner_host_round``'s arguments, in order).
TURNS = "SELECT out_host, out_turn FROM crawlrunner_host_round($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"

# Undoes a round whose reply was lost (the connection dropped after the
# commit): run before the round is tried again, so no turn is left behind.
FORGET_TOKEN = "DELETE FROM _crawlrunner_host_turns WHERE run_id = $1 AND worker_id = $2 AND token = $3"

# Every turn a worker holds ($1 worker; worker ids are unique across runs): for
# the reaper, a worker leaving, and close(). Rare: a scan, not an index every
# take would have to update.
RELEASE_WORKER_TURNS = "DELETE FROM _crawlrunner_host_turns WHERE worker_id = $1"

# A finished run's politeness rows ($1 run): nothing reads them afterwards.
FORGET_RUN = (
    "DELETE FROM _crawlrunner_host_turns WHERE run_id = $1",
    "DELETE FROM _crawlrunner_hosts WHERE run_id = $1",
)


async def release_worker_turns(conn: asyncpg.Connection, worker_id: int) -> int:
    """Give back every turn ``worker_id`` holds (it was declared dead, or left); how many it held."""
    status = await conn.execute(RELEASE_WORKER_TURNS, worker_id)
    return int(status.rpartition(" ")[2] or 0)


async def forget_run(conn: asyncpg.Connection, run_id: int) -> None:
    """Delete ``run_id``'s rows of ``hosts`` and ``host_turns`` (the run is over)."""
    for statement in FORGET_RUN:
        await conn.execute(statement, run_id)
