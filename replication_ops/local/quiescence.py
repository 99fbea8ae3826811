"""Waiting until replication is idle: every stream and inbox drained, no invocation in flight.

Each source (a shard poller) reports ``(idle, caught_up_at, records_read)``: idle when
nothing is buffered or in flight, ``caught_up_at`` the start of its latest read that found nothing new.
The wait takes one pass of snapshots in which every source is idle, notes the time S after that pass,
then waits until every source has started an empty read after S while no source read anything more.
Only invocations write to the streams (the load has ended), every source was idle at its snapshot and
none read anything later, so nothing was written after S; a read begun after S saw all there is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol


class Observable(Protocol):
    def snapshot(self) -> tuple[bool, float | None, int]: ...


class NotQuiescent(TimeoutError):
    pass


def wait_quiescent(
    sources: Callable[[], Sequence[Observable]],
    *,
    timeout: float,
    refresh: Callable[[], None] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    interval: float = 0.1,
    describe: Callable[[], str] | None = None,
) -> float:
    """Block until quiescent; return the seconds waited. Raise ``NotQuiescent`` after ``timeout``."""
    began = monotonic()
    deadline = began + timeout
    while True:
        if refresh is not None:
            refresh()
        current = list(sources())
        snapshots = [source.snapshot() for source in current]
        settled_after = monotonic()
        if current and all(idle for idle, _, _ in snapshots):
            total = sum(read for _, _, read in snapshots)
            while True:
                later = [source.snapshot() for source in current]
                if sum(read for _, _, read in later) != total or not all(idle for idle, _, _ in later):
                    break  # something moved: start over
                if all(caught is not None and caught > settled_after for _, caught, _ in later):
                    if len(list(sources())) == len(current):
                        return monotonic() - began
                    break  # a new shard appeared meanwhile
                if monotonic() > deadline:
                    raise NotQuiescent(_message(timeout, describe))
                sleep(interval)
        if monotonic() > deadline:
            raise NotQuiescent(_message(timeout, describe))
        sleep(interval)


def _message(timeout: float, describe: Callable[[], str] | None) -> str:
    detail = f": {describe()}" if describe else ""
    return f"replication did not become idle within {timeout:.0f} s{detail}"
