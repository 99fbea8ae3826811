"""Bounded concurrency for DynamoDB calls (each call waits on the network, not the CPU)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

Task = TypeVar("Task")
Result = TypeVar("Result")


def run_all(
    tasks: Sequence[Task], work: Callable[[Task], Result], concurrency: int
) -> list[Result | BaseException]:
    """Run ``work`` on every task with at most ``concurrency`` at once; results (or the exception
    each raised) in task order.

    ``min(concurrency, len(tasks))`` threads take the next task in order until none is left: no
    future, queue item or condition per task, as a thread pool's ``map`` makes (about 30 µs of CPU
    per task, more than a stubbed write itself; issue 13)."""

    def guarded(task: Task) -> Result | BaseException:
        try:
            return work(task)
        except Exception as error:
            return error

    if concurrency <= 1 or len(tasks) <= 1:
        return [guarded(task) for task in tasks]
    results: list[Result | BaseException | None] = [None] * len(tasks)
    taken = itertools.count()  # next() of a count is atomic under the GIL: each index goes once
    escaped: list[BaseException] = []

    def worker() -> None:
        try:
            for index in iter(taken.__next__, None):
                if index >= len(tasks) or escaped:
                    return
                results[index] = guarded(tasks[index])
        except BaseException as error:  # not an Exception (SystemExit, ...): raised again below
            escaped.append(error)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(concurrency, len(tasks)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if escaped:
        raise escaped[0]
    return results  # type: ignore[return-value]
