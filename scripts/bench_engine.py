"""Engine benchmark: 10,000 profile changes through both handlers' code with AWS calls stubbed.

Writes build/bench.json and prints a table. Figures, not assertions: CI does not time anything.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import sys
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path
from typing import Any

from faker import Faker

from replication.applying import Replicator
from replication.forwarding import Forwarder
from replication.kinesis_sender import OutgoingRecord, SendResult
from replication.settings import (
    ForwarderSettings,
    KeyAttribute,
    KeySchema,
    ReplicatorSettings,
    ServedTable,
    SideSettings,
    VersionAttributes,
)
from replication.table_writer import TableWriter
from replication_ops.local.loadgen import profile, typed

REGION, PEER = "cn-north-1", "us-east-1"
NAMES = VersionAttributes()
KEY_SCHEMA = KeySchema(KeyAttribute("pk", "S"), KeyAttribute("sk", "S"))
SIDE = SideSettings("profiles-tombstones", REGION, NAMES, 86400)
PEER_SIDE = SideSettings("profiles-tombstones", PEER, NAMES, 86400)
TABLE = SIDE.table("profiles", "profiles")
PEER_TABLE = PEER_SIDE.table("profiles", "profiles")
# The one table of each side's map (the stream records below name its stream).
SERVED = ServedTable(
    TABLE, "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/profiles", "profiles", KEY_SCHEMA
)
PEER_SERVED = ServedTable(
    PEER_TABLE, "arn:aws:dynamodb:us-east-1:123456789012:table/profiles", "profiles", KEY_SCHEMA
)
TARGETS = {
    "bytes_per_change": ("<=", 110),
    "changes_per_record": (">=", 100),
    "replicator_speedup_5ms": (">=", 10),
}


class StubDynamoDB:
    """Answers like DynamoDB for the calls the engine makes; optional latency per call."""

    def __init__(self, latency_seconds: float = 0.0) -> None:
        self.latency_seconds = latency_seconds
        self.calls = 0

    def _call(self) -> None:
        self.calls += 1
        if self.latency_seconds:
            time.sleep(self.latency_seconds)

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self._call()
        return {"Responses": {name: [] for name in RequestItems}}

    def put_item(self, **_: Any) -> dict[str, Any]:
        self._call()
        return {}

    def delete_item(self, **_: Any) -> dict[str, Any]:
        self._call()
        return {}

    def update_item(self, **_: Any) -> dict[str, Any]:
        self._call()
        return {}


class CapturingSender:
    def __init__(self) -> None:
        self.records: list[OutgoingRecord] = []

    def send(self, records: list[OutgoingRecord]) -> SendResult:
        self.records.extend(records)
        return SendResult(delivered=set(range(len(records))), bytes_sent=sum(r.size for r in records))


def stream_records(count: int, seed: int) -> list[dict[str, Any]]:
    """INSERT stream records of ~300-byte profiles, as the DynamoDB stream delivers them to Lambda."""
    fake = Faker()
    fake.seed_instance(seed)
    rng = random.Random(seed)
    start = Decimal("1764200000")
    records = []
    for index in range(count):
        key = {"pk": {"S": f"user#{fake.uuid4()}"}, "sk": {"S": "profile"}}
        version = {NAMES.timestamp: start + Decimal(index) / 1000, NAMES.origin: REGION}
        image = {**key, **typed({**profile(fake, rng, "China"), **version})}
        records.append(
            {
                "eventID": f"{index:032x}",
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": REGION,
                "dynamodb": {
                    "ApproximateCreationDateTime": 1764200000 + index // 1000,
                    "Keys": key,
                    "NewImage": image,
                    "SequenceNumber": f"{index + 1:021d}",
                    "SizeBytes": 300,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
                "eventSourceARN": "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/profiles/stream/x",
            }
        )
    return records


def item_bytes(image: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (strings by UTF-8 length)."""
    return sum(len(name) + len(next(iter(value.values()))) for name, value in image.items())


def peak_bytes(work: Any) -> int:
    """Peak Python allocation while ``work`` runs (measured apart from the timings)."""
    tracemalloc.start()
    work()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def kinesis_events(records: list[OutgoingRecord]) -> list[dict[str, Any]]:
    return [
        {
            "kinesis": {
                "partitionKey": r.partition_key,
                "sequenceNumber": str(i),
                "data": base64.b64encode(r.data).decode(),
            },
            "eventSource": "aws:kinesis",
            "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/inbox",
        }
        for i, r in enumerate(records)
    ]


