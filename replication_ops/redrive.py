"""Redrive: re-process what ended in a side's failure queue.

For a stream source Lambda's on-failure destination receives only the failed batch's metadata
(``DDBStreamBatchInfo`` / ``KinesisBatchInfo``: shard, first and last sequence number, stream ARN).
The range is read again from the stream (``AT_SEQUENCE_NUMBER``) and processed again, either by
invoking the function with the event in AWS's format (``--via invoke``) or by running the engine
in-process with the function's own settings (``--via local``, what works against moto). The SQS
message is deleted only after the batch succeeded. A range the stream no longer holds (trimmed
after 24 h for DynamoDB Streams, the retention period for Kinesis) cannot be redriven: it is
reported, left in the queue, and ``verify --repair`` brings the tables together instead.

Messages of kind ``poison`` (records the replicator refused, see ``replication.applying``) are
listed with their reason and left in place unless ``--delete-poison``.

Each entry names its logical table where the message tells it: a table stream's batch by its stream,
a refusal by its ``table``. An inbox batch mixes tables and a poison message may belong to none; with
``--table NAME`` only the entries known to be of NAME are touched, the others are left as they are
(``skipped``) for a run without ``--table``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from replication.applying import POISON_MESSAGE_KIND, Replicator
from replication.backoff import Backoff
from replication.forwarding import Forwarder
from replication.kinesis_sender import KinesisSender
from replication.peer_session import PeerSession
from replication.routing import forward_batch
from replication.settings import ForwarderSettings, ReplicatorSettings
from replication.table_writer import TableWriter
from replication_ops.errors import ConfigError, OpsError, aws_errors, describe, error_code
from replication_ops.lambda_events import dynamodb_event_record, kinesis_event_record
from replication_ops.progress import Bar
from replication_ops.sides import Side

GONE_CODES = frozenset(
    {"TrimmedDataAccessException", "ExpiredIteratorException", "ResourceNotFoundException"}
)
BATCH_KEYS = ("DDBStreamBatchInfo", "KinesisBatchInfo")
EMPTY_READS_AT_TIP = 3
REDRIVE_DEADLINE_SECONDS = 300


class RangeGone(Exception):
    pass


@dataclass
class Entry:
    side: str
    message_id: str
    kind: str  # batch | poison | unknown
    status: str  # redriven | failed | expired | left | deleted | listed
    source: str = ""
    detail: str = ""
    records: int = 0
    table: str | None = None  # the logical table, when the message tells it


@dataclass
class RedriveReport:
    via: dict[str, str] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(e.status == status for e in self.entries)

    @property
    def clean(self) -> bool:
        return all(e.status in ("redriven", "deleted", "listed", "skipped") for e in self.entries)


# -- reading a range again -------------------------------------------------------------------


def _in_range(sequence: str, end: str) -> bool:
    return int(sequence) <= int(end)


def read_dynamodb_range(side: Side, info: dict[str, Any]) -> list[dict[str, Any]]:
    streams = side.client("dynamodbstreams")
    arn, start, end = info["streamArn"], info["startSequenceNumber"], info["endSequenceNumber"]
    try:
        iterator = streams.get_shard_iterator(
            StreamArn=arn,
            ShardId=info["shardId"],
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=start,
        )["ShardIterator"]
        records: list[dict[str, Any]] = []
        empty = 0
        while iterator:
            response = streams.get_records(ShardIterator=iterator, Limit=1000)
            page = response.get("Records", [])
            for raw in page:
                if not _in_range(raw["dynamodb"]["SequenceNumber"], end):
                    return records
                records.append(dynamodb_event_record(raw, stream_arn=arn, region=side.region))
            if records and records[-1]["dynamodb"]["SequenceNumber"] == end:
                return records
            empty = 0 if page else empty + 1
            if empty >= EMPTY_READS_AT_TIP:
                return records
            iterator = response.get("NextShardIterator")
        return records
    except ClientError as error:
        if error_code(error) in GONE_CODES:
            raise RangeGone(describe(error)) from None
        raise


def read_kinesis_range(side: Side, info: dict[str, Any], role_arn: str) -> list[dict[str, Any]]:
    kinesis = side.client("kinesis")
    arn, start, end = info["streamArn"], info["startSequenceNumber"], info["endSequenceNumber"]
    name = arn.split(":", 5)[5].split("/", 1)[1]
    try:
        iterator = kinesis.get_shard_iterator(
            StreamName=name,
            ShardId=info["shardId"],
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber=start,
        )["ShardIterator"]
        records: list[dict[str, Any]] = []
        empty = 0
        while iterator:
            response = kinesis.get_records(ShardIterator=iterator, Limit=1000)
            page = response.get("Records", [])
            for raw in page:
                if not _in_range(raw["SequenceNumber"], end):
                    return records
                records.append(
                    kinesis_event_record(
                        raw,
                        shard_id=info["shardId"],
                        stream_arn=arn,
                        region=side.region,
                        function_role_arn=role_arn,
                    )
                )
            if records and records[-1]["kinesis"]["sequenceNumber"] == end:
                return records
            empty = 0 if page else empty + 1
            if empty >= EMPTY_READS_AT_TIP or (not page and response.get("MillisBehindLatest") == 0):
                return records
            iterator = response.get("NextShardIterator")
        return records
    except ClientError as error:
        if error_code(error) in GONE_CODES:
            raise RangeGone(describe(error)) from None
        raise


# -- processing it again ---------------------------------------------------------------------


class Processor:
    """Re-processes one batch on one side, by Lambda Invoke or in-process with the engine."""

    def __init__(self, side: Side, via: str) -> None:
        self.side = side
        self.via = via
        self._configs: dict[str, dict[str, Any]] = {}

    def function_config(self, function: str) -> dict[str, Any]:
        if function not in self._configs:
            with aws_errors(f"{self.side.name} Lambda"):
                self._configs[function] = self.side.client("lambda").get_function_configuration(
                    FunctionName=function
                )
        return self._configs[function]

    def environment(self, function: str) -> dict[str, str]:
        variables = dict(self.function_config(function).get("Environment", {}).get("Variables", {}))
        variables.setdefault("AWS_REGION", self.side.region)
        return variables

    def process(self, function: str, is_dynamodb: bool, records: list[dict[str, Any]]) -> str | None:
        """None on success, else why the batch failed again."""
        if self.via == "invoke":
            return self._invoke(function, records)
        if is_dynamodb:
            return self._forward(function, records)
        return self._replicate(function, records)

    def _invoke(self, function: str, records: list[dict[str, Any]]) -> str | None:
        with aws_errors(f"{self.side.name} Lambda"):
            response = self.side.client("lambda").invoke(
                FunctionName=function,
                InvocationType="RequestResponse",
                Payload=json.dumps({"Records": records}),
            )
        payload = response["Payload"].read()
        if response.get("FunctionError"):
            return f"the function failed ({response['FunctionError']}): {payload[:300]!r}"
        try:
            failures = (json.loads(payload or b"{}") or {}).get("batchItemFailures") or []
        except (json.JSONDecodeError, AttributeError):
            return f"unexpected function response {payload[:200]!r}"
        if failures:
            return f"{len(failures)} record(s) failed again, first at {failures[0].get('itemIdentifier')}"
        return None

    def _forward(self, function: str, records: list[dict[str, Any]]) -> str | None:
        with aws_errors(f"{self.side.name} Parameter Store"):  # the table map (TABLES_PARAMETER_PATH)
            settings = ForwarderSettings.from_env(self.environment(function), self.side.client("ssm"))
        dynamodb, sqs = self.side.client("dynamodb"), self.side.client("sqs")
        session = PeerSession(settings, self.side.client("secretsmanager"))
        deadline = time.monotonic() + REDRIVE_DEADLINE_SECONDS
        sender = KinesisSender(
            session, settings.peer_stream_name, backoff_factory=lambda: Backoff(deadline=deadline)
        )
        forwarders = {
            name: Forwarder(settings, TableWriter(dynamodb, table.table), sender, table=table, sqs=sqs)
            for name, table in settings.tables.items()
        }
        batch = forward_batch(settings, forwarders, records)
        if batch.first_failure is None:
            return None
        return f"forwarding failed again from record {batch.first_failure} (see the log above)"

    def _replicate(self, function: str, records: list[dict[str, Any]]) -> str | None:
        with aws_errors(f"{self.side.name} Parameter Store"):
            settings = ReplicatorSettings.from_env(self.environment(function), self.side.client("ssm"))
        dynamodb = self.side.client("dynamodb")
        writers = {name: TableWriter(dynamodb, table.table) for name, table in settings.tables.items()}
        report = Replicator(settings, writers, self.side.client("sqs")).process(records)
        if not report.failed:
            return None
        return f"{len(report.failed)} record(s) failed again"


def describe_range(info: dict[str, Any]) -> str:
    first, last = info.get("startSequenceNumber"), info.get("endSequenceNumber")
    return f"{info.get('streamArn')} {info.get('shardId')} {first}..{last}"


def _function_for(side: Side, document: dict[str, Any], is_dynamodb: bool) -> str:
    arn = str(document.get("requestContext", {}).get("functionArn") or "")
    if arn:
        parts = arn.split(":")
        return parts[6] if len(parts) > 6 else arn
    return side.output("forwarder_function_name" if is_dynamodb else "replicator_function_name")


def redrive_batch(side: Side, processor: Processor, document: dict[str, Any], entry: Entry) -> None:
    is_dynamodb = "DDBStreamBatchInfo" in document
    info = document["DDBStreamBatchInfo" if is_dynamodb else "KinesisBatchInfo"]
    entry.source = describe_range(info)
    function = _function_for(side, document, is_dynamodb)
    try:
        with aws_errors(f"{side.name} stream"):
            if is_dynamodb:
                records = read_dynamodb_range(side, info)
            else:
                role = (
                    str(processor.function_config(function).get("Role", ""))
                    if processor.via == "invoke"
                    else ""
                )
                records = read_kinesis_range(side, info, role)
    except RangeGone as gone:
        entry.status = "expired"
        entry.detail = (
            f"the stream no longer holds this range ({gone}): run `ddb-replication verify --repair` to bring "
            "the tables together"
        )
        return
    entry.records = len(records)
    if not records:
        entry.status = "expired"
        entry.detail = "no records left in this range: run `ddb-replication verify --repair`"
        return
    expected = info.get("batchSize")
    if isinstance(expected, int) and len(records) < expected:
        entry.detail = f"only {len(records)} of {expected} records are still in the stream; "
    failure = processor.process(function, is_dynamodb, records)
    if failure:
        entry.status = "failed"
        entry.detail += failure
    else:
        entry.status = "redriven"
        entry.detail += f"{len(records)} record(s) processed again by {function} ({processor.via})"


def _classify(body: str) -> tuple[str, dict[str, Any] | None]:
    try:
        document = json.loads(body)
    except json.JSONDecodeError:
        return "unknown", None
    if not isinstance(document, dict):
        return "unknown", None
    if document.get("kind") == POISON_MESSAGE_KIND:
        return "poison", document
    if any(isinstance(document.get(name), dict) for name in BATCH_KEYS):
        return "batch", document
    return "unknown", document


def redrive_side(
    side: Side,
    via: str,
    report: RedriveReport,
    *,
    delete_poison: bool,
    dry_run: bool,
    visibility_timeout: int,
    max_messages: int,
    show_progress: bool,
    table: str | None = None,
) -> None:
    """Redrive ``side``'s failure queue; ``table``: only the entries known to be of that logical table."""
    sqs = side.client("sqs")
    queue = side.output("failure_queue_url")
    processor = Processor(side, via)
    report.via[side.label] = via
    seen: set[str] = set()
    kept: list[str] = []
    with Bar(f"redrive {side.label}", enabled=show_progress, unit="msg") as bar:
        while len(seen) < max_messages:
            with aws_errors(f"{side.name} SQS {queue}"):
                messages = sqs.receive_message(
                    QueueUrl=queue,
                    MaxNumberOfMessages=10,
                    VisibilityTimeout=visibility_timeout,
                    WaitTimeSeconds=0,
                    AttributeNames=["All"],
                ).get("Messages", [])
            fresh = [m for m in messages if m["MessageId"] not in seen]
            if not fresh:
                break
            for message in fresh:
                seen.add(message["MessageId"])
                kind, document = _classify(message.get("Body", ""))
                entry = Entry(side.label, message["MessageId"], kind, "left")
                entry.table = _table_of(side, document)
                report.entries.append(entry)
                if table is not None and entry.table != table:
                    entry.status = "skipped"
                    entry.detail = f"not known to be of table {table}: left for a run without --table"
                elif kind == "poison" and document is not None:
                    entry.source = f"{document.get('eventSourceARN')} {document.get('sequenceNumber')}"
                    entry.detail = str(document.get("reason", ""))
                    entry.status = "deleted" if delete_poison and not dry_run else "left"
                elif kind == "batch" and document is not None:
                    if dry_run:
                        entry.status = "listed"
                        info = document.get("DDBStreamBatchInfo") or document.get("KinesisBatchInfo")
                        entry.source = describe_range(info)
                    else:
                        try:
                            redrive_batch(side, processor, document, entry)
                        except ConfigError as error:  # this message is malformed: the others may not be
                            entry.status, entry.detail = "failed", str(error)
                else:
                    entry.detail = "not a Lambda invocation record nor a poison message: inspect it by hand"
                if entry.status in ("redriven", "deleted"):
                    with aws_errors(f"{side.name} SQS {queue}"):
                        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
                else:
                    kept.append(message["ReceiptHandle"])
                bar.update(1)
    # What stays is made visible again at once (not before: this run would receive it again).
    for handle in kept:
        with aws_errors(f"{side.name} SQS {queue}"):
            sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=handle, VisibilityTimeout=0)


