"""What the fault proxy does to traffic, changed at run time by the scenario that owns it."""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass, field
from enum import Enum


class LinkState(Enum):
    UP = "up"
    REFUSE = "refuse"  # nothing listens: connections are refused
    BLACKHOLE = "blackhole"  # connections are accepted and never answered


@dataclass
class FaultPlan:
    """Faults on one link's traffic. ``throttle`` maps an AWS operation (the X-Amz-Target suffix,
    e.g. ``PutRecords`` or ``PutItem``) to the share of its calls (for PutRecords: of its records)
    that AWS would reject as throttled. Whether the link is up at all is the proxy's state, not
    the plan's, so replacing a plan never reopens or closes the link."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    # Share of requests whose connection is reset (RST). Spread evenly (exactly this share, so a
    # run of 1/share requests sees one), half before the request reaches AWS, half after AWS has
    # processed it (the reply is lost: the sender retries what was written, a duplicate).
    reset_share: float = 0.0
    throttle: dict[str, float] = field(default_factory=dict)
    seed: int = 7

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._requests = 0
        self._reset_offset = self._rng.random()
        self._resets = 0

    def chance(self, share: float) -> bool:
        if share <= 0:
            return False
        with self._lock:
            return self._rng.random() < share

    def reset_due(self) -> Reset | None:
        """For the next request: reset it (and when), or None."""
        if self.reset_share <= 0:
            return None
        with self._lock:
            self._requests += 1
            due = math.floor(self._requests * self.reset_share + self._reset_offset) > math.floor(
                (self._requests - 1) * self.reset_share + self._reset_offset
            )
            if not due:
                return None
            self._resets += 1
            return Reset.BEFORE_FORWARDING if self._resets % 2 else Reset.REPLY_LOST

    def delay_seconds(self) -> float:
        if self.latency_ms <= 0 and self.jitter_ms <= 0:
            return 0.0
        with self._lock:
            jitter = self._rng.uniform(-self.jitter_ms, self.jitter_ms)
        return max(0.0, self.latency_ms + jitter) / 1000.0


class Reset(Enum):
    BEFORE_FORWARDING = "before"
    REPLY_LOST = "reply-lost"


@dataclass
class FaultCounters:
    """What a proxy did; incremented from its connection threads, hence the lock."""

    requests: int = 0
    refused_periods: int = 0
    blackholed: int = 0
    resets: int = 0
    replies_lost: int = 0  # of ``resets``: after AWS processed the request
    throttled_calls: int = 0
    throttled_records: int = 0
    proxy_errors: int = 0  # the proxy itself failed a request (a bug, never a planned fault)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def add(self, name: str, count: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + count)

    def as_dict(self) -> dict[str, int]:
        return {name: value for name, value in self.__dict__.items() if not name.startswith("_")}
