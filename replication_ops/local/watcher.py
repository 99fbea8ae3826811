"""What each table's stream showed, as read by Lambda's (emulated) poller: the oracle's observations.

The runner's pollers read every record of every table stream once (``event_sources.ShardConsumer``'s
``on_read``, ``EventSourceRunner.observe_table_streams``); ``table_stream_observer`` routes each read
into its side's ``Observations``, which note, for the report and the oracle:

- when a version written on the other side first becomes visible here (replication lag): when the
  poller's read that returned it began. The poller reads a table stream 4 times a second
  (``event_sources.DYNAMODB_POLL_SECONDS``), so that is at most 0.25 s after the record appeared while
  this side's forwarder is idle; a shard is not read while its batch is being invoked or retried (Lambda
  waits for the result), so a busy or failing forwarder here delays first sight by that much;
- the stream time of every REMOVE (the version a delete gets depends on it);
- the forwarder's in-place stamps (a local write without a valid, newer version of its own, which
  the forwarder gave one);
- each key's records in stream order (``changes``: versions, stream second, the new image), which
  tells what item an ``UpdateItem`` was made on and what the table held before it.

No second reader: one used to read every shard again every 0.1 s, which doubled the emulator's most
expensive call (GetRecords on a DynamoDB stream, about 60 a second beside the pollers' 24) on a
machine whose CPU already set the demo's lag.

Removes and stamps are keyed by the exact item they replaced (``normalize_item``): that is what the
load generator knows of each of its writes (the item it put, the ``ALL_NEW`` of its update, the
``ALL_OLD`` of its delete), whether it carried a version or not.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from replication_ops.local.events import StreamRecord

VersionTuple = tuple[Decimal, str]  # (timestamp, origin)
ItemKey = tuple[str, Any]  # (key_of, normalize_item): one exact state of one item


def key_of(keys: dict[str, Any]) -> str:
    """The item key as one string (typed values, sorted attribute names; a binary value as its base64
    text, as a stream record in Lambda's event has it, whether given as bytes or as that text)."""
    text = {name: {"B": _base64(value["B"])} if "B" in value else value for name, value in keys.items()}
    return json.dumps(text, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _base64(value: bytes | str) -> str:
    return base64.b64encode(value).decode("ascii") if isinstance(value, bytes | bytearray) else value


def _binary(value: bytes | str) -> bytes:
    """A binary value as bytes: a boto3 client gives bytes, Lambda's stream records base64 text."""
    return bytes(value) if isinstance(value, bytes | bytearray) else base64.b64decode(value)


def version_of(image: dict[str, Any] | None, timestamp: str, origin: str) -> VersionTuple | None:
    if not image:
        return None
    ts = (image.get(timestamp) or {}).get("N")
    org = (image.get(origin) or {}).get("S")
    if ts is None or org is None:
        return None
    try:
        return (Decimal(ts), org)
    except InvalidOperation:
        return None


def content_of(image: dict[str, Any] | None, timestamp: str, origin: str) -> dict[str, Any]:
    return {k: v for k, v in (image or {}).items() if k not in (timestamp, origin)}


def normalize_value(value: dict[str, Any]) -> Any:
    """A typed value in a canonical form (numbers compared as numbers, sets as sets)."""
    ((type_name, inner),) = value.items()
    if type_name == "N":
        return ("N", _number(inner))
    if type_name == "NS":
        return ("NS", frozenset(_number(v) for v in inner))
    if type_name == "SS":
        return (type_name, frozenset(inner))
    if type_name == "B":
        return ("B", _binary(inner))
    if type_name == "BS":
        return ("BS", frozenset(_binary(v) for v in inner))
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


@dataclass(frozen=True)
class StreamChange:
    """One stream record of a key: what it replaced and what it set (a REMOVE sets nothing)."""

    event: str  # INSERT, MODIFY or REMOVE
    old: VersionTuple | None  # the OldImage's version (None: no image, or no version in it)
    new: VersionTuple | None  # the NewImage's version
    second: int  # ApproximateCreationDateTime, whole seconds
    image: Any  # normalize_item(NewImage); None for a REMOVE
    removed: Any = None  # a REMOVE's normalize_item(OldImage): whose delete it was


@dataclass
class Observations:
    """Everything one side's table streams showed, keyed for the oracle and the lag figures."""

    region: str
    first_seen: dict[tuple[str, VersionTuple], float] = field(default_factory=dict)  # peer versions
    removes: dict[ItemKey, list[float]] = field(default_factory=dict)  # item removed -> stream seconds
    stamps: dict[ItemKey, VersionTuple] = field(default_factory=dict)  # item stamped -> its stamp
    history: dict[str, list[tuple[str, str, str, int]]] = field(default_factory=dict)  # for mismatches
    changes: dict[str, list[StreamChange]] = field(default_factory=dict)  # key -> its records, in order
    records: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, record: dict[str, Any], seen_at: float, timestamp: str, origin: str) -> None:
        stream = record["dynamodb"]
        key = key_of(stream["Keys"])
        new = version_of(stream.get("NewImage"), timestamp, origin)
        old = version_of(stream.get("OldImage"), timestamp, origin)
        with self.lock:
            self.records += 1
            second = int(stream["ApproximateCreationDateTime"])
            self.history.setdefault(key, []).append((record["eventName"], _text(old), _text(new), second))
            removed = normalize_item(stream.get("OldImage")) if record["eventName"] == "REMOVE" else None
            self.changes.setdefault(key, []).append(
                StreamChange(
                    record["eventName"], old, new, second, normalize_item(stream.get("NewImage")), removed
                )
            )
            if record["eventName"] == "REMOVE":
                seconds = float(stream["ApproximateCreationDateTime"])
                self.removes.setdefault((key, normalize_item(stream.get("OldImage"))), []).append(seconds)
                return
            if new is None:
                return
            if new[1] != self.region:
                self.first_seen.setdefault((key, new), seen_at)
            elif _is_stamp(record, old, new, timestamp, origin):
                # a version of this region set on the item, nothing else changed: the forwarder's
                # stamp of the write that left the old image (or the generator's own write of the
                # very values already there, which the oracle tells apart by its version)
                self.stamps.setdefault((key, normalize_item(stream["OldImage"])), new)


def _is_stamp(
    record: dict[str, Any], old: VersionTuple | None, new: VersionTuple, timestamp: str, origin: str
) -> bool:
    stream = record["dynamodb"]
    return (
        record["eventName"] == "MODIFY"
        and old != new  # old: None when the item had no valid version (absent, a String...)
        and content_of(stream["NewImage"], timestamp, origin)
        == content_of(stream.get("OldImage"), timestamp, origin)
    )


def _text(version: VersionTuple | None) -> str:
    return "-" if version is None else f"{version[0]} {version[1]}"


def table_stream_observer(
    observations: Mapping[str, Observations], *, timestamp_attribute: str, origin_attribute: str
) -> Callable[[str, list[StreamRecord], float], None]:
    """The runner's table-stream observer (``observe_table_streams``) that adds each record a side's
    poller read to that side's ``Observations``, seen when the read began (``read_at``, epoch seconds).
    A side without observations is an error (``KeyError``): the runner then reports it."""

    def observe(side: str, records: list[StreamRecord], read_at: float) -> None:
        observed = observations[side]
        for record in records:
            observed.add(record.event_record, read_at, timestamp_attribute, origin_attribute)

    return observe
