"""Politeness held across the cluster: per-host turns, pacing and cooldowns, in PostgreSQL.

``ClusterSlots`` is, for every worker process of a run, what
``http.ratelimit.HostSlots`` is within one process (the engine's fetcher
takes either: ``backends.base.HostGate``)::

    async with slots.hold(url, rate):   # a turn of the host, paced, outside any cooldown
        ... send ...
    slots.cool_down(url, seconds)       # a 429/503 came back: every worker leaves the host alone

Three rules, three mechanisms, all keyed by run:

- **Pacing** (``rate_limit``, ``min_delay``, a wider ``gap`` the worker's own
  ``http.politeness`` asks for, read as the send reserves): each send reserves
  its moment in the host's ``hosts`` row for its rate, its interval after the
  last one: one upsert moves ``next_at`` on and says how long this request
  waits, by the database's clock (``clock_timestamp()``): the machines' clocks
  never matter, and reservations are an interval apart whoever makes them.
- **Cooldown** (429/503): applied in this process at once, written to the
  host's row (``rate_key = ''``) in the background. Every worker reads the
  run's active cooldowns every ``REFRESH`` seconds, and a paced host's
  reservation starts after the cooldown anyway.
- **Concurrency** (``limits.per_host``): a request holds one of the host's
  ``per_host`` turns, a ``host_turns`` row whose primary key is (run, host,
  turn number below ``per_host``): more than ``per_host`` holders at once is
  impossible by construction, whatever the timing, with no lock held between
  statements. A dead worker's rows are deleted by the reaper
  (``release_worker_turns``) and a closing one deletes its own.

Amortising the turns. A turn costs two statements (take, give back) if
every request goes to the database, and this runs for every request (the
default ``per_host`` is 8). So a process keeps the turns it took for a
short while, and one background task (the broker) speaks for all of them:

- A turn given back while another request of this process waits for the
  same host is handed to it directly, and a turn given back with nobody
  waiting is kept idle for ``LINGER`` in case one comes: a process busy with
  a host takes and gives back nothing per request. A turn goes back to the
  database once it is ``HANDOFF_WINDOW`` old, though, so that a busy
  process cannot keep a host from the others: every turn is put up again at
  least once a second, and the longest-waiting worker's mark on a host gets
  the next free turn (see ``hosts_sql``).
- Everything the broker has to say (turns given back, turns wanted for any
  number of hosts) goes in one call per round (``crawlrunner_host_round``),
  so under load a round carries many requests' worth.
- Only the broker asks for turns, one statement for all the hosts due: a
  process polls a full host once per backoff step (``POLL_MIN`` doubling
  to ``POLL_MAX``), not once per waiting request, and not at all while it
  holds every turn of the host itself.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ...settings import Gap, RateLimit
from .clock import DatabaseClock
from .connect import connection_lost, retrying
from .hosts_sql import (
    ACTIVE_COOLDOWNS,
    FORGET_TOKEN,
    RESERVE,
    RESERVE_AGAIN,
    TURNS,
    WRITE_COOLDOWNS,
    release_worker_turns,
)
from .tasks import finish

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger(__name__)

REFRESH = 0.05  # seconds between reads of the run's cooldowns (and the clock): how soon a worker hears of another's 429
POLL_MIN, POLL_MAX = 0.005, 0.1  # backoff between asks for the turns of a host that is full
HANDOFF_WINDOW = 1.0  # a turn older than this goes back to the database when its request ends
MARK_LASTS = 2 * POLL_MAX  # a worker's mark on a host (it waits first) lapses unless renewed this often
POLL_MARKED = 0.01  # a worker whose mark is on a host asks this often: the next free turn is its
LINGER = 0.05  # a turn nobody here waits for is kept this long, in case a request for its host comes
COALESCE = 0.02  # idle turns due back this soon go with the ones due now: fewer rounds
TAKE_HOSTS = 256  # hosts asked for in one round, at most: a statement of bounded size
# A send to a host whose pacer is idle is due this long after the database
# decides (at most a tenth of the interval), not at once: the reply then
# arrives in time, and the send goes at the moment reserved rather than a
# round trip late (too close to the next one).
PACE_LEAD = 0.005
PACE_LATE, PACE_LATE_RETRIES = 0.002, 2  # a send woken later than this reserves again (so many times at most)
ERROR_PAUSE = 1.0  # after a failed round, and at most after failed refreshes, before trying again
CLOSE_TIMEOUT = 5.0  # for close() to write what is left; past it, the reaper releases the turns


def host_key(url: str) -> str:
    """The host a URL's politeness is counted for: its netloc, lowercased (as ``HostSlots``)."""
    # "scheme://netloc/..." without a full parse: this runs for every request.
    parts = url.split("/", 3)
    if len(parts) > 2 and url.startswith(("http://", "https://")):
        return parts[2].lower()
    return urlsplit(url).netloc.lower()


