"""CPU benchmark: the forwarder and the replicator with botocore doing its real work, only the network
faked; a naive one-conditional-write-per-change replicator beside them; the packer's CPU per KB.

How the network is faked: botocore emits ``before-send.<service>.<operation>`` once a request is
serialized and signed, and sends nothing when a handler returns an ``AWSResponse`` ("allows a
response to be returned that fulfills the request", botocore's Events documentation,
https://docs.aws.amazon.com/botocore/latest/topics/events.html; moto answers the same way). Every
client is real (parameter validation, serialization, SigV4 signing, retries, parsing); only the
socket is skipped. The answers are DynamoDB's own shapes for this very scenario: a first run goes to
moto (made to behave as DynamoDB by ``replication_ops.local.moto_fidelity`` where the engine relies on
it) and records each answer by operation, table and item key (``before-parse`` gives the raw status,
headers and body); the timed runs replay them in the same per-key order, so the engine takes the same
paths it took against moto whatever the write protocol is. Kinesis PutRecords is answered with its
documented shape (a ``SequenceNumber`` and ``ShardId`` per record). What the fake itself spends (its
lookup and body parse) is measured per thread and subtracted.

The scenario (issue 13): ``--changes`` local changes of ~300-byte Faker profiles, 60% new items,
30% updates of replicated items, 10% deletes, in stream batches of 500; the forwarder ships them, the
peer's replicator applies them, and the naive replicator (decode, then one conditional PutItem or
DeleteItem per change, sequentially) applies the same records to a table in the same state.

Merges its fields into ``--out`` (build/bench.json) without removing other benches' fields, and
prints them with their targets. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import sys
import threading
import time
import zlib
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from faker import Faker

from replication.applying import Replicator
from replication.backoff import Backoff
from replication.changes import Change
from replication.forwarding import Forwarder
from replication.kinesis_sender import KinesisSender
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
from replication.versions import Version
from replication.wire import HEADER_BYTES, KIND_CHANGES, Envelope, decode, encode, pack_changes
from replication_ops.local.loadgen import profile, typed

REGION, PEER = "cn-north-1", "us-east-1"
CLIENT_REGION = "us-east-1"  # moto holds both sides' tables in one region; names keep them apart
NAMES = VersionAttributes()
KEY_SCHEMA = KeySchema(KeyAttribute("pk", "S"), KeyAttribute("sk", "S"))
KEY_NAMES = ("pk", "sk", "k")  # the tables' and the tombstone table's key attributes
TABLES = {"cn": "profiles-cn", "us": "profiles-us", "naive": "profiles-naive"}
TOMBSTONES = {"cn": "tombstones-cn", "us": "tombstones-us"}
INBOX = "inbox"
MIX = (("new", 0.6), ("update", 0.3), ("delete", 0.1))
LEVELS = (1, 3, 6, 9)
TARGETS = {
    "forwarder_us_per_change_realistic": ("<=", 40),
    "replicator_vs_naive": ("<=", 1.3),
    "pack_350kb_vs_4kb": ("<=", 2.0),
}
CREDENTIALS = {"aws_access_key_id": "AKIDBENCHMARK", "aws_secret_access_key": "benchmark-secret"}


# -- the faked network ---------------------------------------------------------------------------


class _Body:
    """What ``AWSResponse.raw`` must offer botocore for a non-streaming body: ``stream()``."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def request_key(operation: str, body: bytes) -> str:
    """Operation, tables and item keys of a DynamoDB request: what its answer depends on here."""
    request = json.loads(body) if body else {}
    parts: list[Any] = [operation, request.get("TableName")]
    if "Key" in request:
        parts.append(request["Key"])
    elif "Item" in request:
        parts.append({n: v for n, v in request["Item"].items() if n in KEY_NAMES})
    for entry in request.get("TransactItems", ()):
        ((kind, what),) = entry.items()
        key = what.get("Key") or {n: v for n, v in what.get("Item", {}).items() if n in KEY_NAMES}
        parts.append([kind, what["TableName"], key])
    for table, asked in sorted(request.get("RequestItems", {}).items()):
        parts.append([table, sorted(json.dumps(k, sort_keys=True) for k in asked["Keys"])])
    return json.dumps(parts, sort_keys=True)


