"""What the fault proxy does to traffic, changed at run time by the scenario that owns it."""

from __future__ import annotations

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
    """Faults on one link. ``throttle`` maps an AWS operation (the X-Amz-Target suffix, e.g.
    ``PutRecords`` or ``PutItem``) to the share of its calls (for PutRecords: of its records) that
    AWS would reject as throttled."""

    state: LinkState = LinkState.UP
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    reset_share: float = 0.0  # share of connections reset (RST) instead of answered
    throttle: dict[str, float] = field(default_factory=dict)
    seed: int = 7

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def chance(self, share: float) -> bool:
        if share <= 0:
            return False
        with self._lock:
            return self._rng.random() < share

    def delay_seconds(self) -> float:
        if self.latency_ms <= 0 and self.jitter_ms <= 0:
            return 0.0
        with self._lock:
            jitter = self._rng.uniform(-self.jitter_ms, self.jitter_ms)
        return max(0.0, self.latency_ms + jitter) / 1000.0


@dataclass
class FaultCounters:
    requests: int = 0
    refused_periods: int = 0
    blackholed: int = 0
    resets: int = 0
    throttled_calls: int = 0
    throttled_records: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)
