"""crawlrunner's log output on stderr: text lines, or one JSON object per line for log collectors.

The command line sets it up (``-v``, ``-q`` and ``--log-format`` may come
before or after the command name, so each call changes only what it is
given); its own messages use ``json_message`` to match the chosen format.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

LOGGER = "crawlrunner"
REQUESTS_LOGGER = "crawlrunner.requests"  # the engine's line per request (DEBUG)
TEXT_TIME = "%Y-%m-%d %H:%M:%S"
_SETTINGS = "_crawlrunner_cli"  # where the settings live: on the logger, so every call sees them


class JSONFormatter(logging.Formatter):
    """One JSON object per line, for log collectors (times in UTC).

    A line logged with ``extra={"fields": {...}}`` (the engine's line per
    request) carries those fields too, beside time, level, logger and message.
    """

    converter = time.gmtime  # type: ignore[assignment]

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry |= {key: value for key, value in fields.items() if key not in entry}
        return json.dumps(entry, ensure_ascii=False)


def _settings() -> dict[str, Any]:
    root = logging.getLogger(LOGGER)
    settings: dict[str, Any] = root.__dict__.setdefault(_SETTINGS, {"verbose": 0, "quiet": False, "fmt": "text"})
    return settings


def log_format() -> str:
    """ "text" or "json": how the command's own messages should look."""
    return str(logging.getLogger(LOGGER).__dict__.get(_SETTINGS, {}).get("fmt", "text"))


def json_message(message: str, level: str, logger: str, fields: dict[str, object] | None = None) -> str:
    """A message of the command itself, as a line like those of ``JSONFormatter`` (``fields`` beside it)."""
    entry: dict[str, object] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "level": level,
        "logger": logger,
        "message": message,
    }
    return json.dumps(entry | (fields or {}), ensure_ascii=False)


def configure_logging(verbose: int | None = None, quiet: bool | None = None, fmt: str | None = None) -> None:
    """Set up crawlrunner's logger; arguments left None keep what was set before."""
    settings = _settings()
    for key, value in (("verbose", verbose), ("quiet", quiet), ("fmt", fmt)):
        if value is not None:
            settings[key] = value
    if settings["quiet"]:
        level = logging.ERROR
    else:
        level = {0: logging.WARNING, 1: logging.INFO}.get(settings["verbose"], logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    if settings["fmt"] == "json":
        handler.setFormatter(JSONFormatter())
    else:
        # Local time with milliseconds: lines of a long run can be matched with the fetch log.
        handler.setFormatter(
            logging.Formatter("%(asctime)s.%(msecs)03d %(levelname).1s %(name)s: %(message)s", TEXT_TIME)
        )
    # -v is "one line per request": the library logs those at DEBUG, on a logger of their own.
    requests_level = logging.DEBUG if settings["verbose"] and not settings["quiet"] else logging.NOTSET
    logging.getLogger(REQUESTS_LOGGER).setLevel(requests_level)
    root = logging.getLogger(LOGGER)
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
