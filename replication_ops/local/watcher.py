"""Table-stream watchers: what each table's stream shows, as seen by an independent second reader.

A DynamoDB stream shard takes two concurrent readers; the forwarder's mapping is one, the watcher
the other. It polls often (every 0.1 s) and notes, for the report and the oracle:

- when a version written on the other side first becomes visible here (replication lag);
- the stream time of every REMOVE (the version a delete gets depends on it);
- the forwarder's in-place stamps (a local write without a valid, newer version of its own, which
  the forwarder gave one);
- each key's records in stream order (``changes``: versions, stream second, the new image), which
  tells what item an ``UpdateItem`` was made on and what the table held before it.

Removes and stamps are keyed by the exact item they replaced (``normalize_item``): that is what the
load generator knows of each of its writes (the item it put, the ``ALL_NEW`` of its update, the
``ALL_OLD`` of its delete), whether it carried a version or not.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from replication_ops.local.streams import (
    TRIM_HORIZON,
    DynamoDBShardReader,
    IteratorExpired,
    Position,
    list_dynamodb_shards,
)

log = logging.getLogger(__name__)

WATCH_INTERVAL_SECONDS = 0.1

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
    """Everything one side's watcher saw, keyed for the oracle and the lag figures."""

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


class StreamWatcher:
    """Reads one side's table stream (all shards, from the start) until stopped."""

    def __init__(
        self,
        clients: Any,
        stream_arn: str,
        observations: Observations,
        *,
        timestamp_attribute: str,
        origin_attribute: str,
        interval: float = WATCH_INTERVAL_SECONDS,
    ) -> None:
        self._client = clients.dynamodbstreams
        self._stream_arn = stream_arn
        self.observations = observations
        self._timestamp = timestamp_attribute
        self._origin = origin_attribute
        self._interval = interval
        self._stop = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._state: dict[str, list[Any]] = {}  # shard -> [caught_up_at, records_read, finished]
        self._lock = threading.Lock()
        self._lister: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        self.refresh()
        self._lister = threading.Thread(target=self._list_periodically, daemon=True, name="watch-lister")
        self._lister.start()

    def _list_periodically(self) -> None:
        while not self._stop.wait(5.0):
            try:
                self.refresh()
            except Exception:
                log.exception("listing shards of %s failed", self._stream_arn)

    def refresh(self) -> None:
        for shard in list_dynamodb_shards(self._client, self._stream_arn):
            with self._lock:
                if shard.shard_id in self._threads:
                    continue
                self._state[shard.shard_id] = [None, 0, False]
                thread = threading.Thread(
                    target=self._watch,
                    args=(shard.shard_id,),
                    daemon=True,
                    name=f"watch-{shard.shard_id[-8:]}",
                )
                self._threads[shard.shard_id] = thread
            thread.start()

    def _watch(self, shard_id: str) -> None:
        reader = DynamoDBShardReader(self._client, self._stream_arn, shard_id, self.observations.region)
        position = Position(TRIM_HORIZON)
        iterator: str | None = None
        try:
            while not self._stop.is_set():
                if iterator is None:
                    iterator = reader.iterator(position)
                started_mono = time.monotonic()
                started = time.time()
                try:
                    result = reader.read(iterator, 1000)
                except IteratorExpired:
                    iterator = None
                    continue
                for record in result.records:
                    self.observations.add(record.event_record, started, self._timestamp, self._origin)
                with self._lock:
                    state = self._state[shard_id]
                    if result.records:
                        position = Position.after(result.records[-1].sequence_number)
                        state[0] = None
                        state[1] += len(result.records)
                    else:
                        state[0] = started_mono
                    if result.next_iterator is None:
                        state[2] = True
                        return
                iterator = result.next_iterator
                if not result.records:
                    self._stop.wait(self._interval)
        except Exception as error:
            self.error = error
            log.exception("watcher of %s stopped", shard_id)

    def sources(self) -> list[_ShardView]:
        with self._lock:
            return [_ShardView(self, shard_id) for shard_id in self._state]

    def _snapshot(self, shard_id: str) -> tuple[bool, float | None, int]:
        with self._lock:
            caught, read, finished = self._state[shard_id]
            return True, float("inf") if finished else caught, read

    def stop(self) -> None:
        self._stop.set()
        for thread in list(self._threads.values()):
            thread.join(timeout=5)


@dataclass(frozen=True)
class _ShardView:
    watcher: StreamWatcher
    shard_id: str

    def snapshot(self) -> tuple[bool, float | None, int]:
        return self.watcher._snapshot(self.shard_id)
