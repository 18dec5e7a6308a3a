"""The commands' longer help texts and their exit-status epilogues, in one place next to each other."""

from __future__ import annotations

EXIT_CODES_HELP = """\b
Exit status:
  0    every request succeeded
  1    some requests failed (see the _crawlrunner_fetch_log table), or the run failed
  2    bad spec or usage; nothing was fetched
  3    extraction looks broken (a selector matched nothing, a field is always empty),
       or expectations in the spec were not met (listed at the end; wins over 1)
  130  interrupted by Ctrl-C (143: by SIGTERM); everything fetched so far is committed"""

VALIDATE_EXIT_HELP = """\b
Exit status:
  0    every spec is valid
  2    at least one problem (each printed on stderr)"""

DEMO_EXIT_HELP = """\b
Exit status:
  0    the demo crawl succeeded (or --serve was stopped with Ctrl-C)
  1    the demo crawl failed
  2    bad usage (e.g. the output is not a database file)"""

READ_EXIT_HELP = """\b
Exit status:
  0    done
  1    the database could not be read (or the SQL failed)
  2    bad usage: no such file, table or option"""

# `export -f`: parquet is written to a file (-o) only, each column typed as the database declares it;
# it needs pyarrow (pip install 'crawlrunner[parquet]').
EXPORT_FORMATS = ["jsonl", "csv", "json", "parquet"]

RUNS_HELP = """List the runs in DB with their status and counts (a run still going: counted so far).

\b
Example:
  crawlrunner runs demo.db"""

REPORT_HELP = """Write run RUN of DB (default: its latest run) as one HTML page.

Per target: requests, failures by kind with example URLs, records, extraction
health, why pagination stopped, a latency histogram and requests per second
over time; per host, the time the run waited. Self-contained: it opens offline.
DB is an SQLite file or a postgresql:// URL; it is only read.

\b
Example:
  crawlrunner report demo.db -o report.html"""

PLAN_EXIT_HELP = """\b
Exit status:
  0    the spec is valid; nothing was fetched
  2    bad spec or usage"""

TRY_EXIT_HELP = """\b
Exit status:
  0    the page yielded records (or the target has no extraction rules)
  1    the fetch failed (or robots.txt forbids it, or the page could not be read)
  2    bad spec or usage: an unknown target, a child target without URL
  3    the page yielded no records: the records selector matched nothing,
       every field was empty, or every record was dropped"""

TRY_HELP = """Fetch one page of TARGET and show what SPEC's rules make of it; nothing is stored.

The page is the target's first planned request, or URL (relative to the
base URL; needed for a child target). It is fetched as a run fetches it
(headers, auth, TLS, timeouts, retries, the gateway, the address guard, and
robots.txt when the target has follow.robots: true), or read from a saved
page with --body. Shown: the response, each record field by field with the
rule that produced each value (defaults and values that failed conversion
marked), the fields that matched nothing, the next page or why the chain
ends there, and the links and child-target requests the page leads to.
Secrets are masked.

\b
Example:
  crawlrunner try shop.yaml catalogue
  crawlrunner try shop.yaml product_pages https://shop.example/p/1.html
  crawlrunner try shop.yaml catalogue --body saved.html -f json"""

RUN_HELP = """Validate SPEC, fetch every request it plans, and store the records.

Failed requests are recorded in the _crawlrunner_fetch_log table and the run goes on;
the exit status says whether everything succeeded. The first Ctrl-C (or
SIGTERM) lets requests in flight finish; a second one stops at once.
Either way, everything fetched is committed, and --resume continues the
run later (also after a crash or kill -9) without losing or repeating a
record.

\b
Example:
  crawlrunner run shop.yaml -o shop.db -v
  crawlrunner run shop.yaml -o shop.db --resume
  sqlite3 shop.db "SELECT url, error_kind FROM _crawlrunner_fetch_log WHERE error_kind IS NOT NULL"
  crawlrunner run shop.yaml -o postgresql://crawl@db/crawls --workers 4   # on each machine"""

DEMO_HELP = """Crawl a small shop served on 127.0.0.1: no network needed.

Starts the bundled demo site (a JSON API and HTML pages), runs the bundled
demo spec against it, writes DB and shows what to query.

\b
Example:
  crawlrunner demo
  sqlite3 demo.db "SELECT name, price FROM products LIMIT 5"
  crawlrunner demo --serve      # then, elsewhere, a spec of yours against it:
  crawlrunner run shop.yaml --base-url http://127.0.0.1:8765/ -o mine.db"""
