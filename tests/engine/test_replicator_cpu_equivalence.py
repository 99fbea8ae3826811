"""The replicator's CPU shortcuts give what the computations they replace give (issue 13): the
worker threads of ``run_all`` (no future per task), the created items' check threading only the
keys whose remembered delete wins."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from replication.parallel import run_all


def _pool_run_all(tasks: list[Any], work: Any, concurrency: int) -> list[Any]:
    """``run_all`` as it was: a thread pool's map (the replaced implementation)."""

    def guarded(task: Any) -> Any:
        try:
            return work(task)
        except Exception as error:
            return error

    if concurrency <= 1 or len(tasks) <= 1:
        return [guarded(task) for task in tasks]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(tasks))) as pool:
        return list(pool.map(guarded, tasks))


def _work(task: tuple[int, bool]) -> int:
    number, fails = task
    if fails:
        raise ValueError(number)
    return number * 2


def _comparable(results: list[Any]) -> list[Any]:
    return [(type(r).__name__, r.args) if isinstance(r, BaseException) else r for r in results]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(), st.booleans()), max_size=40), st.integers(0, 20))
def test_run_all_gives_what_the_thread_pool_gave(tasks: list[tuple[int, bool]], concurrency: int) -> None:
    assert _comparable(run_all(tasks, _work, concurrency)) == _comparable(
        _pool_run_all(tasks, _work, concurrency)
    )


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 30), st.integers(2, 8))
def test_run_all_runs_each_task_once_and_at_most_concurrency_at_once(count: int, concurrency: int) -> None:
    lock = threading.Lock()
    running, peak, seen = [0], [0], []

    def work(task: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            seen.append(task)
        time.sleep(0.0005)
        with lock:
            running[0] -= 1
        return task

    assert run_all(list(range(count)), work, concurrency) == list(range(count))
    assert sorted(seen) == list(range(count))
    assert peak[0] <= min(concurrency, count)


def test_a_base_exception_in_a_worker_is_raised() -> None:
    def work(task: int) -> int:
        if task == 3:
            raise KeyboardInterrupt
        return task

    try:
        run_all(list(range(8)), work, 4)
    except KeyboardInterrupt:
        return
    raise AssertionError("KeyboardInterrupt was swallowed")
