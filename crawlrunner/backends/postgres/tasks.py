"""Ending background tasks: cancelled, and waited for however the caller is interrupted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

log = logging.getLogger(__name__)


async def finish(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait until they have ended, even if the caller is cancelled meanwhile."""
    for task in tasks:
        task.cancel()
    pending = set(tasks)
    interrupted = False
    while pending:
        try:
            _, pending = await asyncio.wait(pending)
        except asyncio.CancelledError:
            interrupted = True  # they end promptly (cancelled): wait, then pass it on
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            log.error("a background task failed: %s", task.get_name(), exc_info=task.exception())
    if interrupted:
        raise asyncio.CancelledError
