"""The demo's residency check: where the run's canary, written on cn-north-1 in ``national_id`` and in
``CN-ONLY`` items (``loadgen``), was found outside what the rules let leave cn-north-1.

The rules (docs/residency.md) promise that restricted data never enters a Kinesis record, a log line
or the peer's failure queue, and never reaches the peer's table. Each place the canary is found
counts once: an item of any us-east-1 table, a record of the us-east-1 inbox (decoded with the
engine's wire decoder, ``replication.wire.decode``: the body is compressed), a line of any function's
log (both sides: a log line must not hold it either), a message of the us-east-1 failure queue.

The rules the oracle expects are read from what was deployed (each side's forwarder's table map, read
from Parameter Store as the forwarder reads it),
so that the check and the oracle follow what the environment deployed
(``EnvironmentOptions.residency_rules``, by default ``config.RESIDENCY_RULES_DEPLOYED``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from replication.errors import WireFormatError
from replication.residency import ResidencyRules
from replication.settings import SideSettings, read_tables
from replication.wire import decode

PLACES = ("tables", "inbox_records", "function_logs", "failure_queue")


def items_with(canary: str, items: Iterable[dict[str, Any]]) -> int:
    """Items (typed, as a boto3 client returns them) holding the canary in any value or name."""
    return sum(1 for item in items if canary in json.dumps(item, default=str, ensure_ascii=False))


def records_with(canary: str, records: Iterable[bytes]) -> int:
    """Inbox records (Kinesis data) holding the canary once decoded; a record the decoder refuses is
    searched as it is."""
    found = 0
    for data in records:
        try:
            text = repr(decode(data))
        except WireFormatError:
            text = data.decode("utf-8", "replace")
        found += canary in text
    return found


def log_lines_with(canary: str, logs: Iterable[Path]) -> int:
    found = 0
    for path in logs:
        with path.open(encoding="utf-8", errors="replace") as lines:
            found += sum(1 for line in lines if canary in line)
    return found


def messages_with(canary: str, bodies: Iterable[str]) -> int:
    return sum(1 for body in bodies if canary in body)


def canary_places(
    canary: str,
    *,
    tables: Iterable[dict[str, Any]],
    inbox_records: Iterable[bytes],
    logs: Iterable[Path],
    failure_messages: Iterable[str],
) -> dict[str, int]:
    """Where the canary was found, by place (``PLACES``)."""
    return {
        "tables": items_with(canary, tables),
        "inbox_records": records_with(canary, inbox_records),
        "function_logs": log_lines_with(canary, logs),
        "failure_queue": messages_with(canary, failure_messages),
    }


# -- reading a side -----------------------------------------------------------------------------


def all_items(dynamodb: Any) -> list[dict[str, Any]]:
    """Every item of every table of a partition (the tombstone table included)."""
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("list_tables").paginate():
        for table in page["TableNames"]:
            for scanned in dynamodb.get_paginator("scan").paginate(TableName=table):
                items.extend(scanned["Items"])
    return items


def stream_records(kinesis: Any, stream_name: str) -> list[bytes]:
    """Every record still in a Kinesis stream, all shards, from the trim horizon."""
    data: list[bytes] = []
    for shard in kinesis.list_shards(StreamName=stream_name)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream_name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            response = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            data.extend(record["Data"] for record in response["Records"])
            if not response["Records"] and not response.get("MillisBehindLatest"):
                break
            iterator = response.get("NextShardIterator")
    return data


def queue_bodies(sqs: Any, queue_url: str) -> list[str]:
    """The messages of a queue (received, not deleted: they become visible again)."""
    bodies: list[str] = []
    seen: set[str] = set()
    for _ in range(100):
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            break
        for message in messages:
            if message["MessageId"] not in seen:
                seen.add(message["MessageId"])
                bodies.append(message["Body"])
    return bodies


def deployed_rules(variables: Mapping[str, str], region: str, ssm: Any) -> dict[str, ResidencyRules]:
    """Each logical table's outgoing rules as a forwarder with these environment ``variables`` in
    ``region`` reads them: its table map at ``TABLES_PARAMETER_PATH`` (``ssm``: a Systems Manager
    client of that side), checked against ``TABLES_SHA256`` and parsed by the engine's own
    ``read_tables`` (a table without rules has ``ResidencyRules()``)."""
    environment = {"AWS_REGION": region, **variables}
    tables = read_tables(environment, SideSettings.from_env(environment), ssm)
    return {name: table.residency for name, table in tables.items()}
