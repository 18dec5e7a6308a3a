"""The ``requests`` table's statements on SQLite (the row layout itself is ``backends.rows``)."""

from __future__ import annotations

from ..rows import COLUMNS

INSERT = f"INSERT INTO _crawlrunner_requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
MARK = "UPDATE _crawlrunner_requests SET state = ? WHERE id = ?"
SKIP = "UPDATE _crawlrunner_requests SET state = 'skipped', reason = ? WHERE id = ?"
