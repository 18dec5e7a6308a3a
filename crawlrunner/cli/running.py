"""The commands that crawl: ``run``, ``demo``, ``reextract``."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..console import help as texts
from ..overrides import check_base_url, check_output
from ..settings import MAX_CONNECTIONS
from . import common
from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    collection_deferred,
    exit_for,
    exit_status,
    fail,
    quiet,
    say,
    user_errors,
    verbosity,
)
from .specs import print_plan

if TYPE_CHECKING:
    from ..api import RunResult
    from ..progress import Reporter
    from ..spec.model import Spec


def _run_spec(
    spec: Spec, output: str | Path | None, only: tuple[str, ...], summary_to: str | None = None, **options: Any
) -> RunResult:
    # Imported here, not at the top: `crawlrunner validate` and `--version` load this module too,
    # and should not pay for asyncio and the summary's imports (the spec model among them).
    import signal

    from ..console.signals import SIGNAL_NAMES, run_with_signals
    from ..console.summary import format_summary

    warn = partial(say, level="warning")
    result, signals = run_with_signals(spec, output, only or None, warn=warn, settle=common.owns_process, **options)
    if result is None:
        fail("stopped at once; everything fetched so far was committed", signals.exit_code)
    if signals.received is not None:
        by = SIGNAL_NAMES[signal.Signals(signals.received)]
        if not options.get("join"):
            _write_summary_json(summary_to, result, signals.exit_code, by)
        if not quiet() and not options.get("join"):  # a helper of --workers: the first worker reports
            click.echo(format_summary(result, by, signals.exit_code), err=summary_to == "-")
        where = f"{result.database} (run {result.run_id})"
        fail(f"interrupted by {by}; everything fetched so far is in {where}", signals.exit_code)
    return result


def _metrics(address: str | None, reporter: Reporter | None) -> AbstractContextManager[Reporter | None]:
    """``--metrics-port``: the server runs while the block does, fed by a reporter wrapping the progress display."""
    if address is None:
        return nullcontext(reporter)
    from ..console.metrics import serving_metrics

    return serving_metrics(address, reporter)


def _check_summary_to(summary_to: str | None) -> None:
    """Before the run: a long crawl should not end in a summary that cannot be written."""
    if summary_to not in (None, "-") and not Path(summary_to).parent.is_dir():
        fail(f"--summary-json: no folder {Path(summary_to).parent} to write {summary_to} in", EXIT_USAGE)


def _write_summary_json(summary_to: str | None, result: RunResult, status: int, by: str | None = None) -> None:
    if summary_to is None:
        return
    from ..console.summary_json import summary_json

    text = summary_json(result, status, by)
    if summary_to == "-":
        click.echo(text)
        return
    try:
        Path(summary_to).write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        fail(f"--summary-json: cannot write {summary_to}: {exc.strerror or exc}", EXIT_FAILED)


def _say_already_completed(result: RunResult) -> None:
    """--resume of a run that completed: nothing to do, which is not a failure (resuming is idempotent)."""
    if quiet():
        return
    failed = sum((result.failed_by_target or {}).values())
    note = f" ({failed} failed: --retry-failed fetches them again)" if failed else ""
    say(f"run {result.run_id} already completed; nothing to resume{note}", "info")


@click.command(help=texts.RUN_HELP, epilog=texts.EXIT_CODES_HELP, short_help="Run a spec: fetch, extract, store.")
@click.argument("spec_file", metavar="SPEC", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", metavar="DB", help="SQLite file to write (default: the spec's output, or <name>.db).")
@click.option(
    "-t", "--target", "only", multiple=True, metavar="NAME",
    help="Run only this target (repeatable); its parent targets run too, since they give it its requests.",
)  # fmt: skip
@click.option("--base-url", metavar="URL", help="Replace the spec's http.base_url (e.g. a staging host).")
@click.option(
    "--resume", is_flag=True,
    help="Continue the spec's last run in DB where it stopped, with any targets added to the spec since "
    "(a completed run: nothing to do).",
)  # fmt: skip
@click.option("--retry-failed", is_flag=True, help="A new run fetching only the requests the last run failed.")
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(1, MAX_CONNECTIONS),
    metavar="N",
    help="Requests at once (overrides http.limits.connections).",
)
@click.option("--max-requests", type=click.IntRange(1), metavar="N", help="Stop after N requests: for trying a spec.")
@click.option("--max-records", type=click.IntRange(1), metavar="N", help="Stop once N records are stored.")
@click.option("--dry-run", is_flag=True, help="Show what would be fetched (like `crawlrunner plan`) and stop.")
@click.option("-n", "--first", type=click.IntRange(0), metavar="N", help="With --dry-run: requests shown (default: 5).")
@click.option("--insecure", is_flag=True, help="Allow targets with tls.verify: false (no certificate checks).")
@click.option(
    "--progress/--no-progress",
    default=True,
    show_default=True,
    help="Live progress on a terminal, else a line every 10 s.",
)
@click.option(
    "-w", "--workers", type=click.IntRange(1, 256), default=1, metavar="N",
    help="Worker processes on this machine, sharing the run (needs a postgresql:// output).",
)  # fmt: skip
@click.option(
    "--summary-json", "summary_to", metavar="FILE",
    help="Also write the summary, exit status and counts as JSON to FILE (- for stdout; the text summary then goes to stderr).",
)  # fmt: skip
@click.option(
    "--metrics-port", "metrics_at", metavar="[HOST:]PORT",
    help="Serve Prometheus metrics of the run at http://HOST:PORT/metrics (HOST: 127.0.0.1); "
    "needs crawlrunner[metrics].",
)  # fmt: skip
@click.option("--join", "join", hidden=True)  # a worker started by --workers: "-", its run's id on stdin
@verbosity
def run(
    spec_file: Path,
    output: str | None,
    only: tuple[str, ...],
    base_url: str | None,
    resume: bool,
    retry_failed: bool,
    concurrency: int | None,
    max_requests: int | None,
    max_records: int | None,
    dry_run: bool,
    first: int | None,
    insecure: bool,
    progress: bool,
    workers: int,
    summary_to: str | None,
    metrics_at: str | None,
    join: str | None,
) -> None:
    from ..console.summary import format_problems, format_summary
    from ..console.workers import LocalWorkers, check_shared, helper_arguments, run_to_join
    from ..spec import load_spec

    with collection_deferred(), user_errors():
        check_base_url(base_url, name="--base-url")
        check_output(output, name="--output")
        _check_summary_to(summary_to)
        if resume and retry_failed:
            fail("give --resume or --retry-failed, not both", EXIT_USAGE)
        if first is not None and not dry_run:
            fail("-n/--first only goes with --dry-run (it says how many planned requests to show)", EXIT_USAGE)
        spec = load_spec(spec_file, base_url=base_url)
        if dry_run:
            print_plan(spec, only, 5 if first is None else first, database=output, max_requests=max_requests)
            return
        if concurrency is not None:
            from ..api import with_concurrency

            spec = with_concurrency(spec, concurrency)
        reporter = None
        if progress and not quiet() and join is None:
            from ..progress import reporter_for

            reporter = reporter_for(sys.stderr)
        from ..backends import is_database_url  # here, once the spec is good: it loads the engine and aiohttp

        check_shared(workers, join, is_database_url(output or spec.default_output))
        if workers > 1 and str(spec_file) == "-":  # helpers read their run's id from stdin: it has no spec left
            fail("--workers needs the spec in a file, not on stdin", EXIT_USAGE)
        helpers = LocalWorkers(workers, helper_arguments(click.get_current_context(), output or spec.default_output))
        if (run_id := run_to_join(join)) == 0:  # the first worker gave up before the run opened
            sys.exit(EXIT_OK)
        with _metrics(metrics_at, reporter) as reporter:
            try:
                helpers.spawn()  # now: they load while this one opens the run, and wait for its id
                result = _run_spec(
                    spec, output, only, resume=resume, retry_failed=retry_failed, reporter=reporter,
                    max_requests=max_requests, max_records=max_records, insecure=insecure, join=run_id,
                    opened=helpers.start, forward=helpers.forward, summary_to=summary_to,
                )  # fmt: skip
            finally:
                if (failed := helpers.wait()) not in (EXIT_OK, EXIT_INTERRUPTED, 143):
                    say(f"a worker started by --workers exited with status {failed}; see its messages above", "warning")
    if join is not None:  # a helper: the worker that started it reports the run
        sys.exit(EXIT_OK)
    _write_summary_json(summary_to, result, EXIT_OK if result.already_completed else exit_status(result))
    if result.already_completed:
        _say_already_completed(result)
        sys.exit(EXIT_OK)
    if not quiet():
        click.echo(format_summary(result), err=summary_to == "-")
    elif (problems := format_problems(result)) is not None:
        click.echo(problems, err=True)
    exit_for(result)


@click.command(help=texts.DEMO_HELP, epilog=texts.DEMO_EXIT_HELP, short_help="Crawl the bundled shop offline.")
@click.option("-o", "--output", default="demo.db", show_default=True, metavar="DB", help="SQLite file to write.")
@click.option("--serve", is_flag=True, help="Only serve the demo shop (until Ctrl-C), to run specs against it.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port for the shop [default: any free port; 8765 with --serve].",
)
@verbosity
def demo(output: str, serve: bool, port: int | None) -> None:
    import asyncio

    from .. import runtime
    from ..console.summary import format_summary
    from ..demo import run_demo, serve_forever

    if serve:
        with user_errors():
            try:
                asyncio.run(serve_forever(8765 if port is None else port, click.echo))
            except KeyboardInterrupt:
                click.echo("demo shop stopped", err=True)
        return
    with user_errors():
        result = runtime.run(run_demo(output, port or 0))
    if not quiet():
        click.echo(format_summary(result))
        click.echo(
            "\nTry a query:\n"
            f'  sqlite3 {result.database} "SELECT name, price FROM products '
            f'WHERE _run_id = {result.run_id} ORDER BY price DESC LIMIT 5"'
        )
    exit_for(result)


@click.command(epilog=texts.EXIT_CODES_HELP, short_help="Rebuild tables from stored bodies, no requests.")
@click.argument("spec_file", metavar="SPEC", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", metavar="DB", help="SQLite file (default: the spec's output, or <name>.db).")
@click.option("-t", "--target", "only", multiple=True, metavar="NAME", help="Only this target (repeatable).")
@verbosity
def reextract(spec_file: Path, output: str | None, only: tuple[str, ...]) -> None:
    """Re-run SPEC's extraction rules over the bodies earlier runs stored.

    For targets with store_bodies: true. After changing fields or selectors,
    this rebuilds their tables without a single request; the result is a run
    with status "reextracted".

    \b
    Example:
      crawlrunner reextract shop.yaml -o shop.db
    """
    from ..api import reextract as reextract_spec
    from ..console.summary import format_summary
    from ..spec import load_spec

    with user_errors():
        result = reextract_spec(load_spec(spec_file), output=output, only=only or None)
    if not quiet():
        click.echo(format_summary(result))
    exit_for(result)
