-- A PostgreSQL database of layout 4, made by crawlrunner as it was before layout 5
-- (commit e8ea1eb, the parent of the commit that renamed crawlrunner's own tables),
-- for tests/backends/test_pg_layout.py. Generated, not written by hand: that
-- release's CLI ran this spec twice on a fresh database, against a static site
-- whose products.json and visits.json changed between the runs, then
--   pg_dump --inserts --no-owner --no-acl --no-comments
-- (psql's \restrict and \unrestrict lines taken out, so that one simple query runs it).
--
--   name: shop
--   targets:
--     - name: products
--       url: /products.json
--       mode: upsert
--       key: [id]
--       extract:
--         records: items
--         fields:
--           id: {jmespath: id, type: int}
--           name: name
--           price: {jmespath: price, type: float}
--           tags: {jmespath: tags, many: true}
--     - name: lll...l  (63 of them: names PostgreSQL would cut short)
--       url: /products.json
--       mode: upsert
--       key: [id]
--       extract:
--         records: items
--         fields:
--           id: {jmespath: id, type: int}
--           name: name
--     - name: visits
--       url: /visits.json
--       extract:
--         records: items
--         fields:
--           page: page
--           hits: hits
--
-- Run 1: products 1 kettle 10.0 [a], 2 lamp 20.0 []; visits / 3.
-- Run 2: products 1 kettle XL 12.0 [a, b], 3 mug 5.0 null; visits / 4, /about 1.
--
-- PostgreSQL database dump
--



SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: crawlrunner_host_round(bigint, bigint, text[], integer[], bigint[], bigint, text[], integer[], integer, double precision, text[], double precision[], text[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.crawlrunner_host_round(p_run bigint, p_worker bigint, p_back_hosts text[], p_back_turns integer[], p_back_tokens bigint[], p_token bigint, p_hosts text[], p_wanted integer[], p_per_host integer, p_mark_lasts double precision, p_unserved text[], p_waited double precision[], p_marked text[]) RETURNS TABLE(out_host text, out_turn integer)
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    SET enable_seqscan TO 'off'
    AS $$
DECLARE
    m text;
BEGIN
    IF cardinality(p_back_hosts) > 0 THEN
        -- By the rows' addresses, each found by its key: the rows are this worker's, never updated.
        DELETE FROM host_turns WHERE ctid = ANY (ARRAY(
            SELECT mine.ctid FROM unnest(p_back_hosts, p_back_turns, p_back_tokens) AS r(host, turn, token)
            CROSS JOIN LATERAL (
                SELECT t.ctid FROM host_turns t
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
            SELECT 1 FROM hosts h
            WHERE h.run_id = p_run AND h.host = w.host AND h.rate_key = '' AND h.wanted_by <> p_worker
                AND h.wanted_at > clock_timestamp() - make_interval(secs => p_mark_lasts))
    ), taken AS (
        INSERT INTO host_turns (run_id, host, turn, worker_id, token)
        SELECT p_run, w.host, free.turn, p_worker, p_token
        FROM unnest(p_hosts, p_wanted) AS w(host, wanted)
        CROSS JOIN LATERAL (
            SELECT ARRAY(SELECT t.turn FROM host_turns t WHERE t.run_id = p_run AND t.host = w.host) AS turns
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
        INSERT INTO hosts AS h (run_id, host, rate_key, wanted_at, wanted_by, wanted_since)
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
        UPDATE hosts h SET wanted_at = '-infinity'
        WHERE h.run_id = p_run AND h.host = m AND h.rate_key = '' AND h.wanted_by = p_worker
            AND EXISTS (SELECT 1 FROM host_turns t WHERE t.run_id = p_run AND t.host = m AND t.token = p_token);
    END LOOP;
END
$$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: _lllllllllllllllllllllllllllllllllllllllllllllllllllll_b9994beb; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public._lllllllllllllllllllllllllllllllllllllllllllllllllllll_b9994beb (
    id bigint NOT NULL,
    run_id bigint NOT NULL,
    key text NOT NULL,
    change text NOT NULL,
    old jsonb,
    new jsonb,
    at timestamp with time zone NOT NULL
);


--
-- Name: _lllllllllllllllllllllllllllllllllllllllllllllllllllll_b_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public._lllllllllllllllllllllllllllllllllllllllllllllllllllll_b_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: _lllllllllllllllllllllllllllllllllllllllllllllllllllll_b_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public._lllllllllllllllllllllllllllllllllllllllllllllllllllll_b_id_seq OWNED BY public._lllllllllllllllllllllllllllllllllllllllllllllllllllll_b9994beb.id;


--
-- Name: _products_history; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public._products_history (
    id bigint NOT NULL,
    run_id bigint NOT NULL,
    key text NOT NULL,
    change text NOT NULL,
    old jsonb,
    new jsonb,
    at timestamp with time zone NOT NULL
);


--
-- Name: _products_history_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public._products_history_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: _products_history_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public._products_history_id_seq OWNED BY public._products_history.id;


--
-- Name: bodies; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.bodies (
    fetch_id bigint NOT NULL,
    run_id bigint NOT NULL,
    target text NOT NULL,
    url text NOT NULL,
    final_url text,
    status integer,
    content_type text,
    charset text,
    fetched_at timestamp with time zone NOT NULL,
    body bytea NOT NULL
);


--
-- Name: chain_ends; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.chain_ends (
    fetch_id bigint NOT NULL,
    run_id bigint NOT NULL,
    target text NOT NULL,
    url text NOT NULL,
    pages integer NOT NULL,
    items bigint NOT NULL,
    reason text NOT NULL
);


--
-- Name: crawlrunner_layout; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.crawlrunner_layout (
    version integer NOT NULL
);


--
-- Name: cursors; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.cursors (
    run_id bigint NOT NULL,
    target text NOT NULL,
    scope text NOT NULL,
    value text NOT NULL
);


--
-- Name: extraction_health; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.extraction_health (
    run_id bigint NOT NULL,
    target text NOT NULL,
    field text NOT NULL,
    records bigint NOT NULL,
    empty bigint NOT NULL
);


--
-- Name: fetch_log; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.fetch_log (
    id bigint NOT NULL,
    run_id bigint NOT NULL,
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
    fetched_at timestamp with time zone NOT NULL,
    etag text,
    last_modified text,
    request_id bigint,
    worker_id bigint,
    items integer,
    unfollowed integer DEFAULT 0 NOT NULL
);


--
-- Name: fetch_log_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.fetch_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: fetch_log_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.fetch_log_id_seq OWNED BY public.fetch_log.id;


--
-- Name: host_stats; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.host_stats (
    run_id bigint NOT NULL,
    origin text NOT NULL,
    requests bigint DEFAULT 0 NOT NULL,
    throttled bigint DEFAULT 0 NOT NULL,
    unavailable bigint DEFAULT 0 NOT NULL,
    cooldowns bigint DEFAULT 0 NOT NULL,
    cooldown_seconds double precision DEFAULT 0 NOT NULL,
    crawl_delay double precision
);


--
-- Name: host_turns; Type: TABLE; Schema: public; Owner: -
--

CREATE UNLOGGED TABLE public.host_turns (
    run_id bigint NOT NULL,
    host text NOT NULL,
    turn integer NOT NULL,
    worker_id bigint NOT NULL,
    token bigint NOT NULL,
    taken_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL
)
WITH (autovacuum_vacuum_scale_factor='0.02', autovacuum_vacuum_cost_delay='0');


--
-- Name: hosts; Type: TABLE; Schema: public; Owner: -
--

CREATE UNLOGGED TABLE public.hosts (
    run_id bigint NOT NULL,
    host text NOT NULL,
    rate_key text NOT NULL,
    next_at timestamp with time zone DEFAULT '-infinity'::timestamp with time zone NOT NULL,
    cooldown_until timestamp with time zone DEFAULT '-infinity'::timestamp with time zone NOT NULL,
    wanted_at timestamp with time zone DEFAULT '-infinity'::timestamp with time zone NOT NULL,
    wanted_by bigint,
    wanted_since timestamp with time zone DEFAULT '-infinity'::timestamp with time zone NOT NULL
)
WITH (fillfactor='50');


--
-- Name: lease_tokens; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.lease_tokens
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll (
    _run_id bigint NOT NULL,
    _url text NOT NULL,
    _fetched_at timestamp with time zone NOT NULL,
    _first_seen_run bigint,
    _first_seen_at timestamp with time zone,
    _changed_run bigint,
    _changed_at timestamp with time zone,
    _removed_run bigint,
    id bigint,
    name text
);


--
-- Name: products; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.products (
    _run_id bigint NOT NULL,
    _url text NOT NULL,
    _fetched_at timestamp with time zone NOT NULL,
    _first_seen_run bigint,
    _first_seen_at timestamp with time zone,
    _changed_run bigint,
    _changed_at timestamp with time zone,
    _removed_run bigint,
    id bigint,
    name text,
    price double precision,
    tags jsonb
);


--
-- Name: requests; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.requests (
    id bigint NOT NULL,
    run_id bigint NOT NULL,
    target text NOT NULL,
    state text NOT NULL,
    seq bigint,
    method text NOT NULL,
    url text NOT NULL,
    headers text,
    body text,
    depth integer DEFAULT 0 NOT NULL,
    page integer DEFAULT 0 NOT NULL,
    chain_pages integer,
    chain_items integer,
    parent text,
    reason text,
    priority smallint DEFAULT 0 NOT NULL,
    lease_owner bigint,
    lease_token bigint,
    claims integer DEFAULT 0 NOT NULL,
    role text
)
WITH (fillfactor='70', autovacuum_vacuum_scale_factor='0.02', autovacuum_vacuum_cost_delay='0');


--
-- Name: requests_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.requests_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: requests_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.requests_id_seq OWNED BY public.requests.id;


--
-- Name: run_targets; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.run_targets (
    run_id bigint NOT NULL,
    target text NOT NULL,
    "position" integer NOT NULL,
    next_seq bigint DEFAULT 0 NOT NULL,
    exhausted boolean DEFAULT false NOT NULL,
    followed bigint DEFAULT 0 NOT NULL,
    sitemap_urls bigint DEFAULT 0 NOT NULL
);


--
-- Name: runs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.runs (
    id bigint NOT NULL,
    spec_name text NOT NULL,
    spec_file text NOT NULL,
    spec_hash text NOT NULL,
    fingerprints text,
    retry_of bigint,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    status text NOT NULL,
    requests bigint DEFAULT 0 NOT NULL,
    ok bigint DEFAULT 0 NOT NULL,
    failed bigint DEFAULT 0 NOT NULL,
    unchanged bigint DEFAULT 0 NOT NULL,
    records bigint DEFAULT 0 NOT NULL,
    bytes bigint DEFAULT 0 NOT NULL,
    resumed integer DEFAULT 0 NOT NULL,
    stop_requested boolean DEFAULT false NOT NULL
);


--
-- Name: runs_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.runs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: runs_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.runs_id_seq OWNED BY public.runs.id;


--
-- Name: seen; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.seen (
    run_id bigint NOT NULL,
    target text NOT NULL,
    url text NOT NULL
);


--
-- Name: validators; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.validators (
    target text NOT NULL,
    url text NOT NULL,
    etag text,
    last_modified text,
    run_id bigint NOT NULL,
    led_to text,
    led_to_spec text
);


--
-- Name: visits; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.visits (
    _run_id bigint NOT NULL,
    _url text NOT NULL,
    _fetched_at timestamp with time zone NOT NULL,
    page text,
    hits text
);


--
-- Name: workers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.workers (
    id bigint NOT NULL,
    run_id bigint NOT NULL,
    hostname text NOT NULL,
    pid integer NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    heartbeat timestamp with time zone DEFAULT now() NOT NULL,
    left_at timestamp with time zone,
    status text DEFAULT 'running'::text NOT NULL
);


--
-- Name: workers_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.workers_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: workers_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.workers_id_seq OWNED BY public.workers.id;


--
-- Name: _lllllllllllllllllllllllllllllllllllllllllllllllllllll_b9994beb id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public._lllllllllllllllllllllllllllllllllllllllllllllllllllll_b9994beb ALTER COLUMN id SET DEFAULT nextval('public._lllllllllllllllllllllllllllllllllllllllllllllllllllll_b_id_seq'::regclass);


--
-- Name: _products_history id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public._products_history ALTER COLUMN id SET DEFAULT nextval('public._products_history_id_seq'::regclass);


--
-- Name: fetch_log id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.fetch_log ALTER COLUMN id SET DEFAULT nextval('public.fetch_log_id_seq'::regclass);


--
-- Name: requests id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.requests ALTER COLUMN id SET DEFAULT nextval('public.requests_id_seq'::regclass);


--
-- Name: runs id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.runs ALTER COLUMN id SET DEFAULT nextval('public.runs_id_seq'::regclass);


--
-- Name: workers id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.workers ALTER COLUMN id SET DEFAULT nextval('public.workers_id_seq'::regclass);


--
-- Data for Name: _lllllllllllllllllllllllllllllllllllllllllllllllllllll_b9994beb; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public._lllllllllllllllllllllllllllllllllllllllllllllllllllll_b9994beb VALUES (1, 1, '[1]', 'added', NULL, '{"name": "kettle"}', '2026-11-30 03:22:07.216+00');
INSERT INTO public._lllllllllllllllllllllllllllllllllllllllllllllllllllll_b9994beb VALUES (2, 1, '[2]', 'added', NULL, '{"name": "lamp"}', '2026-11-30 03:22:07.216+00');
INSERT INTO public._lllllllllllllllllllllllllllllllllllllllllllllllllllll_b9994beb VALUES (3, 2, '[3]', 'added', NULL, '{"name": "mug"}', '2026-11-30 03:22:08.163+00');
INSERT INTO public._lllllllllllllllllllllllllllllllllllllllllllllllllllll_b9994beb VALUES (4, 2, '[1]', 'changed', '{"name": "kettle"}', '{"name": "kettle XL"}', '2026-11-30 03:22:08.163+00');
INSERT INTO public._lllllllllllllllllllllllllllllllllllllllllllllllllllll_b9994beb VALUES (5, 2, '[2]', 'removed', '{"name": "lamp"}', NULL, '2026-11-30 03:22:08.235482+00');


--
-- Data for Name: _products_history; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public._products_history VALUES (1, 1, '[1]', 'added', NULL, '{"name": "kettle", "tags": ["a"], "price": 10}', '2026-11-30 03:22:07.212+00');
INSERT INTO public._products_history VALUES (2, 1, '[2]', 'added', NULL, '{"name": "lamp", "tags": null, "price": 20}', '2026-11-30 03:22:07.212+00');
INSERT INTO public._products_history VALUES (3, 2, '[3]', 'added', NULL, '{"name": "mug", "tags": null, "price": 5}', '2026-11-30 03:22:08.154+00');
INSERT INTO public._products_history VALUES (4, 2, '[1]', 'changed', '{"name": "kettle", "tags": ["a"], "price": 10}', '{"name": "kettle XL", "tags": ["a", "b"], "price": 12}', '2026-11-30 03:22:08.154+00');
INSERT INTO public._products_history VALUES (5, 2, '[2]', 'removed', '{"name": "lamp", "tags": null, "price": 20}', NULL, '2026-11-30 03:22:08.235482+00');


--
-- Data for Name: bodies; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: chain_ends; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: crawlrunner_layout; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.crawlrunner_layout VALUES (4);


--
-- Data for Name: cursors; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: extraction_health; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.extraction_health VALUES (1, 'products', 'id', 2, 0);
INSERT INTO public.extraction_health VALUES (1, 'products', 'name', 2, 0);
INSERT INTO public.extraction_health VALUES (1, 'products', 'price', 2, 0);
INSERT INTO public.extraction_health VALUES (1, 'products', 'tags', 2, 1);
INSERT INTO public.extraction_health VALUES (1, 'lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll', 'id', 2, 0);
INSERT INTO public.extraction_health VALUES (1, 'lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll', 'name', 2, 0);
INSERT INTO public.extraction_health VALUES (1, 'visits', 'page', 1, 0);
INSERT INTO public.extraction_health VALUES (1, 'visits', 'hits', 1, 0);
INSERT INTO public.extraction_health VALUES (2, 'products', 'id', 2, 0);
INSERT INTO public.extraction_health VALUES (2, 'products', 'name', 2, 0);
INSERT INTO public.extraction_health VALUES (2, 'products', 'price', 2, 0);
INSERT INTO public.extraction_health VALUES (2, 'products', 'tags', 2, 1);
INSERT INTO public.extraction_health VALUES (2, 'lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll', 'id', 2, 0);
INSERT INTO public.extraction_health VALUES (2, 'lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll', 'name', 2, 0);
INSERT INTO public.extraction_health VALUES (2, 'visits', 'page', 2, 0);
INSERT INTO public.extraction_health VALUES (2, 'visits', 'hits', 2, 0);


--
-- Data for Name: fetch_log; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.fetch_log VALUES (1, 1, 'products', 'GET', 'http://127.0.0.1:43817/products.json', 'http://127.0.0.1:43817/products.json', 200, 'application/json', 124, NULL, 7.473, 1, 2, NULL, NULL, '2026-11-30 03:22:07.212+00', NULL, 'Mon, 30 Nov 2026 03:22:06 GMT', 1, 1, 2, 0);
INSERT INTO public.fetch_log VALUES (2, 1, 'lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll', 'GET', 'http://127.0.0.1:43817/products.json', 'http://127.0.0.1:43817/products.json', 200, 'application/json', 124, NULL, 4.928, 1, 2, NULL, NULL, '2026-11-30 03:22:07.216+00', NULL, 'Mon, 30 Nov 2026 03:22:06 GMT', 2, 1, 2, 0);
INSERT INTO public.fetch_log VALUES (3, 1, 'visits', 'GET', 'http://127.0.0.1:43817/visits.json', 'http://127.0.0.1:43817/visits.json', 200, 'application/json', 37, NULL, 4.799, 1, 1, NULL, NULL, '2026-11-30 03:22:07.216+00', NULL, 'Mon, 30 Nov 2026 03:22:06 GMT', 3, 1, 1, 0);
INSERT INTO public.fetch_log VALUES (4, 2, 'products', 'GET', 'http://127.0.0.1:43817/products.json', 'http://127.0.0.1:43817/products.json', 200, 'application/json', 132, NULL, 7.749, 1, 2, NULL, NULL, '2026-11-30 03:22:08.154+00', NULL, 'Mon, 30 Nov 2026 03:22:07 GMT', 4, 2, 2, 0);
INSERT INTO public.fetch_log VALUES (5, 2, 'lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll', 'GET', 'http://127.0.0.1:43817/products.json', 'http://127.0.0.1:43817/products.json', 200, 'application/json', 132, NULL, 20.991, 1, 2, NULL, NULL, '2026-11-30 03:22:08.163+00', NULL, 'Mon, 30 Nov 2026 03:22:07 GMT', 5, 2, 2, 0);
INSERT INTO public.fetch_log VALUES (6, 2, 'visits', 'GET', 'http://127.0.0.1:43817/visits.json', 'http://127.0.0.1:43817/visits.json', 200, 'application/json', 68, NULL, 21.221, 1, 2, NULL, NULL, '2026-11-30 03:22:08.163+00', NULL, 'Mon, 30 Nov 2026 03:22:07 GMT', 6, 2, 2, 0);


--
-- Data for Name: host_stats; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.host_stats VALUES (1, 'http://127.0.0.1:43817', 3, 0, 0, 0, 0, NULL);
INSERT INTO public.host_stats VALUES (2, 'http://127.0.0.1:43817', 3, 0, 0, 0, 0, NULL);


--
-- Data for Name: host_turns; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: hosts; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll VALUES (2, 'http://127.0.0.1:43817/products.json', '2026-11-30 03:22:08.163+00', 1, '2026-11-30 03:22:07.216+00', 2, '2026-11-30 03:22:08.163+00', NULL, 1, 'kettle XL');
INSERT INTO public.lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll VALUES (2, 'http://127.0.0.1:43817/products.json', '2026-11-30 03:22:08.163+00', 2, '2026-11-30 03:22:08.163+00', 2, '2026-11-30 03:22:08.163+00', NULL, 3, 'mug');
INSERT INTO public.lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll VALUES (1, 'http://127.0.0.1:43817/products.json', '2026-11-30 03:22:07.216+00', 1, '2026-11-30 03:22:07.216+00', 1, '2026-11-30 03:22:07.216+00', 2, 2, 'lamp');


--
-- Data for Name: products; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.products VALUES (2, 'http://127.0.0.1:43817/products.json', '2026-11-30 03:22:08.154+00', 1, '2026-11-30 03:22:07.212+00', 2, '2026-11-30 03:22:08.154+00', NULL, 1, 'kettle XL', 12, '["a", "b"]');
INSERT INTO public.products VALUES (2, 'http://127.0.0.1:43817/products.json', '2026-11-30 03:22:08.154+00', 2, '2026-11-30 03:22:08.154+00', 2, '2026-11-30 03:22:08.154+00', NULL, 3, 'mug', 5, NULL);
INSERT INTO public.products VALUES (1, 'http://127.0.0.1:43817/products.json', '2026-11-30 03:22:07.212+00', 1, '2026-11-30 03:22:07.212+00', 1, '2026-11-30 03:22:07.212+00', 2, 2, 'lamp', 20, NULL);


--
-- Data for Name: requests; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.requests VALUES (1, 1, 'products', 'done', 0, 'GET', 'http://127.0.0.1:43817/products.json', '{"User-Agent": "crawlrunner/0.1.0 (+https://crawlrunner.dev)"}', NULL, 0, 0, NULL, NULL, NULL, NULL, 1, NULL, 1, 1, NULL);
INSERT INTO public.requests VALUES (2, 1, 'lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll', 'done', 0, 'GET', 'http://127.0.0.1:43817/products.json', '{"User-Agent": "crawlrunner/0.1.0 (+https://crawlrunner.dev)"}', NULL, 0, 0, NULL, NULL, NULL, NULL, 1, NULL, 2, 1, NULL);
INSERT INTO public.requests VALUES (3, 1, 'visits', 'done', 0, 'GET', 'http://127.0.0.1:43817/visits.json', '{"User-Agent": "crawlrunner/0.1.0 (+https://crawlrunner.dev)"}', NULL, 0, 0, NULL, NULL, NULL, NULL, 1, NULL, 3, 1, NULL);
INSERT INTO public.requests VALUES (4, 2, 'products', 'done', 0, 'GET', 'http://127.0.0.1:43817/products.json', '{"User-Agent": "crawlrunner/0.1.0 (+https://crawlrunner.dev)"}', NULL, 0, 0, NULL, NULL, NULL, NULL, 1, NULL, 4, 1, NULL);
INSERT INTO public.requests VALUES (5, 2, 'lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll', 'done', 0, 'GET', 'http://127.0.0.1:43817/products.json', '{"User-Agent": "crawlrunner/0.1.0 (+https://crawlrunner.dev)"}', NULL, 0, 0, NULL, NULL, NULL, NULL, 1, NULL, 5, 1, NULL);
INSERT INTO public.requests VALUES (6, 2, 'visits', 'done', 0, 'GET', 'http://127.0.0.1:43817/visits.json', '{"User-Agent": "crawlrunner/0.1.0 (+https://crawlrunner.dev)"}', NULL, 0, 0, NULL, NULL, NULL, NULL, 1, NULL, 6, 1, NULL);


--
-- Data for Name: run_targets; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.run_targets VALUES (1, 'products', 0, 1, true, 0, 0);
INSERT INTO public.run_targets VALUES (1, 'lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll', 1, 1, true, 0, 0);
INSERT INTO public.run_targets VALUES (1, 'visits', 2, 1, true, 0, 0);
INSERT INTO public.run_targets VALUES (2, 'products', 0, 1, true, 0, 0);
INSERT INTO public.run_targets VALUES (2, 'lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll', 1, 1, true, 0, 0);
INSERT INTO public.run_targets VALUES (2, 'visits', 2, 1, true, 0, 0);


--
-- Data for Name: runs; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.runs VALUES (1, 'shop', '/tmp/pglayout_old/shop.yaml', '4f9df558b263b644c70c301d7a8474e2f9e5ae938198344334ec83ec7b839ee5', '{"version": 2, "spec": "f85cfbcaa685e6f803368a790cba051465a5905e4c25f0bbcb686229a664cbdd", "targets": {"products": "8db5b2ed6d37a7f39e9d14dd6a9ce3534bba4bb8c4c613b67493f2736724ad6b", "lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll": "afff45f00d94dae022b9e95e69846a4529b7921e7e17cd036ab77227ca7aec23", "visits": "542549d46eef58ed6c3aa25d69412ffe63007c26611c1615209f274bae35586f"}}', NULL, '2026-11-30 03:22:07.106854+00', '2026-11-30 03:22:07.266911+00', 'completed', 3, 3, 0, 0, 5, 285, 0, false);
INSERT INTO public.runs VALUES (2, 'shop', '/tmp/pglayout_old/shop.yaml', '4f9df558b263b644c70c301d7a8474e2f9e5ae938198344334ec83ec7b839ee5', '{"version": 2, "spec": "f85cfbcaa685e6f803368a790cba051465a5905e4c25f0bbcb686229a664cbdd", "targets": {"products": "8db5b2ed6d37a7f39e9d14dd6a9ce3534bba4bb8c4c613b67493f2736724ad6b", "lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll": "afff45f00d94dae022b9e95e69846a4529b7921e7e17cd036ab77227ca7aec23", "visits": "542549d46eef58ed6c3aa25d69412ffe63007c26611c1615209f274bae35586f"}}', NULL, '2026-11-30 03:22:07.999489+00', '2026-11-30 03:22:08.235482+00', 'completed', 3, 3, 0, 0, 6, 332, 0, false);


--
-- Data for Name: seen; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: validators; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: visits; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.visits VALUES (1, 'http://127.0.0.1:43817/visits.json', '2026-11-30 03:22:07.216+00', '/', '3');
INSERT INTO public.visits VALUES (2, 'http://127.0.0.1:43817/visits.json', '2026-11-30 03:22:08.163+00', '/', '4');
INSERT INTO public.visits VALUES (2, 'http://127.0.0.1:43817/visits.json', '2026-11-30 03:22:08.163+00', '/about', '1');


--
-- Data for Name: workers; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.workers VALUES (1, 1, 'vm', 29788, '2026-11-30 03:22:07.106854+00', '2026-11-30 03:22:07.106854+00', '2026-11-30 03:22:07.266911+00', 'completed');
INSERT INTO public.workers VALUES (2, 2, 'vm', 29810, '2026-11-30 03:22:07.999489+00', '2026-11-30 03:22:07.999489+00', '2026-11-30 03:22:08.235482+00', 'completed');


--
-- Name: _lllllllllllllllllllllllllllllllllllllllllllllllllllll_b_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public._lllllllllllllllllllllllllllllllllllllllllllllllllllll_b_id_seq', 5, true);


--
-- Name: _products_history_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public._products_history_id_seq', 5, true);


--
-- Name: fetch_log_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.fetch_log_id_seq', 6, true);


--
-- Name: lease_tokens; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.lease_tokens', 6, true);


--
-- Name: requests_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.requests_id_seq', 6, true);


--
-- Name: runs_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.runs_id_seq', 2, true);


--
-- Name: workers_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.workers_id_seq', 2, true);


--
-- Name: _lllllllllllllllllllllllllllllllllllllllllllllllllllll_b9994beb _lllllllllllllllllllllllllllllllllllllllllllllllllllll_b99_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public._lllllllllllllllllllllllllllllllllllllllllllllllllllll_b9994beb
    ADD CONSTRAINT _lllllllllllllllllllllllllllllllllllllllllllllllllllll_b99_pkey PRIMARY KEY (id);


--
-- Name: _products_history _products_history_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public._products_history
    ADD CONSTRAINT _products_history_pkey PRIMARY KEY (id);


--
-- Name: bodies bodies_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.bodies
    ADD CONSTRAINT bodies_pkey PRIMARY KEY (fetch_id);


--
-- Name: chain_ends chain_ends_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.chain_ends
    ADD CONSTRAINT chain_ends_pkey PRIMARY KEY (fetch_id);


--
-- Name: cursors cursors_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.cursors
    ADD CONSTRAINT cursors_pkey PRIMARY KEY (run_id, target, scope);


--
-- Name: extraction_health extraction_health_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.extraction_health
    ADD CONSTRAINT extraction_health_pkey PRIMARY KEY (run_id, target, field);


--
-- Name: fetch_log fetch_log_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.fetch_log
    ADD CONSTRAINT fetch_log_pkey PRIMARY KEY (id);


--
-- Name: host_stats host_stats_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.host_stats
    ADD CONSTRAINT host_stats_pkey PRIMARY KEY (run_id, origin);


--
-- Name: host_turns host_turns_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.host_turns
    ADD CONSTRAINT host_turns_pkey PRIMARY KEY (run_id, host, turn);


--
-- Name: hosts hosts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.hosts
    ADD CONSTRAINT hosts_pkey PRIMARY KEY (run_id, host, rate_key);


--
-- Name: requests requests_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.requests
    ADD CONSTRAINT requests_pkey PRIMARY KEY (id);


--
-- Name: run_targets run_targets_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run_targets
    ADD CONSTRAINT run_targets_pkey PRIMARY KEY (run_id, target);


--
-- Name: runs runs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_pkey PRIMARY KEY (id);


--
-- Name: seen seen_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.seen
    ADD CONSTRAINT seen_pkey PRIMARY KEY (run_id, target, url);


--
-- Name: validators validators_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.validators
    ADD CONSTRAINT validators_pkey PRIMARY KEY (target, url);


--
-- Name: workers workers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.workers
    ADD CONSTRAINT workers_pkey PRIMARY KEY (id);


--
-- Name: _lllllllllllllllllllllllllllllllllllllllllllllllllllll_61abb302; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX _lllllllllllllllllllllllllllllllllllllllllllllllllllll_61abb302 ON public.lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll USING btree (_run_id);


--
-- Name: _lllllllllllllllllllllllllllllllllllllllllllllllllllll_9a427bf1; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX _lllllllllllllllllllllllllllllllllllllllllllllllllllll_9a427bf1 ON public._lllllllllllllllllllllllllllllllllllllllllllllllllllll_b9994beb USING btree (run_id);


--
-- Name: _lllllllllllllllllllllllllllllllllllllllllllllllllllll_b7c5c3bf; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX _lllllllllllllllllllllllllllllllllllllllllllllllllllll_b7c5c3bf ON public.lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll USING btree (_url);


--
-- Name: _lllllllllllllllllllllllllllllllllllllllllllllllllllll_b7ed4e3b; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX _lllllllllllllllllllllllllllllllllllllllllllllllllllll_b7ed4e3b ON public.lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll USING btree (id) NULLS NOT DISTINCT;


--
-- Name: _products_history_run; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX _products_history_run ON public._products_history USING btree (run_id);


--
-- Name: _products_key_id; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX _products_key_id ON public.products USING btree (id) NULLS NOT DISTINCT;


--
-- Name: _products_run_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX _products_run_id ON public.products USING btree (_run_id);


--
-- Name: _products_url; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX _products_url ON public.products USING btree (_url);


--
-- Name: _visits_run_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX _visits_run_id ON public.visits USING btree (_run_id);


--
-- Name: _visits_url; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX _visits_url ON public.visits USING btree (_url);


--
-- Name: bodies_target_url; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX bodies_target_url ON public.bodies USING btree (target, url);


--
-- Name: chain_ends_run_target; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX chain_ends_run_target ON public.chain_ends USING btree (run_id, target);


--
-- Name: fetch_log_error_kind; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX fetch_log_error_kind ON public.fetch_log USING btree (error_kind) WHERE (error_kind IS NOT NULL);


--
-- Name: fetch_log_run_target; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX fetch_log_run_target ON public.fetch_log USING btree (run_id, target);


--
-- Name: hosts_cooling; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX hosts_cooling ON public.hosts USING btree (run_id, cooldown_until) WHERE (cooldown_until > '-infinity'::timestamp with time zone);


--
-- Name: requests_leased; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX requests_leased ON public.requests USING btree (run_id, lease_owner) WHERE (state = 'leased'::text);


--
-- Name: requests_pending; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX requests_pending ON public.requests USING btree (run_id, priority, id) WHERE (state = 'pending'::text);


--
-- Name: requests_run_target_seq; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX requests_run_target_seq ON public.requests USING btree (run_id, target, seq) WHERE (seq IS NOT NULL);


--
-- Name: runs_spec_name; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX runs_spec_name ON public.runs USING btree (spec_name, id);


--
-- Name: workers_run; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX workers_run ON public.workers USING btree (run_id) WHERE (left_at IS NULL);


--
-- Name: _lllllllllllllllllllllllllllllllllllllllllllllllllllll_b9994beb _llllllllllllllllllllllllllllllllllllllllllllllllll_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public._lllllllllllllllllllllllllllllllllllllllllllllllllllll_b9994beb
    ADD CONSTRAINT _llllllllllllllllllllllllllllllllllllllllllllllllll_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.runs(id);


--
-- Name: _products_history _products_history_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public._products_history
    ADD CONSTRAINT _products_history_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.runs(id);


--
-- Name: bodies bodies_fetch_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.bodies
    ADD CONSTRAINT bodies_fetch_id_fkey FOREIGN KEY (fetch_id) REFERENCES public.fetch_log(id);


--
-- Name: bodies bodies_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.bodies
    ADD CONSTRAINT bodies_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.runs(id);


--
-- Name: chain_ends chain_ends_fetch_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.chain_ends
    ADD CONSTRAINT chain_ends_fetch_id_fkey FOREIGN KEY (fetch_id) REFERENCES public.fetch_log(id);


--
-- Name: chain_ends chain_ends_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.chain_ends
    ADD CONSTRAINT chain_ends_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.runs(id);


--
-- Name: cursors cursors_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.cursors
    ADD CONSTRAINT cursors_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.runs(id);


--
-- Name: extraction_health extraction_health_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.extraction_health
    ADD CONSTRAINT extraction_health_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.runs(id);


--
-- Name: fetch_log fetch_log_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.fetch_log
    ADD CONSTRAINT fetch_log_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.runs(id);


--
-- Name: host_stats host_stats_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.host_stats
    ADD CONSTRAINT host_stats_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.runs(id);


--
-- Name: lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll llllllllllllllllllllllllllllllllllllllllllllllllll__run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll
    ADD CONSTRAINT llllllllllllllllllllllllllllllllllllllllllllllllll__run_id_fkey FOREIGN KEY (_run_id) REFERENCES public.runs(id);


--
-- Name: products products__run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.products
    ADD CONSTRAINT products__run_id_fkey FOREIGN KEY (_run_id) REFERENCES public.runs(id);


--
-- Name: requests requests_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.requests
    ADD CONSTRAINT requests_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.runs(id);


--
-- Name: run_targets run_targets_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run_targets
    ADD CONSTRAINT run_targets_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.runs(id);


--
-- Name: runs runs_retry_of_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_retry_of_fkey FOREIGN KEY (retry_of) REFERENCES public.runs(id);


--
-- Name: visits visits__run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.visits
    ADD CONSTRAINT visits__run_id_fkey FOREIGN KEY (_run_id) REFERENCES public.runs(id);


--
-- Name: workers workers_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.workers
    ADD CONSTRAINT workers_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.runs(id);


--
-- PostgreSQL database dump complete
--


