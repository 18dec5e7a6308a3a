"""The ``requests`` table's statements on SQLite (the row layout itself is ``backends.rows``)."""

from __future__ import annotations

from ..rows import COLUMNS
from .schema import insert_statement

INSERT = insert_statement("_crawlrunner_requests", COLUMNS)
MARK = "UPDATE _crawlrunner_requests SET state = ? WHERE id = ?"
SKIP = "UPDATE _crawlrunner_requests SET state = 'skipped', reason = ? WHERE id = ?"
