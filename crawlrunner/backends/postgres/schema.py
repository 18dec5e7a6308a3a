"""The PostgreSQL layout: crawlrunner's own tables, shared by every worker of every run.

The tables users read (``_crawlrunner_runs``, ``_crawlrunner_fetch_log``,
``_crawlrunner_validators``, ``_crawlrunner_bodies``, one table per target and
``_crawlrunner_history_<target>``) have the SQLite layout's names and columns,
with PostgreSQL's types, so the same queries work on both. The rest is the cluster's coordination, documented in
docs/database.md:

- ``requests``: every request of a run, start requests included (loaded
  from the plan in batches), with its lease: who holds it (``lease_owner``),
  under which token (``lease_token``), and how many times it was claimed.
  A queue: a low fillfactor and eager autovacuum keep its updates cheap.
- ``run_targets``: per run and target, how far the plan was loaded
  (``next_seq``, ``exhausted``) and how many URLs link following took.
- ``seen``: insert-only, the URLs each link-following target requested in
  a run: de-duplication across workers.
- ``workers``: one row per worker process, with its heartbeat.
- ``hosts`` and ``host_turns``: politeness held across the cluster (see
  ``hosts.py``).

``LAYOUT_VERSION`` is kept in ``_crawlrunner_layout`` (``crawlrunner_layout``
before layout 5); its presence is also how a database crawlrunner made is
told from another program's.

Layout 5 put every one of crawlrunner's own relations under ``PREFIX`` (tables,
their indexes and sequences, which share one namespace with the target
tables): ``CREATE`` and the upgrades before it are kept as they were, with the
old names, as the history of the layout; ``layout.py`` does the rest.
"""

from __future__ import annotations

PREFIX = "_crawlrunner_"
LAYOUT_TABLE = PREFIX + "layout"
OLD_LAYOUT_TABLE = "crawlrunner_layout"  # before layout 5

# Taken (transaction-scoped) while the layout is created or a target's table
# changed, so workers starting together do not race each other's DDL.
DDL_LOCK = 7_413_209_117

CREATE = f"""
CREATE TABLE IF NOT EXISTS {OLD_LAYOUT_TABLE} (version integer NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id bigserial PRIMARY KEY,
    spec_name text NOT NULL,
    spec_file text NOT NULL,
    spec_hash text NOT NULL,
    fingerprints text,
    retry_of bigint REFERENCES runs(id),
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    status text NOT NULL,
    requests bigint NOT NULL DEFAULT 0,
    ok bigint NOT NULL DEFAULT 0,
    failed bigint NOT NULL DEFAULT 0,
    unchanged bigint NOT NULL DEFAULT 0,
    records bigint NOT NULL DEFAULT 0,
    bytes bigint NOT NULL DEFAULT 0,
    resumed integer NOT NULL DEFAULT 0,
    stop_requested boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS runs_spec_name ON runs (spec_name, id);
CREATE TABLE IF NOT EXISTS workers (
    id bigserial PRIMARY KEY,
    run_id bigint NOT NULL REFERENCES runs(id),
    hostname text NOT NULL,
    pid integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    heartbeat timestamptz NOT NULL DEFAULT now(),
    left_at timestamptz,
    status text NOT NULL DEFAULT 'running'
);
CREATE INDEX IF NOT EXISTS workers_run ON workers (run_id) WHERE left_at IS NULL;
CREATE TABLE IF NOT EXISTS run_targets (
    run_id bigint NOT NULL REFERENCES runs(id),
    target text NOT NULL,
    position integer NOT NULL,
    next_seq bigint NOT NULL DEFAULT 0,
    exhausted boolean NOT NULL DEFAULT false,
    followed bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, target)
);
CREATE SEQUENCE IF NOT EXISTS lease_tokens;
CREATE TABLE IF NOT EXISTS requests (
    id bigserial PRIMARY KEY,
    run_id bigint NOT NULL REFERENCES runs(id),
    target text NOT NULL,
    state text NOT NULL,
    seq bigint,
    method text NOT NULL,
    url text NOT NULL,
    headers text,
    body text,
    depth integer NOT NULL DEFAULT 0,
    page integer NOT NULL DEFAULT 0,
    chain_pages integer,
    chain_items integer,
    parent text,
    reason text,
    priority smallint NOT NULL DEFAULT 0,
    lease_owner bigint,
    lease_token bigint,
    claims integer NOT NULL DEFAULT 0
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
CREATE INDEX IF NOT EXISTS requests_pending ON requests (run_id, priority, id) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS requests_leased ON requests (run_id, lease_owner) WHERE state = 'leased';
-- No index on state itself: the two partial ones serve the queue, and each
-- index more is one more entry every claim and every fence writes.
CREATE UNIQUE INDEX IF NOT EXISTS requests_run_target_seq ON requests (run_id, target, seq) WHERE seq IS NOT NULL;
CREATE TABLE IF NOT EXISTS seen (
    run_id bigint NOT NULL,
    target text NOT NULL,
    url text NOT NULL,
    PRIMARY KEY (run_id, target, url)
);
CREATE TABLE IF NOT EXISTS fetch_log (
    id bigserial PRIMARY KEY,
    run_id bigint NOT NULL REFERENCES runs(id),
    target text NOT NULL,
    method text NOT NULL,
    url text NOT NULL,
    final_url text,
    status integer,
    content_type text,
    bytes bigint NOT NULL,
    body_path text,
    elapsed_ms double precision NOT NULL,
    attempts integer NOT NULL,
    records integer NOT NULL,
    error_kind text,
    error text,
    fetched_at timestamptz NOT NULL,
    etag text,
    last_modified text,
    request_id bigint,
    worker_id bigint
);
CREATE INDEX IF NOT EXISTS fetch_log_run_target ON fetch_log (run_id, target);
CREATE INDEX IF NOT EXISTS fetch_log_error_kind ON fetch_log (error_kind) WHERE error_kind IS NOT NULL;
CREATE TABLE IF NOT EXISTS validators (
    target text NOT NULL,
    url text NOT NULL,
    etag text,
    last_modified text,
    run_id bigint NOT NULL,
    PRIMARY KEY (target, url)
);
CREATE TABLE IF NOT EXISTS bodies (
    fetch_id bigint PRIMARY KEY REFERENCES fetch_log(id),
    run_id bigint NOT NULL REFERENCES runs(id),
    target text NOT NULL,
    url text NOT NULL,
    final_url text,
    status integer,
    content_type text,
    charset text,
    fetched_at timestamptz NOT NULL,
    body bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS bodies_target_url ON bodies (target, url);
"""

