"""The forwarder's AWS calls, byte for byte, for a fixed realistic batch (issue 13).

The forwarder's CPU is cut by changing how it computes what it sends, never what it sends: the
protocol is proven by the interleaving tests (an hour), which are not re-run for a change of speed.
This test pins the sequence of calls and every request body (DynamoDB JSON, Kinesis PutRecords
with the compressed records) for a deterministic batch of every kind of record the forwarder
decides on (forwarded inserts and updates, deletes, stamps for absent, not newer, malformed, ahead
and reserved versions, echoes, TTL deletes, remembered deletes that win, stamps that lose and
restore), against golden digests computed from the implementation before the CPU work
(``tests/engine/data/forwarder_wire_golden.json``; regenerate only for an intended protocol change,
with ``FORWARDER_GOLDEN_WRITE=1``).
"""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from replication import forwarding, wire
from replication.forwarding import Forwarder
from replication.keys import key_digest
from replication.kinesis_sender import KinesisSender
from replication.settings import ForwarderSettings
from replication.typed_values import to_client

from .events import stream_event
from .golden import assert_golden, assert_same_calls, profile, text, versioned
from .harness import (
    LOGICAL,
    NAMES,
    TOMBSTONES,
    create_tables,
    no_sleep_backoff,
    served_table,
    session,
    side_settings,
)

GOLDEN = Path(__file__).parent / "data" / "forwarder_wire_golden.json"
REGION, PEER = "cn-north-1", "us-east-1"
BASE = 1764547200  # every version and clock is fixed: the bodies are deterministic
CLOCK = BASE + 120.25
SENT_AT_MS = int(CLOCK * 1000)
KINDS = (
    ("new", 30),
    ("update", 20),
    ("delete", 10),
    ("unversioned", 6),
    ("touch", 6),
    ("touch_lost", 4),
    ("echo", 5),
    ("echo_delete", 3),
    ("reserved", 3),
    ("malformed", 3),
    ("ahead", 2),
    ("ttl", 3),
    ("delete_wins", 3),
    ("twice", 3),
)
BATCHES = (200, 100, 24)  # 324 records; the first batch reads more than 100 tombstones


def scenario() -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], dict[str, Any]]]]:
    """(the stream records, in order; tombstone rows to hold before: (key, row))."""
    rng = random.Random(1313)
    kinds = [kind for kind, count in KINDS for _ in range(count)] * 3
    rng.shuffle(kinds)
    records: list[dict[str, Any]] = []
    tombstones: list[tuple[dict[str, Any], dict[str, Any]]] = []
    arn = f"arn:aws-cn:dynamodb:{REGION}:123456789012:table/profiles/stream/2026-12-01T00:00:00.000"
    old_stamp = Decimal(BASE)

    def record(
        event: str, key: dict[str, Any], created: int, new: Any = None, old: Any = None, **extra: Any
    ) -> None:
        built = stream_event(
            event, key, new=new, old=old, created=created, sequence=f"{len(records) + 1:021d}"
        )
        records.append({**built, "eventSourceARN": arn, **extra})

    for index, kind in enumerate(kinds):
        key = {"pk": {"S": f"user#{index:05d}#{text(rng, 4, 10)}"}, "sk": {"S": "profile"}}
        stamp = Decimal(BASE + 60) + Decimal(index) / 1000
        created = BASE + 60 + index // 1000
        old = versioned(key, rng, old_stamp, REGION)
        if kind == "new":
            record("INSERT", key, created, new=versioned(key, rng, stamp, REGION))
        elif kind == "update":
            record("MODIFY", key, created, new=versioned(key, rng, stamp, REGION), old=old)
        elif kind == "delete":
            record("REMOVE", key, created, old=old)
        elif kind == "unversioned":
            record("INSERT", key, created, new={**key, **profile(rng)})
        elif kind == "touch":  # the version kept: stamped, over an item with a version
            record("MODIFY", key, created, new={**old, "age": {"N": "1"}}, old=old)
        elif kind == "touch_lost":  # stamped, but a newer write follows: the stamp fails, restore
            touched = {**old, "age": {"N": "2"}}
            record("MODIFY", key, created, new=touched, old=old)
            record("MODIFY", key, created, new=versioned(key, rng, stamp, REGION), old=touched)
        elif kind == "echo":
            record("INSERT", key, created, new=versioned(key, rng, stamp, PEER))
        elif kind == "echo_delete":
            record("MODIFY", key, created, new=versioned(key, rng, stamp, PEER), old=old)
        elif kind == "reserved":
            record(
                "INSERT", key, created, new={**versioned(key, rng, stamp, REGION), "_ddbrep_x": {"S": "y"}}
            )
        elif kind == "malformed":
            record(
                "INSERT",
                key,
                created,
                new={**profile(rng), **key, NAMES.timestamp: {"S": "soon"}, NAMES.origin: {"S": REGION}},
            )
        elif kind == "ahead":
            record("INSERT", key, created, new=versioned(key, rng, BASE * 1000, REGION))
        elif kind == "ttl":
            identity = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
            record("REMOVE", key, created, old=old, userIdentity=identity)
        elif kind == "delete_wins":
            record("INSERT", key, created, new=versioned(key, rng, stamp, REGION))
            tombstones.append(
                (key, {"ts": {"N": str(stamp + 1)}, "o": {"S": PEER}, "src": {"S": "replicated"}})
            )
        elif kind == "twice":
            first = {**key, **profile(rng)}
            record("INSERT", key, created, new=first)
            record("MODIFY", key, created, new={**key, **profile(rng)}, old=first)
    return records, tombstones


