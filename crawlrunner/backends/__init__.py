"""Where a run's state lives: a frontier and a sink, supplied together by a backend.

``open_backend(output)`` picks the backend from the output's form: a path is
an SQLite file, the embedded default; a URL names a database server by its
scheme (PostgreSQL is the next backend). The interfaces are in
``backends.base``; the engine imports nothing else of this package.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from ..errors import UsageError
from .base import Backend

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


@asynccontextmanager
async def open_backend(output: str | Path) -> AsyncIterator[Backend]:
    """The backend of ``output``, open for the duration of the block."""
    if isinstance(output, str) and _URL.match(output):
        scheme = output.partition("://")[0]
        raise UsageError(f"{scheme}:// outputs are not supported; give the path of an SQLite file")
    # Imported on use: reading a spec never loads a database driver.
    from .sqlite.backend import SQLiteBackend

    async with SQLiteBackend.open(output) as backend:
        yield backend
