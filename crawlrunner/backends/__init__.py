"""Where a run's state lives: a frontier and a sink, supplied together by a backend.

``open_backend(output)`` picks the backend from the output's form: a path is
an SQLite file, the embedded default; a URL names a database server by its
scheme: ``postgresql://`` is a database shared by many workers (``backends/postgres``). The interfaces are in
``backends.base``; the engine imports nothing else of this package.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from ..errors import UsageError
from ..incremental import Cursors
from ..sitemaps import LastRun
from ..spec.model import Spec
from .base import Backend
from .cursors import start_points
from .postgres.connect import display_name, is_postgres_url
from .sitemap_runs import as_last_runs, since_last_run

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


@asynccontextmanager
async def open_backend(output: str | Path) -> AsyncIterator[Backend]:
    """The backend of ``output``, open for the duration of the block."""
    # Imported on use: reading a spec never loads a database driver.
    if is_database_url(output):
        assert isinstance(output, str)
        if not is_postgres_url(output):
            scheme = output.partition("://")[0]
            raise UsageError(
                f"{scheme}:// outputs are not supported; give the path of an SQLite file or a postgresql:// URL"
            )
        from .postgres.backend import PostgresBackend

        async with PostgresBackend.open(output) as shared:
            yield shared
        return
    from .sqlite.backend import SQLiteBackend

    async with SQLiteBackend.open(output) as backend:
        yield backend


def read_cursors(output: str | Path, spec: Spec) -> Cursors:
    """Where the next run of ``spec`` in ``output`` would start its incremental targets, read without writing.

    No database yet: every target starts at its ``initial``. A database that
    cannot be read raises a ``CrawlRunnerError`` saying why.
    """
    if is_database_url(output):
        assert isinstance(output, str)
        from .postgres import query as pg

        with pg.read_only(output) as session:
            return start_points(pg.completed_cursors(session, spec.name), spec)
    if not Path(output).exists():
        return Cursors()
    from .sqlite import query as sql

    with sql.read_only(output) as conn:
        return start_points(sql.completed_cursors(conn, spec.name), spec)


def read_last_runs(output: str | Path, spec: Spec) -> dict[str, LastRun]:
    """What ``since: last_run`` would stand for in the next run of ``spec`` in ``output``, read without writing.

    No database yet: nothing (every page is due). A database that cannot be
    read raises a ``CrawlRunnerError`` saying why.
    """
    targets = since_last_run(spec)
    if not targets:
        return {}
    if is_database_url(output):
        assert isinstance(output, str)
        from .postgres import query as pg

        with pg.read_only(output) as session:
            return as_last_runs(pg.last_run_rows(session, spec.name, targets))
    if not Path(output).exists():
        return {}
    from .sqlite import query as sql

    with sql.read_only(output) as conn:
        return as_last_runs(sql.last_run_rows(conn, spec.name, targets))


def is_database_url(output: object) -> bool:
    """Whether ``output`` names a database server (``scheme://...``) rather than a file."""
    return isinstance(output, str) and _URL.match(output) is not None


def output_name(output: str | Path) -> str:
    """``output`` as it may be shown: a URL without its password."""
    if is_postgres_url(output):
        assert isinstance(output, str)
        return display_name(output)
    return str(output)