def _final_items(records: list[dict[str, Any]]) -> dict[str, dict[str, Any] | None]:
    """Each key's item after the application's writes the records describe (None: deleted)."""
    final: dict[str, dict[str, Any] | None] = {}
    for record in records:
        stream = record["dynamodb"]
        final[key_digest(stream["Keys"])] = stream.get("NewImage")
    return final


def run_forwarder(monkeypatch: pytest.MonkeyPatch, concurrency: int) -> list[tuple[str, bytes]]:
    """The forwarder's calls for the scenario, in moto: (operation, request body) in order."""
    monkeypatch.setattr(forwarding, "LOCAL_WRITE_CONCURRENCY", concurrency)
    monkeypatch.setattr(wire, "now_ms", lambda: SENT_AT_MS)
    records, tombstones = scenario()
    db = session().client("dynamodb", region_name=REGION)
    kinesis = session().client("kinesis", region_name=PEER)
    create_tables(db)
    kinesis.create_stream(StreamName="inbox", ShardCount=1)
    served = served_table(REGION)
    for item in _final_items(records).values():
        if item is not None:
            db.put_item(TableName=served.table.table_name, Item=to_client(item))
    for key, row in tombstones:
        db.put_item(TableName=TOMBSTONES, Item={"k": {"S": f"{LOGICAL}/{key_digest(key)}"}, **row})
    calls: list[tuple[str, bytes]] = []

    def record_call(request: Any, **_: Any) -> None:
        body = request.body if isinstance(request.body, bytes) else request.body.encode()
        calls.append((request.headers["X-Amz-Target"].decode().split(".")[-1], body))

    db.meta.events.register("before-send.dynamodb", record_call)
    kinesis.meta.events.register("before-send.kinesis", record_call)

    class Peer:
        def kinesis(self, *, refresh: bool = False) -> Any:
            return kinesis

    from replication.table_writer import TableWriter

    writer = TableWriter(db, served.table, backoff_factory=no_sleep_backoff, clock=lambda: CLOCK)
    settings = ForwarderSettings(
        side_settings(REGION), {LOGICAL: served}, PEER, "inbox", "secret", None, None, 1024 * 1024, 300
    )
    sender = KinesisSender(Peer(), "inbox", backoff_factory=no_sleep_backoff)  # type: ignore[arg-type]
    forwarder = Forwarder(settings, writer, sender, table=served, clock=lambda: CLOCK)
    start = 0
    for size in BATCHES:
        report = forwarder.process(records[start : start + size])
        assert report.first_failure is None
        start += size
    assert start == len(records)
    return calls


def test_the_forwarders_calls_are_the_golden_ones(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """One key at a time (the local writes' order across keys is the thread pool's): the exact sequence."""
    calls = run_forwarder(monkeypatch, 1)
    operations = {operation for operation, _ in calls}
    # The scenario reaches every call the forwarder makes here.
    assert operations == {"BatchGetItem", "PutItem", "UpdateItem", "PutRecords", "DeleteItem"}, operations
    assert_golden(calls, GOLDEN, "FORWARDER_GOLDEN_WRITE")


def test_with_the_thread_pool_the_same_calls(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The forwarder's own concurrency: the same calls, in an order only the thread pool chooses."""
    calls = run_forwarder(monkeypatch, forwarding.LOCAL_WRITE_CONCURRENCY)
    assert_same_calls(calls, GOLDEN)
