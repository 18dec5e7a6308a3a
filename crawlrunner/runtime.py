"""The process a crawl runs in: the optional speed-ups, and tuning for the CLI.

The ``speedups`` extra (uvloop, orjson, aiodns, Brotli) is used whenever it
is installed; ``CRAWLRUNNER_NO_SPEEDUPS=1`` turns uvloop and orjson off, to
measure without them or to rule them out when something misbehaves. aiohttp
picks aiodns and Brotli up by itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import gc
import os
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Generic, ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")

SPEEDUPS = os.environ.get("CRAWLRUNNER_NO_SPEEDUPS", "").strip().lower() in ("", "0", "false", "no")

# The garbage collector's first-generation threshold for a crawl (``settle_process``).
YOUNG_OBJECTS = 10_000

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
    """``asyncio.run``, on uvloop's loop when the speed-ups are installed.

    Called where an event loop is already running (a Jupyter notebook, an
    async orchestrator's task), ``main`` runs on a loop of its own in a worker
    thread while the caller waits: a thread can run only one loop, and the
    caller's is busy waiting for this call. A KeyboardInterrupt while waiting
    (the notebook's interrupt) cancels ``main`` and waits for its cleanup, so
    a crawl stops as it does on Ctrl-C; a second one stops waiting.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(main)
    return _LoopThread(main).result()


def blocking(function: Callable[P, Coroutine[Any, Any, T]], name: str, doc: str) -> Callable[P, T]:
    """A blocking form of the coroutine function ``function``, run with ``run``.

    It takes exactly ``function``'s parameters (for type checkers, and for
    ``help()`` and ``inspect.signature``, through ``__wrapped__``), so the two
    cannot drift apart.
    """

    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        return run(function(*args, **kwargs))

    call.__name__ = call.__qualname__ = name
    call.__doc__ = doc
    return call


class _LoopThread(threading.Thread, Generic[T]):
    """A coroutine run to its end on a new event loop in a thread of its own."""

    def __init__(self, main: Coroutine[Any, Any, T]) -> None:
        # A daemon thread: if the caller gives up waiting (a second interrupt),
        # the interpreter may still exit while the crawl winds down.
        super().__init__(name="crawlrunner-loop", daemon=True)
        self._main = main
        self._outcome: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[T] | None = None

    def run(self) -> None:
        try:
            with asyncio.Runner(loop_factory=loop_factory()) as runner:
                self._outcome.set_result(runner.run(self._tracked()))
        except BaseException as exc:  # handed to the waiting thread, which raises it
            self._outcome.set_exception(exc)
        finally:
            self._started.set()  # in case it failed before the task began

    async def _tracked(self) -> T:
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        self._started.set()
        return await self._main

    def result(self) -> T:
        self.start()
        try:
            return self._outcome.result()
        except KeyboardInterrupt:
            self._cancel()
            self._outcome.exception()  # the cleanup's end; a second interrupt stops waiting
            raise

    def _cancel(self) -> None:
        self._started.wait()
        if self._loop is not None and self._task is not None and not self._outcome.done():
            try:
                self._loop.call_soon_threadsafe(self._task.cancel)
            except RuntimeError:  # the loop closed in the meantime: nothing left to cancel
                pass


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
    # A request allocates and frees a few hundred containers (aiohttp's
    # request and response, headers, futures, the record), so the default
    # first-generation threshold of 700 ran a collection every few requests,
    # finding almost nothing: a tenth of a crawl's CPU on small pages. Ten
    # thousand is past what a batch of requests holds at once, so collections
    # become rare, and cyclic garbage still goes within ten thousand objects.
    gc.set_threshold(YOUNG_OBJECTS, *gc.get_threshold()[1:])
    gc.enable()  # off while the command started (cli.common.collection_deferred)
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
