"""Bounded concurrency for DynamoDB calls (each call waits on the network, not the CPU)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Task = TypeVar("Task")
Result = TypeVar("Result")


def run_all(
    tasks: Sequence[Task], work: Callable[[Task], Result], concurrency: int
) -> list[Result | BaseException]:
    """Run ``work`` on every task with at most ``concurrency`` at once; results (or the exception
    each raised) in task order."""

    def guarded(task: Task) -> Result | BaseException:
        try:
            return work(task)
        except Exception as error:
            return error

    if concurrency <= 1 or len(tasks) <= 1:
        return [guarded(task) for task in tasks]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(tasks))) as pool:
        return list(pool.map(guarded, tasks))
