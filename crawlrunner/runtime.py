"""The process a crawl runs in: the optional speed-ups, and tuning for the CLI.

The ``speedups`` extra (uvloop, orjson, aiodns, Brotli) is used whenever it
is installed; ``CRAWLRUNNER_NO_SPEEDUPS=1`` turns uvloop and orjson off, to
measure without them or to rule them out when something misbehaves. aiohttp
picks aiodns and Brotli up by itself.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

SPEEDUPS = os.environ.get("CRAWLRUNNER_NO_SPEEDUPS", "").strip().lower() in ("", "0", "false", "no")

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed and allowed; None for asyncio's own."""
    if not SPEEDUPS:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, on uvloop's loop when the speed-ups are installed."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)


def settle_process() -> None:
    """Tune the interpreter for a crawl, once start-up is done; for the CLI only.

    Only where the command is the whole process: a caller's heap (a test
    runner's, an application's) is not ours to tune.
    """
    # Everything built so far (modules, the spec) lives as long as the
    # process: out of the garbage collector's sight, it is not scanned again
    # and again while the crawl allocates (about a tenth of the CPU of a
    # crawl of small pages).
    gc.freeze()
    _keep_buffers_off_mmap()


def _keep_buffers_off_mmap() -> None:
    # asyncio reads a socket into a fresh 256 KiB buffer and shrinks it; above
    # glibc's 128 KiB mmap threshold, that is a new mapping, page faults and
    # an unmap on every read (a third more system time on small pages).
    # uvloop reuses one buffer; for asyncio's loop, serve such sizes from the
    # heap and keep a few MiB of it rather than trimming it after each burst.
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no such tuning)
        return
    mallopt(_M_MMAP_THRESHOLD, 1 << 20)
    mallopt(_M_TRIM_THRESHOLD, 4 << 20)