def _table_of(side: Side, document: dict[str, Any] | None) -> str | None:
    """The logical table a failure message is about, when it says: a table stream's batch (its
    stream), a refusal of the replicator (``table``) or a stream record the forwarder could not
    replicate (its stream). An inbox batch mixes tables: None."""
    if not document:
        return None
    if isinstance(document.get("table"), str):
        return document["table"]
    info = document.get("DDBStreamBatchInfo")
    stream = info.get("streamArn") if isinstance(info, dict) else document.get("eventSourceARN")
    if isinstance(stream, str) and ":dynamodb:" in stream:
        return side.table_of_stream(stream)
    return None


def default_via(side: Side) -> str:
    return "local" if side.endpoint_url else "invoke"


def render(report: RedriveReport) -> str:
    if not report.entries:
        return "the failure queues are empty"
    lines = []
    for e in report.entries:
        table = f" table {e.table}" if e.table else ""
        lines.append(f"{e.side} {e.kind:<7} {e.status:<9} {e.message_id}{table}  {e.source}")
        if e.detail:
            lines.append(f"    {e.detail}")
    lines.append(
        ", ".join(
            f"{status} {report.count(status)}"
            for status in ("redriven", "failed", "expired", "left", "deleted", "skipped")
        )
    )
    return "\n".join(lines)


__all__ = ["OpsError", "RedriveReport", "default_via", "redrive_side", "render"]