# UPGRADES[n] takes layout n + 1 to n + 2; a new database gets CREATE (layout
# 1), every upgrade and then layout 5 (``layout.py``: not plain SQL). Layout 2: what a run can be trusted for, as in the
# SQLite layout's version 4 (``fetch_log.items``, ``chain_ends``,
# ``extraction_health``).
_LAYOUT_2 = """
ALTER TABLE fetch_log ADD COLUMN IF NOT EXISTS items integer;
CREATE TABLE IF NOT EXISTS chain_ends (
    fetch_id bigint PRIMARY KEY REFERENCES fetch_log(id),
    run_id bigint NOT NULL REFERENCES runs(id),
    target text NOT NULL,
    url text NOT NULL,
    pages integer NOT NULL,
    items bigint NOT NULL,
    reason text NOT NULL
);
CREATE INDEX IF NOT EXISTS chain_ends_run_target ON chain_ends (run_id, target);
CREATE TABLE IF NOT EXISTS extraction_health (
    run_id bigint NOT NULL REFERENCES runs(id),
    target text NOT NULL,
    field text NOT NULL,
    records bigint NOT NULL,
    empty bigint NOT NULL,
    PRIMARY KEY (run_id, target, field)
);
"""
# Layout 3: incremental and polite, as in the SQLite layout's version 5
# (``cursors``, ``validators.led_to`` and ``led_to_spec``, ``requests.role``,
# ``host_stats``); and ``run_targets.sitemap_urls``, the page URLs a run took
# from a target's sitemaps (``max_urls``, counted across workers).
_LAYOUT_3 = """
CREATE TABLE IF NOT EXISTS cursors (
    run_id bigint NOT NULL REFERENCES runs(id),
    target text NOT NULL,
    scope text NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (run_id, target, scope)
);
ALTER TABLE validators ADD COLUMN IF NOT EXISTS led_to text;
ALTER TABLE validators ADD COLUMN IF NOT EXISTS led_to_spec text;
ALTER TABLE requests ADD COLUMN IF NOT EXISTS role text;
ALTER TABLE run_targets ADD COLUMN IF NOT EXISTS sitemap_urls bigint NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS host_stats (
    run_id bigint NOT NULL REFERENCES runs(id),
    origin text NOT NULL,
    requests bigint NOT NULL DEFAULT 0,
    throttled bigint NOT NULL DEFAULT 0,
    unavailable bigint NOT NULL DEFAULT 0,
    cooldowns bigint NOT NULL DEFAULT 0,
    cooldown_seconds double precision NOT NULL DEFAULT 0,
    crawl_delay double precision,
    PRIMARY KEY (run_id, origin)
);
"""
# Layout 4: ``fetch_log.unfollowed``, as in the SQLite layout's version 6: the
# links follow.max_pages left out, by the page they were on.
_LAYOUT_4 = """
ALTER TABLE fetch_log ADD COLUMN IF NOT EXISTS unfollowed integer NOT NULL DEFAULT 0;
"""
UPGRADES = (_LAYOUT_2, _LAYOUT_3, _LAYOUT_4)
LAYOUT_VERSION = 2 + len(UPGRADES)

# crawlrunner's own tables as layouts 1 to 4 named them (and the sequence
# of lease tokens); layout 5 puts PREFIX before each name.
OLD_TABLES = (
    "runs", "workers", "run_targets", "requests", "seen", "fetch_log", "validators", "bodies",
    "hosts", "host_turns", "chain_ends", "extraction_health", "cursors", "host_stats",
)  # fmt: skip
OLD_SEQUENCES = ("lease_tokens",)
OWN_TABLES = (LAYOUT_TABLE, *(PREFIX + name for name in OLD_TABLES))


def quote_identifier(name: str) -> str:
    """``name`` as a safely quoted PostgreSQL identifier."""
    if "\x00" in name:
        raise ValueError("identifiers cannot contain NUL")
    return '"' + name.replace('"', '""') + '"'