class Recorder:
    """Records moto's answer to every DynamoDB request, by ``request_key``, in order."""

    def __init__(self) -> None:
        self.answers: dict[str, deque[tuple[int, dict[str, str], bytes]]] = defaultdict(deque)
        self._pending = threading.local()

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-send.dynamodb", self._before_send)
        client.meta.events.register("before-parse.dynamodb", self._before_parse)

    def _before_send(self, request: Any, **_: Any) -> None:
        operation = request.headers["X-Amz-Target"].decode().split(".")[-1]
        self._pending.key = request_key(operation, request.body)

    def _before_parse(self, response_dict: dict[str, Any], **_: Any) -> None:
        headers = dict(response_dict["headers"].items())
        self.answers[self._pending.key].append((response_dict["status_code"], headers, response_dict["body"]))


class Replay:
    """Answers DynamoDB requests with the recorded answers (per key, in order; the last one again
    when a key is asked more often) and Kinesis PutRecords with its documented success shape. Counts
    its own CPU so that it can be subtracted."""

    def __init__(self, recorded: dict[str, deque[tuple[int, dict[str, str], bytes]]]) -> None:
        self._recorded = {key: list(answers) for key, answers in recorded.items()}
        self._next: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self.cpu_seconds = 0.0
        self.misses = 0
        self.calls: dict[str, int] = defaultdict(int)

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-send", self._answer)

    def reset(self) -> None:
        self._next.clear()
        self.cpu_seconds = 0.0
        self.calls.clear()

    def _answer(self, request: Any, **_: Any) -> AWSResponse:
        began = time.thread_time()
        target = request.headers["X-Amz-Target"].decode()
        service, operation = target.split(".")
        body = request.body if isinstance(request.body, bytes) else request.body.encode()
        with self._lock:
            self.calls[operation] += 1
        if service.startswith("Kinesis"):
            status, headers, answer = 200, {"Content-Type": "application/x-amz-json-1.1"}, _put_records(body)
        else:
            key = request_key(operation, body)
            with self._lock:
                answers = self._recorded.get(key)
                if not answers:
                    self.misses += 1
                    answers = [(200, {"Content-Type": "application/x-amz-json-1.0"}, b"{}")]
                position = min(self._next[key], len(answers) - 1)
                self._next[key] += 1
            status, headers, answer = answers[position]
        response = AWSResponse(request.url, status, headers, _Body(answer))
        elapsed = time.thread_time() - began
        with self._lock:
            self.cpu_seconds += elapsed
        return response


def _put_records(body: bytes) -> bytes:
    """PutRecords' answer: one entry per record, in order (Kinesis API reference, PutRecords)."""
    count = body.count(b'"PartitionKey"')
    records = [
        {"SequenceNumber": f"4959{index:052d}", "ShardId": "shardId-000000000000"} for index in range(count)
    ]
    return json.dumps({"FailedRecordCount": 0, "Records": records, "EncryptionType": "KMS"}).encode()


# -- the scenario --------------------------------------------------------------------------------


def served(side: str, region: str) -> ServedTable:
    settings = SideSettings(TOMBSTONES[side], region, NAMES, 86400)
    partition = "aws-cn" if region.startswith("cn-") else "aws"
    table = TABLES[side]
    peer = TABLES["us" if side == "cn" else "cn"]
    return ServedTable(
        settings.table("profiles", table),
        f"arn:{partition}:dynamodb:{region}:123456789012:table/{table}",
        peer,
        KEY_SCHEMA,
    )