def run(changes: int, batch: int, speedup_changes: int) -> dict[str, Any]:
    records = stream_records(changes, seed=42)
    sender = CapturingSender()
    forwarder_settings = ForwarderSettings(
        SIDE, {"profiles": SERVED}, PEER, "inbox", "secret", None, None, 1024 * 1024, 300
    )
    forwarder = Forwarder(forwarder_settings, TableWriter(StubDynamoDB(), TABLE), sender, table=SERVED)  # type: ignore[arg-type]

    cpu = time.process_time()
    for start in range(0, changes, batch):
        report = forwarder.process(records[start : start + batch])
        assert report.first_failure is None
    forwarder_cpu = time.process_time() - cpu
    spare = Forwarder(forwarder_settings, TableWriter(StubDynamoDB(), TABLE), CapturingSender(), table=SERVED)  # type: ignore[arg-type]
    forwarder_peak = peak_bytes(lambda: spare.process(records[:batch]))

    sent_bytes = sum(r.size for r in sender.records)
    # The baseline sent str() of each change's new image, one Kinesis record per change.
    baseline_bytes = sum(len(str(r["dynamodb"]["NewImage"]).encode("utf-8")) for r in records)

    replicator_settings = ReplicatorSettings(PEER_SIDE, {"profiles": PEER_SERVED}, "queue", 16)
    replicator = Replicator(
        replicator_settings, {"profiles": TableWriter(StubDynamoDB(), PEER_TABLE)}, sqs=None
    )
    events = kinesis_events(sender.records)
    cpu = time.process_time()
    report = replicator.process(events)
    replicator_cpu = time.process_time() - cpu
    replicator_peak = peak_bytes(lambda: replicator.process(events[:1]))
    assert sum(report.outcomes.values()) == changes and not report.failed

    subset = CapturingSender()
    Forwarder(forwarder_settings, TableWriter(StubDynamoDB(), TABLE), subset, table=SERVED).process(
        records[:speedup_changes]
    )  # type: ignore[arg-type]
    walls = {}
    for concurrency in (1, 16):
        settings = ReplicatorSettings(PEER_SIDE, {"profiles": PEER_SERVED}, "queue", concurrency)
        slow_writer = TableWriter(StubDynamoDB(latency_seconds=0.005), PEER_TABLE)
        slow = Replicator(settings, {"profiles": slow_writer}, sqs=None)
        began = time.perf_counter()
        slow.process(kinesis_events(subset.records))
        walls[concurrency] = time.perf_counter() - began

    return {
        "changes": changes,
        "stream_batch_size": batch,
        "average_item_bytes": round(sum(item_bytes(r["dynamodb"]["NewImage"]) for r in records) / changes, 1),
        "bytes_per_change": round(sent_bytes / changes, 1),
        "baseline_bytes_per_change": round(baseline_bytes / changes, 1),
        "kinesis_records": len(sender.records),
        "changes_per_record": round(changes / len(sender.records), 1),
        "forwarder_us_per_change": round(forwarder_cpu / changes * 1e6, 1),
        "replicator_us_per_change": round(replicator_cpu / changes * 1e6, 1),
        "forwarder_peak_mib_per_500_changes": round(forwarder_peak / 2**20, 2),
        "replicator_peak_mib_per_500_changes": round(replicator_peak / 2**20, 2),
        "replicator_speedup_5ms": round(walls[1] / walls[16], 1),
        "replicator_changes_per_second_5ms": round(speedup_changes / walls[16]),
        "python": sys.version.split()[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--changes", type=int, default=10_000, help="changes to push through (default 10,000)"
    )
    parser.add_argument("--batch", type=int, default=500, help="stream batch size (default 500)")
    parser.add_argument("--speedup-changes", type=int, default=1000, help="changes in the 5 ms latency run")
    parser.add_argument(
        "--out", type=Path, default=Path("build/bench.json"), help="where to write the figures"
    )
    args = parser.parse_args(argv)
    figures = run(args.changes, args.batch, args.speedup_changes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    width = max(len(name) for name in figures)
    for name, value in figures.items():
        target = TARGETS.get(name)
        verdict = ""
        if target:
            ok = value <= target[1] if target[0] == "<=" else value >= target[1]
            verdict = f"  target {target[0]} {target[1]}: {'met' if ok else 'MISSED'}"
        print(f"{name:<{width}}  {value}{verdict}")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
