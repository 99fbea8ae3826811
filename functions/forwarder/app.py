"""Forwarder Lambda: DynamoDB stream batch -> the peer partition's inbox (Kinesis)."""

from __future__ import annotations

import os
import time
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from replication import conflicts
from replication.backoff import Backoff
from replication.classify import Action, StampReason
from replication.forwarding import Forwarder, ForwardReport
from replication.kinesis_sender import DEADLINE_MARGIN_SECONDS, KinesisSender
from replication.peer_session import PeerSession
from replication.routing import forward_batch
from replication.settings import ConflictLogSettings, ForwarderSettings
from replication.table_writer import TableWriter
from replication.telemetry import MetricUnit, logger, metrics, table_metrics

# Stamped writes counted by why they needed a stamp (each one also counts in ChangesStamped).
STAMP_REASON_METRICS = {
    "InvalidVersionsStamped": StampReason.MALFORMED,
    "VersionsAheadStamped": StampReason.AHEAD,
    "ReservedAttributesStamped": StampReason.RESERVED,
}

# Lambda sets AWS_REGION; boto3 on its own reads only AWS_DEFAULT_REGION.
REGION = os.environ.get("AWS_REGION") or None
settings = ForwarderSettings.from_env()
conflict_log = ConflictLogSettings.from_env()
dynamodb = boto3.client("dynamodb", region_name=REGION)
table_writers = {name: TableWriter(dynamodb, table.table) for name, table in settings.tables.items()}
peer_session = PeerSession(settings, boto3.client("secretsmanager", region_name=REGION))
failure_queue = boto3.client("sqs", region_name=REGION) if settings.failure_queue_url else None


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The batch is handled as a whole (many changes go into one Kinesis record), so the partial
    # batch response is built here rather than per record: Lambda retries from the first failure.
    records = event.get("Records", [])
    deadline = _deadline(context)
    sender = KinesisSender(
        peer_session, settings.peer_stream_name, backoff_factory=lambda: Backoff(deadline=deadline)
    )
    forwarders = {
        name: Forwarder(settings, table_writers[name], sender, table=table, sqs=failure_queue)
        for name, table in settings.tables.items()
    }
    batch = forward_batch(settings, forwarders, records)
    for run in batch.runs:
        _table_metrics(run.name, run.report)
    # Stamps given and remembered deletes that won: counted per table and kind, a sample logged.
    conflicts.record([(run.name, c) for run in batch.runs for c in run.report.conflicts], conflict_log)
    # The endpoint's totals, which its alarms watch (a stream unknown to TABLES counts here only).
    configuration = batch.unknown_streams + sum(r.report.configuration_errors for r in batch.runs)
    metrics.add_metric("ConfigurationErrors", MetricUnit.Count, configuration)
    metrics.add_metric(
        "TransientErrors", MetricUnit.Count, sum(r.report.transient_errors for r in batch.runs)
    )
    for run in batch.runs:
        report = run.report
        logger.info(
            "batch forwarded",
            extra={
                "table": run.name,
                "stream_records": run.stop - run.start,
                "changes_sent": report.changes_sent,
                "kinesis_records": report.records_sent,
                "bytes_sent": report.bytes_sent,
                "refused": report.refused,
                "configuration_errors": report.configuration_errors,
                "transient_errors": report.transient_errors,
                "first_failure": None if report.first_failure is None else run.start + report.first_failure,
            },
        )
    if batch.first_failure is None:
        return {"batchItemFailures": []}
    sequence_number = records[batch.first_failure]["dynamodb"]["SequenceNumber"]
    return {"batchItemFailures": [{"itemIdentifier": sequence_number}]}


def _table_metrics(name: str, report: ForwardReport) -> None:
    """One table's share of the batch, with the ``table`` dimension."""
    table = table_metrics(name)
    table.add_metric("ChangesForwarded", MetricUnit.Count, report.changes_sent)
    table.add_metric("EchoesSuppressed", MetricUnit.Count, report.counts[Action.ECHO])
    table.add_metric("ChangesStamped", MetricUnit.Count, report.stamped)
    for metric, reason in STAMP_REASON_METRICS.items():
        table.add_metric(metric, MetricUnit.Count, report.stamped_by_reason[reason])
    table.add_metric("ItemsTooLargeToVersion", MetricUnit.Count, report.too_large)
    table.add_metric("TtlDeletesSkipped", MetricUnit.Count, report.counts[Action.TTL])
    table.add_metric("RecordsSent", MetricUnit.Count, report.records_sent)
    table.add_metric("BytesSent", MetricUnit.Bytes, report.bytes_sent)
    table.add_metric("ChangesRefused", MetricUnit.Count, report.refused)
    # What the table's residency rules kept here (docs/residency.md).
    table.add_metric("ResidencyFiltered", MetricUnit.Count, report.residency.filtered)
    table.add_metric("ResidencyRemovals", MetricUnit.Count, report.residency.removals)
    table.add_metric("ResidencyFilterErrors", MetricUnit.Count, report.residency.filter_errors)
    table.add_metric("ConfigurationErrors", MetricUnit.Count, report.configuration_errors)
    table.add_metric("TransientErrors", MetricUnit.Count, report.transient_errors)
    table.flush_metrics()


def _deadline(context: LambdaContext) -> float:
    remaining = context.get_remaining_time_in_millis() / 1000.0
    # Lambda's deadline less the margin bounds the retries of one invocation.
    return time.monotonic() + max(1.0, remaining - DEADLINE_MARGIN_SECONDS)
