"""The embedded default backend: one SQLite file holds the run's state and its records.

::

    backend.py   SQLiteBackend: what the rest of crawlrunner sees of all this
    store.py     the file: opening, layout migrations, target tables, the runs table
    schema.py    the layout (documented in docs/database.md) and identifier quoting
    rows.py      the requests table's row layout: a RequestPlan to a row and back
    opening.py   a run's starting point: fresh, resumed, retrying failures
    writer.py    the sink: outcomes in, one transaction per batch
    query.py     the read side: SQL, exports, runs, changes
"""
