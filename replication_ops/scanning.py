"""Table scans shared by backfill and verify: key schemas, parallel segments, typed items."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

from botocore.exceptions import ClientError

from replication.keys import TypedItem
from replication.typed_values import from_client
from replication_ops.errors import ConfigError, aws_errors, error_code
from replication_ops.sides import Side


def key_names(side: Side, table: str | None = None) -> tuple[str, ...]:
    """The table's key attribute names (hash first), read from DescribeTable."""
    table = table or side.table_name()
    with aws_errors(f"{side.name} DynamoDB"):
        try:
            described = side.client("dynamodb").describe_table(TableName=table)["Table"]
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise  # aws_errors names it: access, region, parameters
            raise ConfigError(
                f"{side.name}: table {table} does not exist (check the Terraform outputs and region)"
            ) from None
    schema = sorted(described["KeySchema"], key=lambda k: k["KeyType"] != "HASH")
    return tuple(k["AttributeName"] for k in schema)


def same_key_schema(left: Side, right: Side) -> tuple[str, ...]:
    names = key_names(left)
    other = key_names(right)
    if names != other:
        raise ConfigError(f"the tables' keys differ: {left.name} {names}, {right.name} {other}")
    return names


def key_of(item: TypedItem, names: tuple[str, ...]) -> TypedItem:
    return {name: item[name] for name in names if name in item}


MIN_RATE = 0.01  # one item every 100 s; below that, the interval outgrows what time.sleep takes


class RateLimiter:
    """At most ``rate`` acquisitions per second across all threads (0: unlimited)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not (math.isfinite(rate) and (rate == 0 or rate >= MIN_RATE)):
            raise ValueError(f"rate {rate!r}: 0 (no limit) or at least {MIN_RATE} per second")
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._clock = clock

    def acquire(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = self._clock()
            self._next = max(self._next, now)
            delay = self._next - now
            self._next += self._interval
        if delay > 0:
            time.sleep(delay)


def scan_pages(
    side: Side,
    table: str,
    segment: int,
    total: int,
    *,
    start_key: dict[str, Any] | None = None,
    page_size: int | None = None,
    consistent: bool = False,
    stop: threading.Event | None = None,
) -> Any:
    """Yield (items in wire form, LastEvaluatedKey or None) page by page of one segment."""
    params: dict[str, Any] = {"TableName": table, "Segment": segment, "TotalSegments": total}
    if page_size:
        params["Limit"] = page_size
    if consistent:
        params["ConsistentRead"] = True
    if start_key:
        params["ExclusiveStartKey"] = start_key
    client = side.client("dynamodb")
    while not (stop and stop.is_set()):
        with aws_errors(f"{side.name} DynamoDB {table}"):
            response = client.scan(**params)
        last = response.get("LastEvaluatedKey")
        yield [from_client(item) for item in response.get("Items", [])], last
        if not last:
            return
        params["ExclusiveStartKey"] = last


def run_segments(total: int, work: Callable[[int], Any], stop: threading.Event) -> list[Any]:
    """Run ``work(segment)`` for every segment in threads; the first failure stops the others."""
    with ThreadPoolExecutor(max_workers=total, thread_name_prefix="segment") as pool:
        futures = [pool.submit(work, segment) for segment in range(total)]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                if future.exception() is not None:
                    stop.set()
            return [future.result() for future in futures]
        except BaseException:
            stop.set()
            raise


__all__ = [
    "RateLimiter",
    "from_client",
    "key_names",
    "key_of",
    "run_segments",
    "same_key_schema",
    "scan_pages",
]