class PeerKinesis:
    """Stands in for PeerSession (credentials from Secrets Manager): hands out a real Kinesis client."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def kinesis(self, *, refresh: bool = False) -> Any:
        return self._client


def scenario(changes: int, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(items both sides hold before, the cn side's stream records of the local changes), in the
    60/30/10 mix. Versions are a minute old, well within the clock-skew bound."""
    fake = Faker()
    fake.seed_instance(seed)
    rng = random.Random(seed)
    base = Decimal(int(time.time()) - 120)
    kinds = [kind for kind, share in MIX for _ in range(round(changes * share))]
    rng.shuffle(kinds)
    existing: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    arn = served("cn", REGION).table_arn + "/stream/2026-11-30T00:00:00.000"
    for index, kind in enumerate(kinds):
        key = {"pk": {"S": f"user#{fake.uuid4()}"}, "sk": {"S": "profile"}}
        old = None
        if kind != "new":
            old = {
                **key,
                **typed({**profile(fake, rng, "China"), NAMES.timestamp: base, NAMES.origin: REGION}),
            }
            existing.append(old)
        stamp = base + 60 + Decimal(index) / 1000
        new = None
        if kind != "delete":
            new = {
                **key,
                **typed({**profile(fake, rng, "China"), NAMES.timestamp: stamp, NAMES.origin: REGION}),
            }
        stream: dict[str, Any] = {
            "ApproximateCreationDateTime": int(stamp),
            "Keys": key,
            "SequenceNumber": f"{index + 1:021d}",
            "SizeBytes": 300,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if new:
            stream["NewImage"] = new
        if old:
            stream["OldImage"] = old
        records.append(
            {
                "eventID": f"{index:032x}",
                "eventName": {"new": "INSERT", "update": "MODIFY", "delete": "REMOVE"}[kind],
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": REGION,
                "dynamodb": stream,
                "eventSourceARN": arn,
            }
        )
    return existing, records


def no_sleep_backoff() -> Backoff:
    return Backoff(sleep=lambda _: None, max_attempts=3)


class World:
    """Clients and handlers of both sides, all through one botocore session."""

    def __init__(self, attach: Callable[[Any], None]) -> None:
        session = boto3.session.Session(region_name=CLIENT_REGION, **CREDENTIALS)
        config = Config(retries={"mode": "standard"})
        self.db = session.client("dynamodb", config=config)
        self.kinesis = session.client("kinesis", config=config)
        attach(self.db)
        attach(self.kinesis)
        cn, us = served("cn", REGION), served("us", PEER)
        self.forwarder_settings = ForwarderSettings(
            SideSettings(TOMBSTONES["cn"], REGION, NAMES, 86400),
            {"profiles": cn},
            PEER,
            INBOX,
            "secret",
            None,
            None,
            1024 * 1024,
            300,
        )
        sender = KinesisSender(PeerKinesis(self.kinesis), INBOX, backoff_factory=no_sleep_backoff)  # type: ignore[arg-type]
        writer = TableWriter(self.db, cn.table, backoff_factory=no_sleep_backoff)
        self.forwarder = Forwarder(self.forwarder_settings, writer, sender, table=cn)
        replicator_settings = ReplicatorSettings(
            SideSettings(TOMBSTONES["us"], PEER, NAMES, 86400), {"profiles": us}, "queue", 16
        )
        us_writer = TableWriter(self.db, us.table, backoff_factory=no_sleep_backoff)
        self.replicator = Replicator(replicator_settings, {"profiles": us_writer}, sqs=None)


def naive_apply(db: Any, events: list[dict[str, Any]]) -> int:
    """The baseline: decode each record, then one conditional write per change, in order. The
    condition is last-writer-wins on (timestamp, origin), nothing else (no tombstones, no echoes)."""
    applied = 0
    names = {"#t": NAMES.timestamp, "#o": NAMES.origin}
    newer = "attribute_not_exists(#t) OR #t < :t OR (#t = :t AND #o < :o)"
    for event in events:
        envelope = decode(base64.b64decode(event["kinesis"]["data"]))
        for change in envelope.changes:
            values = {":t": {"N": str(change.version.timestamp)}, ":o": {"S": change.version.origin}}
            try:
                if change.item is None:
                    db.delete_item(
                        TableName=TABLES["naive"],
                        Key=change.key,
                        ConditionExpression=newer,
                        ExpressionAttributeNames=names,
                        ExpressionAttributeValues=values,
                    )
                else:
                    db.put_item(
                        TableName=TABLES["naive"],
                        Item=change.item,
                        ConditionExpression=newer,
                        ExpressionAttributeNames=names,
                        ExpressionAttributeValues=values,
                    )
                applied += 1
            except db.exceptions.ConditionalCheckFailedException:
                pass
    return applied


def kinesis_events(put_bodies: list[bytes]) -> list[dict[str, Any]]:
    """The inbox records the replicator's event source mapping delivers, from PutRecords bodies."""
    events = []
    for body in put_bodies:
        for record in json.loads(body)["Records"]:
            events.append(
                {
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": record["PartitionKey"],
                        "sequenceNumber": f"4959{len(events):052d}",
                        "data": record["Data"],
                        "approximateArrivalTimestamp": 1764200000.0,
                    },
                    "eventSource": "aws:kinesis",
                    "eventVersion": "1.0",
                    "eventID": f"shardId-000000000000:{len(events)}",
                    "eventName": "aws:kinesis:record",
                    "awsRegion": PEER,
                    "eventSourceARN": f"arn:aws:kinesis:{PEER}:123456789012:stream/{INBOX}",
                }
            )
    return events


