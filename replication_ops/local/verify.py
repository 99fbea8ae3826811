"""Verification: both tables item by item, and the last-writer-wins oracle of the generator's writes.

The oracle applies the documented conflict rules to what the generator wrote: a version is
``(timestamp, origin, is_delete)`` compared in that order; a delete's version is its stream time
(whole seconds) unless that is not after the version it removed, in which case it takes that
version's place with the delete rank. A local write whose version was not newer than the one it
replaced is stamped forward by the forwarder: the watcher sees the stamp, and the oracle uses the
stamped version. Every key's final state on both sides must be the oracle's winner: an upsert's item
(with its version attributes) or no item at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from replication_ops.local.config import HASH_KEY, ORIGIN_ATTRIBUTE, RANGE_KEY, TIMESTAMP_ATTRIBUTE
from replication_ops.local.loadgen import DELETE, LoadResult, Write, format_number
from replication_ops.local.watcher import Observations, key_of, version_of

Order = tuple[Decimal, str, bool]
UNVERSIONED = (Decimal(0), "")


# -- tables ----------------------------------------------------------------------------------


def scan_table(
    client: Any, table: str, key_names: tuple[str, ...] = (HASH_KEY, RANGE_KEY)
) -> dict[str, dict]:
    items: dict[str, dict] = {}
    params: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        response = client.scan(**params)
        for item in response.get("Items", []):
            items[key_of({name: item[name] for name in key_names if name in item})] = item
        last = response.get("LastEvaluatedKey")
        if not last:
            return items
        params["ExclusiveStartKey"] = last


def normalize_value(value: dict[str, Any]) -> Any:
    """A typed value in a canonical form (numbers compared as numbers, sets as sets)."""
    ((type_name, inner),) = value.items()
    if type_name == "N":
        return ("N", _number(inner))
    if type_name == "NS":
        return ("NS", frozenset(_number(v) for v in inner))
    if type_name in ("SS", "BS"):
        return (type_name, frozenset(inner))
    if type_name == "M":
        return ("M", tuple(sorted((k, normalize_value(v)) for k, v in inner.items())))
    if type_name == "L":
        return ("L", tuple(normalize_value(v) for v in inner))
    return (type_name, inner)


def _number(text: str) -> Decimal | str:
    # Decimal equality and hash are exact whatever the form ("1.50" == "1.5"); normalize() would
    # round to the 28 digits of Python's default context and hide a difference beyond them.
    try:
        return Decimal(text)
    except InvalidOperation:
        return text


def normalize_item(item: dict[str, Any] | None) -> Any:
    if item is None:
        return None
    return tuple(sorted((name, normalize_value(value)) for name, value in item.items()))


def differing_keys(left: dict[str, dict], right: dict[str, dict]) -> list[str]:
    return sorted(
        key
        for key in left.keys() | right.keys()
        if normalize_item(left.get(key)) != normalize_item(right.get(key))
    )


# -- the oracle ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    order: Order
    item: dict[str, Any] | None  # None: the key must not exist
    write: Write


def delete_order(removed: tuple[Decimal, str] | None, stream_second: Decimal, side: str) -> Order:
    removed = removed or UNVERSIONED
    if stream_second > removed[0]:
        return (stream_second, side, True)
    return (removed[0], removed[1], True)


def _stream_second(write: Write, key: str, removed: tuple[Decimal, str], seen: Observations) -> Decimal:
    seconds = seen.removes.get((key, removed))
    if seconds:
        return Decimal(min(seconds, key=lambda s: abs(s - write.finished)))
    return Decimal(math.floor(write.finished))  # not seen (should not happen once drained)


def _with_version(item: dict[str, Any], version: tuple[Decimal, str]) -> dict[str, Any]:
    return {
        **item,
        TIMESTAMP_ATTRIBUTE: {"N": format_number(version[0])},
        ORIGIN_ATTRIBUTE: {"S": version[1]},
    }


def _written_versions(load: LoadResult) -> set[tuple[str, str, tuple[Decimal, str]]]:
    return {(w.side, w.key, w.version) for w in load.writes if w.version is not None}


def effective_version(
    write: Write, seen: Observations, written: set[tuple[str, str, tuple[Decimal, str]]]
) -> tuple[Decimal, str]:
    """The version a write ended up with: its own, or the forwarder's stamp of it.

    A MODIFY that only moves the version forward looks like a stamp; so does the generator's next
    update of the key when it happens to set the values already there. Versions the generator wrote
    itself are therefore never taken for stamps.
    """
    assert write.version is not None
    stamped = seen.stamps.get((write.key, write.version))
    if stamped is None or (write.side, write.key, stamped) in written:
        return write.version
    return stamped


def oracle(load: LoadResult, observations: dict[str, Observations]) -> tuple[dict[str, Expected], set[str]]:
    """The expected final state of each key written, and the keys the oracle cannot decide."""
    expected: dict[str, Expected] = {}
    written = _written_versions(load)
    uncertain: set[str] = set()
    for write in load.writes:
        key = write.key
        if write.error:
            uncertain.add(key)  # the write may or may not have happened
            continue
        seen = observations[write.side]
        if write.operation.kind == DELETE:
            if not write.old:
                continue  # deleted nothing: no change, no stream record
            removed = version_of(write.old, TIMESTAMP_ATTRIBUTE, ORIGIN_ATTRIBUTE) or UNVERSIONED
            candidate = Expected(
                delete_order(removed, _stream_second(write, key, removed, seen), write.side), None, write
            )
        else:
            assert write.version is not None and write.item is not None
            version = effective_version(write, seen, written)
            candidate = Expected((version[0], version[1], False), _with_version(write.item, version), write)
        current = expected.get(key)
        if current is None or candidate.order > current.order:
            expected[key] = candidate
    for key in uncertain:
        expected.pop(key, None)
    return expected, uncertain


@dataclass
class Verification:
    items: dict[str, int]  # side -> items in its table
    differing: list[str]  # keys whose items differ between the tables
    lost: list[str]  # keys whose final state is not the oracle's, on either side
    lost_by_side: dict[str, int]
    uncertain: int
    keys_written: int
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return not self.differing and not self.lost


def verify(
    tables: dict[str, dict[str, dict]], load: LoadResult, observations: dict[str, Observations]
) -> Verification:
    sides = list(tables)
    differing = differing_keys(tables[sides[0]], tables[sides[1]])
    expected, uncertain = oracle(load, observations)
    lost: set[str] = set()
    lost_by_side: dict[str, int] = {}
    examples: list[dict[str, Any]] = []
    for side, items in tables.items():
        count = 0
        for key in expected.keys() | (items.keys() - uncertain):
            want = expected.get(key)
            want_item = want.item if want else None
            if normalize_item(items.get(key)) != normalize_item(want_item):
                count += 1
                lost.add(key)
                if len(examples) < 5:
                    examples.append(
                        {
                            "side": side,
                            "key": key,
                            "expected": _version_text(want_item),
                            "actual": _version_text(items.get(key)),
                            "winner_write": want.write.operation.kind if want else None,
                            "winner_side": want.write.side if want else None,
                            "streams": {
                                name: seen.history.get(key, []) for name, seen in observations.items()
                            },
                            "writes": [
                                (
                                    w.side,
                                    w.operation.kind,
                                    _version_text(w.item) if w.item else "-",
                                    _version_text(w.old),
                                    round(w.started, 3),
                                    round(w.finished, 3),
                                )
                                for w in load.writes
                                if w.key == key
                            ],
                        }
                    )
        lost_by_side[side] = count
    return Verification(
        items={side: len(items) for side, items in tables.items()},
        differing=differing,
        lost=sorted(lost),
        lost_by_side=lost_by_side,
        uncertain=len(uncertain),
        keys_written=len({w.key for w in load.writes}),
        examples=examples,
    )


def _version_text(item: dict[str, Any] | None) -> str:
    if item is None:
        return "absent"
    version = version_of(item, TIMESTAMP_ATTRIBUTE, ORIGIN_ATTRIBUTE)
    return f"{version[0]} {version[1]}" if version else "unversioned"


# -- lag -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LagSample:
    written_at: float  # when the origin write completed (epoch seconds)
    lag: float  # seconds until the version was first seen on the other side
    origin: str
    key: str = ""
    version: str = ""
    stamped: bool = False


def lag_samples(
    load: LoadResult, observations: dict[str, Observations], peers: dict[str, str]
) -> list[LagSample]:
    """Origin write -> first sight on the other side, for every upsert that reached it unchanged."""
    samples: list[LagSample] = []
    written = _written_versions(load)
    for write in load.writes:
        if write.error or write.version is None:
            continue
        key = write.key
        own = observations[write.side]
        version = effective_version(write, own, written)
        seen_at = observations[peers[write.side]].first_seen.get((key, version))
        if seen_at is not None:
            samples.append(
                LagSample(
                    write.finished,
                    max(0.0, seen_at - write.finished),
                    write.side,
                    key,
                    f"{version[0]} {version[1]}",
                    version != write.version,
                )
            )
    return sorted(samples, key=lambda s: s.written_at)


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, math.ceil(fraction * len(ordered)) - 1)
    return ordered[rank]
