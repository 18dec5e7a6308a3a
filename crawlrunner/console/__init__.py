"""What the command line prints, without click: ``cli`` parses options and calls these.

::

    formats.py   rows as a text table, CSV, JSON or JSON lines
    summary.py   the end-of-run table and what the exit status means
    plan.py      a spec's plan preview, as lines
    logs.py      crawlrunner's log handler: text or one JSON object per line
    signals.py   Ctrl-C/SIGTERM during a run: stop gracefully, then at once
"""