def create_tables(db: Any, existing: list[dict[str, Any]]) -> None:
    for name in TABLES.values():
        db.create_table(
            TableName=name,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
    for name in TOMBSTONES.values():
        db.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    for item in existing:
        for name in TABLES.values():
            db.put_item(TableName=name, Item=item)


def apply_locally(db: Any, records: list[dict[str, Any]]) -> None:
    """The application's writes on the cn side, which the stream records describe."""
    for record in records:
        stream = record["dynamodb"]
        if "NewImage" in stream:
            db.put_item(TableName=TABLES["cn"], Item=stream["NewImage"])
        else:
            db.delete_item(TableName=TABLES["cn"], Key=stream["Keys"])


@contextmanager
def moto_world(recorder: Recorder) -> Iterator[World]:
    from moto import mock_aws

    from replication_ops.local import moto_fidelity

    moto_fidelity.apply()
    with mock_aws():
        yield World(recorder.attach)


def capture(
    existing: list[dict[str, Any]], records: list[dict[str, Any]], batch: int
) -> tuple[Recorder, list[bytes]]:
    """One run against moto: the answers to replay, and the forwarder's PutRecords bodies."""
    recorder = Recorder()
    bodies: list[bytes] = []
    with moto_world(recorder) as world:
        world.kinesis.meta.events.register(
            "before-send.kinesis.PutRecords", lambda request, **_: bodies.append(request.body) and None
        )
        create_tables(world.db, existing)
        world.kinesis.create_stream(StreamName=INBOX, ShardCount=1)
        apply_locally(world.db, records)
        recorder.answers.clear()
        for start in range(0, len(records), batch):
            assert world.forwarder.process(records[start : start + batch]).first_failure is None
        events = kinesis_events(bodies)
        report = world.replicator.process(events)
        assert not report.failed, report
        naive_apply(world.db, events)
    return recorder, bodies


def cpu_run(replay: Replay, work: Callable[[], Any]) -> tuple[float, Any]:
    """Process CPU seconds of ``work`` (every thread), less what the fake network spent."""
    replay.reset()
    began = time.process_time()
    result = work()
    return time.process_time() - began - replay.cpu_seconds, result


def measure(changes: int, batch: int, repeats: int) -> dict[str, Any]:
    existing, records = scenario(changes, seed=13)
    recorder, bodies = capture(existing, records, batch)
    events = kinesis_events(bodies)
    replay = Replay(recorder.answers)
    world = World(replay.attach)
    forwarder, replicator, naive = [], [], []
    calls: dict[str, dict[str, int]] = {}
    for _ in range(repeats):
        seconds, _ = cpu_run(
            replay,
            lambda: [world.forwarder.process(records[s : s + batch]) for s in range(0, len(records), batch)],
        )
        forwarder.append(seconds)
        calls["forwarder"] = dict(replay.calls)
        seconds, _ = cpu_run(replay, lambda: world.replicator.process(events))
        replicator.append(seconds)
        calls["replicator"] = dict(replay.calls)
        seconds, _ = cpu_run(replay, lambda: naive_apply(world.db, events))
        naive.append(seconds)
        calls["naive"] = dict(replay.calls)
    best = min  # the least disturbed of the repeats on a shared machine
    return {
        "cpu_changes": changes,
        "cpu_mix": dict(MIX),
        "forwarder_us_per_change_realistic": round(best(forwarder) / changes * 1e6, 1),
        "replicator_us_per_change_realistic": round(best(replicator) / changes * 1e6, 1),
        "naive_replicator_us_per_change": round(best(naive) / changes * 1e6, 1),
        "cpu_aws_calls": calls,
        "cpu_replay_misses": replay.misses,
    }


# -- packing -------------------------------------------------------------------------------------


def text_items(count: int, item_bytes: int, seed: int) -> list[Change]:
    """Items of about ``item_bytes`` of words (text compresses as profiles and documents do)."""
    rng = random.Random(seed)
    words = _vocabulary()
    changes = []
    for index in range(count):
        text: list[str] = []
        size = 0
        while size < item_bytes:
            word = rng.choice(words)
            text.append(word)
            size += len(word) + 1
        key = {"pk": {"S": f"doc#{index}"}, "sk": {"S": "body"}}
        stamp = Decimal("1764200000.5") + index
        item = {
            **key,
            "body": {"S": " ".join(text)},
            NAMES.timestamp: {"N": str(stamp)},
            NAMES.origin: {"S": REGION},
        }
        changes.append(Change(key, Version(stamp, REGION), item))
    return changes


def _vocabulary() -> list[str]:
    fake = Faker()
    fake.seed_instance(7)
    return sorted({word for _ in range(200) for word in fake.paragraph(nb_sentences=10).split()})


def pack_cpu(changes: list[Change], repeats: int) -> float:
    """Best CPU seconds of packing ``changes`` into 1 MiB records."""
    times = []
    for _ in range(repeats):
        began = time.process_time()
        pack_changes(
            changes,
            origin=REGION,
            table=TABLES["cn"],
            name="profiles",
            version_attributes=NAMES,
            max_record_bytes=1024 * 1024,
        )
        times.append(time.process_time() - began)
    return min(times)


def packing(repeats: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for label, count, size in (("4kb", 100, 4 * 1024), ("350kb", 100, 350 * 1024)):
        changes = text_items(count, size, seed=size)
        kb = sum(len(json.dumps(c.item)) for c in changes) / 1024
        figures[f"pack_us_per_kb_{label}"] = round(pack_cpu(changes, repeats) / kb * 1e6, 2)
    return figures


def zlib_levels(repeats: int) -> dict[str, Any]:
    """Bytes against CPU per zlib level, on the bodies the forwarder sends: a 500-change batch of
    ~300-byte profiles, and 100 text items of 4 KB."""
    _, records = scenario(500, seed=5)
    profiles = [
        Change(
            r["dynamodb"]["Keys"],
            Version(Decimal(r["dynamodb"]["NewImage"][NAMES.timestamp]["N"]), REGION),
            r["dynamodb"]["NewImage"],
        )
        for r in records
        if "NewImage" in r["dynamodb"]
    ]
    result: dict[str, Any] = {}
    for label, changes in (("profiles_300b", profiles), ("text_4kb", text_items(100, 4096, seed=1))):
        envelope = Envelope(
            KIND_CHANGES, REGION, TABLES["cn"], NAMES, 1764200000000, tuple(changes), name="profiles"
        )
        body = zlib.decompress(encode(envelope)[HEADER_BYTES:])  # the body exactly as the forwarder sends it
        per_level = {}
        for level in LEVELS:
            times = []
            for _ in range(repeats):
                began = time.process_time()
                size = len(zlib.compress(body, level))
                times.append(time.process_time() - began)
            per_level[str(level)] = {
                "bytes_per_change": round(size / len(changes), 1),
                "us_per_change": round(min(times) / len(changes) * 1e6, 2),
            }
        result[label] = per_level
    return result


# -- output --------------------------------------------------------------------------------------


def verdicts(figures: dict[str, Any]) -> dict[str, Any]:
    derived = {
        "replicator_vs_naive": round(
            figures["replicator_us_per_change_realistic"] / figures["naive_replicator_us_per_change"], 2
        ),
        "pack_350kb_vs_4kb": round(figures["pack_us_per_kb_350kb"] / figures["pack_us_per_kb_4kb"], 2),
    }
    return derived


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--changes", type=int, default=2000, help="changes in the CPU run (default 2,000)")
    parser.add_argument("--batch", type=int, default=500, help="stream batch size (default 500)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats; the best is kept (default 3)")
    parser.add_argument(
        "--out", type=Path, default=Path("build/bench.json"), help="the figures file to merge into"
    )
    args = parser.parse_args(argv)
    figures = measure(args.changes, args.batch, args.repeats)
    figures.update(packing(args.repeats))
    figures.update(verdicts(figures))
    figures["zlib_levels"] = zlib_levels(args.repeats)
    figures["cpu_load_average"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    merged = json.loads(args.out.read_text()) if args.out.exists() else {}
    merged.update(figures)
    args.out.write_text(json.dumps(merged, indent=2) + "\n")
    shown = [
        "forwarder_us_per_change_realistic",
        "replicator_us_per_change_realistic",
        "naive_replicator_us_per_change",
        "replicator_vs_naive",
        "pack_us_per_kb_4kb",
        "pack_us_per_kb_350kb",
        "pack_350kb_vs_4kb",
    ]
    width = max(len(name) for name in shown)
    for name in shown:
        target = TARGETS.get(name)
        verdict = ""
        if target:
            value = figures[name]
            ok = value <= target[1] if target[0] == "<=" else value >= target[1]
            verdict = f"  target {target[0]} {target[1]}: {'met' if ok else 'MISSED'}"
        print(f"{name:<{width}}  {figures[name]}{verdict}")
    for label, per_level in figures["zlib_levels"].items():
        row = ", ".join(
            f"level {lv}: {v['bytes_per_change']} B {v['us_per_change']} us" for lv, v in per_level.items()
        )
        print(f"zlib {label}: {row}")
    print(f"load average {figures['cpu_load_average']}; replay misses {figures['cpu_replay_misses']}")
    print(f"merged into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
