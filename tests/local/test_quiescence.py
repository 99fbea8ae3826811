"""Waiting for idle: no fixed sleeps, a decision from what every source reports."""

from __future__ import annotations

import pytest

from replication_ops.local.quiescence import NotQuiescent, wait_quiescent

from .fakes import FakeTime


class Source:
    """A source that is idle and reads nothing new, or that is scripted per call."""

    def __init__(self, time: FakeTime, *, busy_until: float = 0.0, reads_until: float = 0.0) -> None:
        self.time = time
        self.busy_until = busy_until
        self.reads_until = reads_until
        self.read = 0
        self.caught_up: float | None = None

    def snapshot(self) -> tuple[bool, float | None, int]:
        now = self.time.now
        if now < self.reads_until:
            self.read += 1
            self.caught_up = None
        elif now >= self.busy_until:
            self.caught_up = now  # an empty read just started
        return now >= self.busy_until, self.caught_up, self.read


def test_returns_once_every_source_read_nothing_after_all_were_idle() -> None:
    time = FakeTime()
    sources = [Source(time), Source(time, busy_until=1003.0)]
    waited = wait_quiescent(lambda: sources, timeout=30, monotonic=time.monotonic, sleep=time.sleep)
    assert 3.0 <= waited < 4.0


def test_new_reads_restart_the_wait() -> None:
    time = FakeTime()
    sources = [Source(time, reads_until=1005.0)]
    waited = wait_quiescent(lambda: sources, timeout=30, monotonic=time.monotonic, sleep=time.sleep)
    assert waited >= 5.0


def test_gives_up_after_the_timeout_with_a_description() -> None:
    time = FakeTime()
    sources = [Source(time, busy_until=10_000.0)]
    with pytest.raises(NotQuiescent, match="busy: x"):
        wait_quiescent(
            lambda: sources, timeout=5, monotonic=time.monotonic, sleep=time.sleep, describe=lambda: "busy: x"
        )


def test_a_source_never_caught_up_keeps_it_waiting() -> None:
    class Stuck:
        def snapshot(self) -> tuple[bool, float | None, int]:
            return True, None, 0

    time = FakeTime()
    with pytest.raises(NotQuiescent):
        wait_quiescent(lambda: [Stuck()], timeout=2, monotonic=time.monotonic, sleep=time.sleep)


def test_refresh_is_called_each_round() -> None:
    time = FakeTime()
    calls: list[int] = []
    wait_quiescent(
        lambda: [Source(time)],
        timeout=5,
        refresh=lambda: calls.append(1),
        monotonic=time.monotonic,
        sleep=time.sleep,
    )
    assert calls
