"""The commands that read a database: ``query``, ``export``, ``runs``, ``changes``, ``report``, ``stop``."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..console import help as texts
from .common import quiet, user_errors, verbosity

if TYPE_CHECKING:
    from ..read import Stream


FORMATS = click.Choice(["table", "csv", "json", "jsonl"])


def _emit(stream: AbstractContextManager[Stream], fmt: str, output: Path | None = None) -> int:
    """Write rows as they are read (constant memory), to ``output`` or stdout; returns the row count."""
    from ..console.formats import write_rows

    with user_errors(), stream as rows:
        return write_rows(rows.columns, rows.rows, fmt, output)


@click.command(epilog=texts.READ_EXIT_HELP, short_help="Run SQL against a crawl database.")
@click.argument("database", metavar="DB", type=click.Path())  # a str: a file or a postgresql:// URL
@click.argument("sql")
@click.option("-f", "--format", "fmt", type=FORMATS, default="table", show_default=True, help="Output format.")
@verbosity
def query(database: str, sql: str, fmt: str) -> None:
    """Run read-only SQL against DB and print the rows.

    \b
    Example:
      crawlrunner query demo.db "SELECT name, price FROM products ORDER BY price DESC LIMIT 5"
      crawlrunner query demo.db "SELECT * FROM _crawlrunner_fetch_log WHERE error_kind IS NOT NULL" -f csv
    """
    from ..read import stream_query

    _emit(stream_query(database, sql), fmt)


@click.command(epilog=texts.READ_EXIT_HELP, short_help="Export a target's table: JSONL, JSON, CSV or Parquet.")
@click.argument("database", metavar="DB", type=click.Path())  # a str: a file or a postgresql:// URL
@click.argument("target")
@click.option("-f", "--format", "fmt", type=click.Choice(texts.EXPORT_FORMATS), default="jsonl", show_default=True)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout)."
)
@click.option("--run", "run_id", type=int, help="Only the rows of this run.")
@verbosity
def export(database: str, target: str, fmt: str, output: Path | None, run_id: int | None) -> None:
    """Export TARGET's rows from DB.

    \b
    Example:
      crawlrunner export demo.db products -o products.jsonl
      crawlrunner export demo.db products -f csv --run 3 > products.csv
    """
    from ..read import stream_export

    count = _emit(stream_export(database, target, run_id), fmt, output)
    if output is not None and not quiet():
        click.echo(f"{count} rows written to {output}", err=True)


@click.command(help=texts.RUNS_HELP, epilog=texts.READ_EXIT_HELP, short_help="List the runs in a database.")
@click.argument("database", metavar="DB", type=click.Path())  # a str: a file or a postgresql:// URL
@click.option("-f", "--format", "fmt", type=FORMATS, default="table", show_default=True, help="Output format.")
@verbosity
def runs(database: str, fmt: str) -> None:
    from ..read import stream_runs

    _emit(stream_runs(database), fmt)


@click.command(help=texts.REPORT_HELP, epilog=texts.READ_EXIT_HELP, short_help="Write a run's report as one HTML page.")
@click.argument("database", metavar="DB", type=click.Path())  # a str: a file or a postgresql:// URL
@click.argument("run_id", metavar="[RUN]", required=False, type=click.IntRange(1))
@click.option("-o", "--output", default="report.html", show_default=True, metavar="FILE", help="HTML file to write.")
@verbosity
def report(database: str, run_id: int | None, output: str) -> None:
    from ..run_report import write_report

    with user_errors():
        written = write_report(database, output, run_id)
    if not quiet():
        click.echo(f"report written to {written}", err=True)


@click.command(epilog=texts.READ_EXIT_HELP, short_help="Make every worker of a shared run finish and exit.")
@click.argument("database", metavar="URL")
@click.argument("run_id", metavar="RUN", type=click.IntRange(1))
@verbosity
def stop(database: str, run_id: int) -> None:
    """Make every worker of run RUN (in the PostgreSQL database URL) finish its requests in flight and exit;
    what is left stays to do: starting workers again resumes the run.

    \b
    Example:
      crawlrunner stop postgresql://crawl@db/crawls 7
    """
    from ..api import stop_run

    with user_errors():
        alive = stop_run(database, run_id)
    if not quiet():
        click.echo(f"run {run_id}: asked {alive} worker{'s' if alive != 1 else ''} to finish and exit", err=True)


@click.command(epilog=texts.READ_EXIT_HELP, short_help="What changed in an upsert target.")
@click.argument("database", metavar="DB", type=click.Path())  # a str: a file or a postgresql:// URL
@click.argument("target")
@click.option("--since", type=int, metavar="RUN", help="Changes after this run (default: the latest run's).")
@click.option("-f", "--format", "fmt", type=FORMATS, default="table", show_default=True, help="Output format.")
@verbosity
def changes(database: str, target: str, since: int | None, fmt: str) -> None:
    """Show keys added, values changed, keys removed and restored in TARGET (a target with mode: upsert).

    \b
    Example:
      crawlrunner changes shop.db products              # in the latest run
      crawlrunner changes shop.db products --since 12   # in every run after 12
    """
    from ..read import stream_changes

    count = _emit(stream_changes(database, target, since), fmt)
    if not count and not quiet():
        click.echo(
            f"no changes in {target}" + (f" after run {since}" if since is not None else " in its latest run"), err=True
        )
