"""The replicator's CPU shortcuts give what the computations they replace give (issue 13): the
worker threads of ``run_all`` (no future per task), the created items' check threading only the
keys whose remembered delete wins, numbers accepted without parsing, the latest allowed timestamp
formatted once per value, string attributes validated without a call."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal, InvalidOperation
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from replication.errors import WireFormatError
from replication.limits import (
    MAX_NUMBER_DIGITS,
    MAX_NUMBER_EXPONENT,
    MIN_NUMBER_EXPONENT,
    NUMBER_SYNTAX,
    _significant,
    number_problem,
)
from replication.parallel import run_all
from replication.table_writer import TableWriter
from replication.typed_values import _validate_value, validate_item
from replication.versions import format_timestamp, latest_allowed

from .harness import side_settings
from .test_admission import names, values


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


def _number_problem_parsing(text: Any) -> str | None:
    """``limits.number_problem`` as it was: every number parsed (the replaced computation)."""
    if not isinstance(text, str):
        return "a number must be given as a string"
    if NUMBER_SYNTAX.fullmatch(text) is None:
        return "not a number DynamoDB reads"
    try:
        value = Decimal(text)
    except InvalidOperation:
        return "magnitude far outside DynamoDB's number range"
    _, exponent, digits = _significant(value)
    if not digits:
        return None
    if len(digits) > MAX_NUMBER_DIGITS:
        return f"{len(digits)} significant digits, DynamoDB keeps at most {MAX_NUMBER_DIGITS}"
    adjusted = exponent + len(digits) - 1
    if adjusted > MAX_NUMBER_EXPONENT:
        return "magnitude above DynamoDB's largest number, 9.9999999999999999999999999999999999999E+125"
    if adjusted < MIN_NUMBER_EXPONENT:
        return "magnitude below DynamoDB's smallest non-zero number, 1E-130"
    return None


number_texts = st.one_of(
    st.from_regex(
        r"[+-]?(?:[0-9]{1,45}\.?[0-9]{0,45}|\.[0-9]{1,45})(?:[eE][+-]?[0-9]{1,4})?", fullmatch=True
    ),
    st.from_regex(r"[+-]?0{0,40}[0-9]{0,40}\.?[0-9]{0,40}0{0,40}", fullmatch=True),
    st.text(max_size=70),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
)


@settings(max_examples=500)
@given(number_texts)
def test_a_numbers_problem_is_what_parsing_it_gives(text: str) -> None:
    assert number_problem(text) == _number_problem_parsing(text)


@given(st.lists(st.floats(0, 4e9), min_size=1, max_size=8))
def test_the_latest_text_is_the_latest_formatted(clocks: list[float]) -> None:
    readings = iter(clocks)
    writer = TableWriter(
        None, side_settings("us-east-1").table("profiles", "profiles"), clock=lambda: next(readings)
    )
    for now in clocks:
        assert writer._latest_text() == format_timestamp(
            latest_allowed(now, writer._settings.max_clock_skew_seconds)
        )


def _outcome(check: Any, item: Any) -> Any:
    try:
        return ("ok", check(item, "item"))
    except WireFormatError as error:
        return ("refused", str(error))


def _validate_item_every_value(item: Any, where: str) -> Any:
    """``typed_values.validate_item`` as it was: every value through ``_validate_value``."""
    if not isinstance(item, dict) or not item:
        raise WireFormatError(f"{where}: expected a non-empty map of attributes")
    for name, value in item.items():
        if not isinstance(name, str) or not name:
            raise WireFormatError(f"{where}: attribute names must be non-empty strings")
        _validate_value(value, f"{where}.{name}", 0)
    return item


odd_values = st.one_of(
    values,
    st.dictionaries(
        st.sampled_from(["S", "N", "B", "X"]), st.one_of(st.text(max_size=3), st.integers()), max_size=2
    ),
    st.text(max_size=3),
    st.none(),
)


@settings(max_examples=300)
@given(st.dictionaries(st.one_of(names, st.just("")), odd_values, max_size=6))
def test_validating_an_item_gives_what_it_gave(item: dict[Any, Any]) -> None:
    assert _outcome(validate_item, item) == _outcome(_validate_item_every_value, item)