def rate_key(rate: RateLimit) -> str:
    """The name of ``rate``'s pacer on a host: equal rates share one, as in ``HostSlots``."""
    return f"{rate.per_second!r}/{rate.min_delay!r}/{rate.cooldown!r}"


@dataclass(eq=False, slots=True)
class _Lease:
    """A turn this process holds in the database."""

    host: str
    turn: int
    token: int
    taken_at: float  # loop time
    parked_until: float = 0.0  # while idle: when it goes back (0: in use or on its way)


class _Host:
    """What this process knows of one host."""

    __slots__ = (
        "backoff",
        "cooldown_until",
        "held",
        "idle",
        "last_sent",
        "marked",
        "next_poll",
        "pace",
        "waiters",
        "waiting_since",
    )

    def __init__(self) -> None:
        self.cooldown_until = 0.0  # loop time
        self.pace: defaultdict[RateLimit, asyncio.Lock] = defaultdict(asyncio.Lock)  # one reservation here at a time
        self.last_sent: dict[RateLimit, float] = {}  # loop time of this worker's last send at each rate
        self.waiters: deque[asyncio.Future[_Lease]] = deque()  # requests waiting for a turn, in order
        self.idle: list[_Lease] = []  # turns held and unused (never while someone waits)
        self.held = 0  # rows in host_turns that are ours: in use, idle, or being given back
        self.next_poll = 0.0
        self.backoff = POLL_MIN
        self.waiting_since = 0.0  # loop time: since when requests here wait for a turn (0: they do not)
        self.marked = False  # this worker's mark is on the host (it waits first)


