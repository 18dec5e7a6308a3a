"""The exit-status epilogues of the commands' help, in one place next to each other."""

from __future__ import annotations

EXIT_CODES_HELP = """\b
Exit status:
  0    every request succeeded
  1    some requests failed (see the fetch_log table), or the run failed
  2    bad spec or usage; nothing was fetched
  3    expectations in the spec were not met (listed at the end; wins over 1)
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

PLAN_EXIT_HELP = """\b
Exit status:
  0    the spec is valid; nothing was fetched
  2    bad spec or usage"""
