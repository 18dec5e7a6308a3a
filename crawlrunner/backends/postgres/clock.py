"""The database's clock, seen from a worker: how politeness reservations become local sleeps."""

from __future__ import annotations

from collections import deque

CLOCK_SAMPLES_AGE = 2.0  # replies older than this say nothing of the clocks: they drift apart (NTP slews ≤ 0.05 %)


class DatabaseClock:
    """Where the database's clock stands against this process's loop clock, to about the quickest round trip.

    A reservation says when its send is due by the database's clock. Sleeping
    "that long after the reply" would add the reply's delay, which varies by
    milliseconds on a busy machine, and a send a few milliseconds late is as
    many too close to the next one (another worker's, on time). Each reply
    brackets the offset between the clocks instead (the database read its
    clock after the query left and before the reply came), and the tightest
    of recent brackets pins it down. Only the database's clock and this
    process's monotonic one take part: the machines' wall clocks never do.
    """

    __slots__ = ("_samples",)

    def __init__(self) -> None:
        self._samples: deque[tuple[float, float, float]] = deque()  # (received, lowest, highest offset)

    def learn(self, sent: float, received: float, database_now: float) -> None:
        samples = self._samples
        samples.append((received, sent - database_now, received - database_now))
        while samples[0][0] < received - CLOCK_SAMPLES_AGE:
            samples.popleft()

    def local(self, database_time: float) -> float:
        """``database_time`` in loop time: the latest the brackets allow, so a send is never early."""
        lowest = max(sample[1] for sample in self._samples)
        highest = min(sample[2] for sample in self._samples)
        if lowest > highest:  # the clocks moved against each other (a step): trust the newest reply only
            newest = self._samples[-1]
            self._samples.clear()
            self._samples.append(newest)
            highest = newest[2]
        return database_time + highest
