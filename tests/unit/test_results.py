from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from crawlrunner.results import utc_now


def test_utc_now_is_iso_8601_utc_with_milliseconds_and_current() -> None:
    before = datetime.now(UTC)
    text = utc_now()
    after = datetime.now(UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", text)
    # Milliseconds are truncated, as isoformat(timespec="milliseconds") does.
    assert before - timedelta(milliseconds=1) <= datetime.fromisoformat(text) <= after