class _Turn:
    """``hold``'s context manager: a plain class, since it runs for every request."""

    __slots__ = ("_gap", "_host", "_key", "_lease", "_rate", "_slots")

    def __init__(self, slots: ClusterSlots, key: str, host: _Host, rate: RateLimit, gap: Gap | None) -> None:
        self._slots, self._key, self._host, self._rate, self._gap = slots, key, host, rate, gap
        self._lease: _Lease | None = None

    async def __aenter__(self) -> None:
        slots, host = self._slots, self._host
        # The turn first, then the pacing: a reservation made before waiting
        # for a turn could fall due while waiting, and two sends would bunch up.
        if slots.per_host:
            self._lease = await slots._acquire(self._key, host)
        # Most hosts have no pacing and no cooldown: nothing more to do then.
        if self._rate.interval or host.cooldown_until or (self._gap and self._gap()):
            try:
                await slots._wait_for_host(self._key, host, self._rate, self._gap)
            except BaseException:
                self._give_back()
                raise
        host.last_sent[self._rate] = asyncio.get_running_loop().time()

    async def __aexit__(self, *exc_info: object) -> None:
        self._give_back()

    def _give_back(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            self._slots._release(self._host, lease)


class ClusterSlots:
    """Per-host politeness for one worker process of a run, held across all the run's workers.

    ``per_host`` is the run's ``limits.per_host`` (0: no limit). ``start()``
    before the first ``hold``; ``close()`` at the end (it gives back this
    worker's turns; if the process dies instead, ``release_worker_turns``).
    """

    def __init__(
        self, pool: asyncpg.Pool, run_id: int, worker_id: int, per_host: int, *, name: str = "postgresql"
    ) -> None:
        self._pool, self._run_id, self._worker_id, self.per_host = pool, run_id, worker_id, per_host
        self._name = name  # the database, as messages show it
        self._hosts: dict[str, _Host] = {}
        self._rate_keys: dict[RateLimit, str] = {}
        self._wanting: set[str] = set()  # hosts with requests waiting for a turn
        self._parked: deque[tuple[float, _Lease]] = deque()  # idle turns by when they go back (some stale)
        self._returning: list[_Lease] = []  # turns to give back in the next round
        self._cooldowns: dict[str, float] = {}  # host → loop time until, not written yet
        self._tokens = itertools.count(1)
        self._clock = DatabaseClock()
        self._wake = asyncio.Event()
        self._broker_due = float("inf")  # when the broker wakes unless woken
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    # -- the HostGate interface ----------------------------------------------------------

    def hold(self, url: str, rate: RateLimit, gap: Gap | None = None) -> _Turn:
        """A turn to send one request to ``url``'s host: within ``per_host`` over the cluster, paced, not cooling down.

        Use as ``async with slots.hold(url, rate):``; ``gap`` widens its reservation (see ``HostGate``).
        """
        key = host_key(url)
        return _Turn(self, key, self._host(key), rate, gap)

    def cool_down(self, url: str, seconds: float) -> None:
        """Leave ``url``'s host alone for ``seconds``: here at once, in every worker within ``REFRESH``."""
        key = host_key(url)
        until = asyncio.get_running_loop().time() + seconds
        host = self._host(key)
        host.cooldown_until = max(host.cooldown_until, until)
        self._cooldowns[key] = max(self._cooldowns.get(key, 0.0), until)
        self._wake.set()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the run's cooldowns, then keep reading them and sharing turns (in the background)."""
        if self._tasks or self._closed:
            return
        # A worker that joins a run knows its cooldowns (and the database's clock) before its first send.
        try:
            await self._refresh()
        except Exception as exc:  # the refresher tries again
            log.warning("%s: cannot read the hosts' cooldowns yet (%s)", self._name, exc)
        self._tasks = [
            asyncio.create_task(self._refresh_loop(), name=f"crawlrunner-hosts-refresh-{self._worker_id}"),
            asyncio.create_task(self._broker_loop(), name=f"crawlrunner-hosts-broker-{self._worker_id}"),
        ]

    async def close(self) -> None:
        """Stop the background tasks, write the cooldowns not written yet, give back this worker's turns."""
        if self._closed:
            return
        self._closed = True
        tasks, self._tasks = self._tasks, []
        await finish(tasks)
        self._fail_waiters(self._hosts, RuntimeError("the host slots are closed"))
        if self._pool.is_closing():
            log.warning("%s: the pool closed first: this worker's turns wait for the reaper", self._name)
            return
        cooldowns = self._due_cooldowns(asyncio.get_running_loop().time())

        async def last_writes() -> None:
            async with self._pool.acquire() as conn:
                if cooldowns:
                    await conn.execute(WRITE_COOLDOWNS, self._run_id, *cooldowns)
                await release_worker_turns(conn, self._worker_id)

        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await retrying(self._name, "give back this worker's turns", last_writes)
        except Exception as exc:  # the reaper gives the turns back; a cooldown is lost at worst
            log.warning("%s: could not give back this worker's turns on closing: %s", self._name, exc)

    # -- turns, as the requests see them ---------------------------------------------------

    def _host(self, key: str) -> _Host:
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host()
        return host

    async def _acquire(self, key: str, host: _Host) -> _Lease:
        """A turn of ``host``: an idle one of ours, else one the broker gets (in order of asking)."""
        if self._closed or not self._tasks:
            raise RuntimeError("ClusterSlots: start() it before hold(), and not after close()")
        if host.idle and not host.waiters:
            lease = host.idle.pop()
            lease.parked_until = 0.0
            return lease
        waiter: asyncio.Future[_Lease] = asyncio.get_running_loop().create_future()
        host.waiters.append(waiter)
        self._wanting.add(key)
        self._wake.set()
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.cancelled() or not waiter.done():
                with suppress(ValueError):
                    host.waiters.remove(waiter)
            elif waiter.exception() is None:  # handed a turn just as the request was cancelled
                self._release(host, waiter.result())
            raise

    def _release(self, host: _Host, lease: _Lease) -> None:
        """A request is done with its turn: to the next request here, idle for a while, or back."""
        if self._closed:
            return  # close() deleted this worker's turns
        now = asyncio.get_running_loop().time()
        if now - lease.taken_at >= HANDOFF_WINDOW:
            self._returning.append(lease)  # its time is up: back to the database, for all to take
            self._wake.set()
        elif not _hand_over(host, lease):
            self._park(host, lease, now)

    def _park(self, host: _Host, lease: _Lease, now: float) -> None:
        lease.parked_until = now + LINGER
        host.idle.append(lease)
        self._parked.append((lease.parked_until, lease))
        if lease.parked_until < self._broker_due:
            self._wake.set()

    # -- pacing and cooldowns ----------------------------------------------------------------

    async def _wait_for_host(self, key: str, host: _Host, rate: RateLimit, gap: Gap | None) -> None:
        loop = asyncio.get_running_loop()
        late = 0
        while True:
            left = host.cooldown_until - loop.time()
            if left > 0:
                await asyncio.sleep(left)
                continue
            # One send of this worker at a time holds a reservation on the pacer; the next reads its gap as the
            # host's answers say it then (a budget renewed meanwhile: none), not as they said when it queued.
            async with host.pace[rate]:
                interval = max(rate.interval, gap() if gap else 0.0)
                if not interval:
                    return
                due, ends = await self._reserve(key, rate, interval)
                # Sends without a gap reserve nothing: the gap is kept from this worker's last one too.
                due = max(due, host.last_sent.get(rate, -interval) + interval)
                while True:
                    if due > loop.time():
                        await asyncio.sleep(due - loop.time())
                    # Late (a busy event loop or machine): sent now, it would be that much too close to the next
                    # reservation, maybe another worker's. Reserving again keeps the spacing; a few times, so that
                    # a loop always late still sends.
                    if loop.time() - due <= PACE_LATE or late == PACE_LATE_RETRIES:
                        break
                    late += 1
                    due, ends = await self._reserve(key, rate, interval, again=ends)
            if host.cooldown_until <= loop.time():
                return  # else a cooldown began while we slept: round again, for a new reservation

    async def _reserve(
        self, key: str, rate: RateLimit, interval: float, *, again: float | None = None
    ) -> tuple[float, float]:
        """When this send is due, in loop time and by the database's clock; ``again``: a moment it was late for."""
        name = self._rate_keys.get(rate)
        if name is None:
            name = self._rate_keys[rate] = rate_key(rate)
        loop = asyncio.get_running_loop()
        lead = min(PACE_LEAD, interval / 10)

        async def reserve() -> tuple[float, float]:
            async with self._pool.acquire() as conn:
                sent = loop.time()
                row = None
                if again is not None:
                    row = await conn.fetchrow(RESERVE_AGAIN, self._run_id, key, name, interval, again)
                if row is None:
                    row = await conn.fetchrow(RESERVE, self._run_id, key, name, interval, lead)
                received = loop.time()
            due, now = row
            self._clock.learn(sent, received, now)
            return self._clock.local(due), due

        return await retrying(self._name, "reserve a send to a host", reserve)

    async def _refresh_loop(self) -> None:
        """Read the run's running cooldowns every ``REFRESH``: how this worker hears of the others' 429s."""
        pause = 0.0
        while True:
            try:
                await self._refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never the crawl's end: try again, less often
                if not pause:
                    what = "lost the database connection" if connection_lost(exc) else "failed"
                    log.warning("%s: reading the hosts' cooldowns %s (%s); retrying", self._name, what, exc)
                pause = min(max(pause * 2, REFRESH), ERROR_PAUSE)
                await asyncio.sleep(pause)
                continue
            if pause:
                log.info("%s: reading the hosts' cooldowns again", self._name)
                pause = 0.0
            await asyncio.sleep(REFRESH)

    async def _refresh(self) -> None:
        loop = asyncio.get_running_loop()
        async with self._pool.acquire() as conn:
            sent = loop.time()
            now, keys, ends = await conn.fetchrow(ACTIVE_COOLDOWNS, self._run_id)
            received = loop.time()
        # Also a reading of the database's clock, so a reservation finds it known.
        self._clock.learn(sent, received, now)
        for key, end in zip(keys, ends, strict=True):
            host = self._host(key)
            host.cooldown_until = max(host.cooldown_until, self._clock.local(end))

    # -- the broker: one task speaks to the database for every request of this process -------

    async def _broker_loop(self) -> None:
        while True:
            await self._sleep_until_due()
            try:
                await self._round()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug of ours; the requests waiting have been told
                log.exception("%s: sharing the hosts' turns failed", self._name)
                await asyncio.sleep(ERROR_PAUSE)

    async def _sleep_until_due(self) -> None:
        loop = asyncio.get_running_loop()
        due = self._next_due()
        if due is not None and due <= loop.time():
            return
        self._wake.clear()
        self._broker_due = float("inf") if due is None else due
        try:
            async with asyncio.timeout_at(due):
                await self._wake.wait()
        except TimeoutError:
            pass
        finally:
            self._broker_due = float("-inf")  # awake: nothing needs to wake it

    def _next_due(self) -> float | None:
        """When the broker has something to do next (None: nothing until woken)."""
        if self._returning or self._cooldowns:
            return 0.0
        due = []
        while self._parked and self._parked[0][1].parked_until != self._parked[0][0]:
            self._parked.popleft()  # reused since it was parked
        if self._parked:
            due.append(self._parked[0][0])
        for key in self._wanting:
            host = self._hosts[key]
            if host.waiters and host.held < self.per_host:  # (one left without waiters goes in the next round)
                due.append(host.next_poll)
        return min(due, default=None)

    async def _round(self) -> None:
        """Give back, ask for, and write whatever is due, in one trip to the database."""
        now = asyncio.get_running_loop().time()
        cooldowns = self._due_cooldowns(now)
        releases = self._due_releases(now)
        wants = self._due_wants(now)
        if not (cooldowns or releases or wants):
            return
        token = next(self._tokens)
        try:
            taken = await retrying(self._name, "share the hosts' turns", self._trip(cooldowns, releases, wants, token))
        except BaseException as exc:
            self._returning.extend(releases)  # still ours in the database: give them back next time
            self._requeue_cooldowns(cooldowns, now)
            if not isinstance(exc, Exception):
                raise
            log.warning("%s: sharing the hosts' turns: %s", self._name, exc)
            self._fail_waiters(wants, exc)
            await asyncio.sleep(ERROR_PAUSE)
            return
        self._settle(releases, wants, taken, token, now)

    def _trip(
        self, cooldowns: tuple[list[str], list[float]] | None, releases: list[_Lease], wants: dict[str, int], token: int
    ) -> Callable[[], Awaitable[list[tuple[str, int]]]]:
        attempts = 0
        now = asyncio.get_running_loop().time()
        # The hosts asked for that this worker holds no turn of, and how long it has waited for each.
        unserved = [(key, self._hosts[key]) for key in wants if not self._hosts[key].held]
        waiting = ([key for key, _ in unserved], [now - host.waiting_since for _, host in unserved])
        marked = [key for key in wants if self._hosts[key].marked]

        async def trip() -> list[tuple[str, int]]:
            nonlocal attempts
            attempts += 1
            async with self._pool.acquire() as conn:
                if cooldowns:
                    await conn.execute(WRITE_COOLDOWNS, self._run_id, *cooldowns)
                if attempts > 1 and wants:
                    await conn.execute(FORGET_TOKEN, self._run_id, self._worker_id, token)
                if not (releases or wants):
                    return []
                rows = await conn.fetch(
                    TURNS, self._run_id, self._worker_id,
                    [lease.host for lease in releases], [lease.turn for lease in releases],
                    [lease.token for lease in releases],
                    token, list(wants), list(wants.values()), self.per_host, MARK_LASTS, *waiting, marked,
                )  # fmt: skip
            return [(row[0], row[1]) for row in rows]

        return trip

    def _due_cooldowns(self, now: float) -> tuple[list[str], list[float]] | None:
        """The cooldowns to write (hosts, seconds left), sorted; None if none."""
        pending = sorted((key, until - now) for key, until in self._cooldowns.items() if until > now)
        self._cooldowns.clear()
        return ([key for key, _ in pending], [seconds for _, seconds in pending]) if pending else None

    def _requeue_cooldowns(self, cooldowns: tuple[list[str], list[float]] | None, now: float) -> None:
        for key, seconds in zip(*cooldowns or ((), ()), strict=True):
            self._cooldowns[key] = max(self._cooldowns.get(key, 0.0), now + seconds)

    def _due_releases(self, now: float) -> list[_Lease]:
        """The turns to give back now: those whose time is up, and idle ones due about now."""
        releases, self._returning = self._returning, []
        horizon = now + COALESCE
        while self._parked and self._parked[0][0] <= horizon:
            until, lease = self._parked.popleft()
            if lease.parked_until == until:  # still idle
                lease.parked_until = 0.0
                self._hosts[lease.host].idle.remove(lease)
                releases.append(lease)
        return releases

    def _due_wants(self, now: float) -> dict[str, int]:
        """How many turns to ask for, per host due a poll: for its waiters, within ``per_host``."""
        wants: dict[str, int] = {}
        for key in list(self._wanting):
            host = self._hosts[key]
            if not host.waiters:
                self._wanting.discard(key)
                host.next_poll, host.backoff, host.waiting_since = 0.0, POLL_MIN, 0.0
                continue
            if not host.waiting_since:
                host.waiting_since = now
            room = self.per_host - host.held  # none: all its turns are ours, and come back here
            if room > 0 and host.next_poll <= now:
                wants[key] = min(room, len(host.waiters))
                if len(wants) >= TAKE_HOSTS:
                    break
        return wants

    def _settle(
        self, releases: list[_Lease], wants: dict[str, int], taken: list[tuple[str, int]], token: int, asked: float
    ) -> None:
        """Account for a round: turns given back, turns taken (to the waiters), backoff for the rest."""
        for lease in releases:
            self._hosts[lease.host].held -= 1
        now = asyncio.get_running_loop().time()
        got: dict[str, int] = {}
        marked = set()
        for key, turn in taken:
            host = self._hosts[key]
            if turn < 0:
                marked.add(key)
                continue
            host.held += 1
            got[key] = got.get(key, 0) + 1
            lease = _Lease(key, turn, token, taken_at=now)
            if not _hand_over(host, lease):
                self._park(host, lease, now)  # its request was cancelled meanwhile
        for key in wants:
            host = self._hosts[key]
            # The round cleared the mark if it took a turn, and renewed it (or put it) if it returned it.
            host.marked = key in marked
            if not host.waiters:  # all served
                self._wanting.discard(key)
                host.next_poll, host.backoff, host.waiting_since = 0.0, POLL_MIN, 0.0
            elif got.get(key):
                host.next_poll, host.backoff, host.waiting_since = asked, POLL_MIN, 0.0  # more may be free: ask again
            elif key in marked:
                host.next_poll = asked + POLL_MARKED
            else:  # jittered: workers that wait for one host do not poll in step
                host.next_poll = asked + host.backoff * random.uniform(0.5, 1.0)
                host.backoff = min(host.backoff * 2, POLL_MAX)

    def _fail_waiters(self, keys: Iterable[str], exc: BaseException) -> None:
        for key in list(keys):
            waiters = self._hosts[key].waiters
            while waiters:
                waiter = waiters.popleft()
                if not waiter.done():
                    waiter.set_exception(exc)


def _hand_over(host: _Host, lease: _Lease) -> bool:
    """Give ``lease`` to the first request waiting for ``host``; False if none waits."""
    while host.waiters:
        waiter = host.waiters.popleft()
        if not waiter.done():
            waiter.set_result(lease)
            return True
    return False
