"""Exponential backoff with full jitter, bounded by a deadline."""

from __future__ import annotations

import random
import time
from collections.abc import Callable


class Backoff:
    def __init__(
        self,
        *,
        base_seconds: float = 0.05,
        cap_seconds: float = 2.0,
        max_attempts: int = 8,
        deadline: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_seconds = base_seconds
        self.cap_seconds = cap_seconds
        self.max_attempts = max_attempts
        self.deadline = deadline
        self._sleep = sleep
        self._clock = clock
        self.attempt = 0

    def time_left(self) -> float | None:
        """Seconds until the deadline (None without one)."""
        return None if self.deadline is None else self.deadline - self._clock()

    def wait(self) -> bool:
        """Sleep before the next attempt; False when attempts or time are used up."""
        self.attempt += 1
        if self.attempt >= self.max_attempts:
            return False
        delay = random.uniform(0, min(self.cap_seconds, self.base_seconds * 2**self.attempt))
        if self.deadline is not None and self._clock() + delay >= self.deadline:
            return False
        self._sleep(delay)
        return True
