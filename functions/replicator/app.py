"""Replicator Lambda: inbox (Kinesis) batch from the peer partition -> the local table."""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from replication import conflicts, lag
from replication.applying import Replicator, TableApplyReport
from replication.errors import ReservedAttributeInChange, VersionAheadOfClock
from replication.settings import ConflictLogSettings, ReplicatorSettings
from replication.table_writer import Outcome, TableWriter
from replication.telemetry import MetricUnit, logger, metrics, table_metrics

# EMF takes at most 100 values per metric in one document.
MAX_LATENCY_SAMPLES = 100

# Lambda sets AWS_REGION; boto3 on its own reads only AWS_DEFAULT_REGION.
REGION = os.environ.get("AWS_REGION") or None
settings = ReplicatorSettings.from_env()
conflict_log = ConflictLogSettings.from_env()
dynamodb = boto3.client("dynamodb", region_name=REGION)
replicator = Replicator(
    settings,
    {name: TableWriter(dynamodb, table.table) for name, table in settings.tables.items()},
    boto3.client("sqs", region_name=REGION),
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Changes are coalesced per key across the whole batch, so the partial batch response is
    # built here: every record holding a change that could not be applied is reported.
    records = event.get("Records", [])
    report = replicator.process(records)

    for name, tally in report.tables.items():
        _table_metrics(name, tally)
    # Changes that lost to a newer version or delete: counted per table and kind, a sample logged.
    conflicts.record(
        [(name, c) for name, tally in report.tables.items() for c in tally.conflicts], conflict_log
    )
    # The endpoint's own: records of no table, and the totals its alarms watch.
    metrics.add_metric("PoisonMessages", MetricUnit.Count, report.poison)
    metrics.add_metric("ProbesReceived", MetricUnit.Count, report.probes)
    metrics.add_metric("ConfigurationErrors", MetricUnit.Count, report.configuration_errors)
    metrics.add_metric("TransientErrors", MetricUnit.Count, report.transient_errors)
    logger.info(
        "batch applied",
        extra={
            "kinesis_records": len(records),
            "changes": report.changes_received,
            "applied": report.outcomes[Outcome.APPLIED],
            "stale": report.outcomes[Outcome.STALE],
            "tombstoned": report.outcomes[Outcome.TOMBSTONED],
            "poison": report.poison,
            "refused": report.refused.total(),
            "configuration_errors": report.configuration_errors,
            "transient_errors": report.transient_errors,
            "failed_records": len(report.failed),
        },
    )
    return {
        "batchItemFailures": [
            {"itemIdentifier": records[index]["kinesis"]["sequenceNumber"]} for index in sorted(report.failed)
        ]
    }


def _table_metrics(name: str, tally: TableApplyReport) -> None:
    """One table's share of the batch, with the ``table`` dimension."""
    table = table_metrics(name)
    table.add_metric("ChangesReceived", MetricUnit.Count, tally.changes_received)
    table.add_metric("ChangesApplied", MetricUnit.Count, tally.outcomes[Outcome.APPLIED])
    table.add_metric("StaleDropped", MetricUnit.Count, tally.outcomes[Outcome.STALE])
    table.add_metric("TombstoneHits", MetricUnit.Count, tally.outcomes[Outcome.TOMBSTONED])
    # Every refused change counts in ChangesRefused; the engine's own two causes also by themselves.
    table.add_metric("ChangesRefused", MetricUnit.Count, tally.refused.total())
    table.add_metric("VersionsAheadRefused", MetricUnit.Count, tally.refused[VersionAheadOfClock.__name__])
    table.add_metric(
        "ReservedAttributesRefused", MetricUnit.Count, tally.refused[ReservedAttributeInChange.__name__]
    )
    table.add_metric("ConfigurationErrors", MetricUnit.Count, tally.configuration_errors)
    table.add_metric("TransientErrors", MetricUnit.Count, tally.transient_errors)
    # Each stage's lag and the end to end one (ReplicationLatency), milliseconds (replication.lag).
    for stage, metric in lag.METRICS.items():
        for latency in _sample(sorted(tally.stage_lags_ms.get(stage, [])), MAX_LATENCY_SAMPLES):
            table.add_metric(metric, MetricUnit.Milliseconds, latency)
    table.flush_metrics()


def _sample(values: list[float], limit: int) -> list[float]:
    """Evenly spaced samples of sorted values, always keeping the maximum."""
    if len(values) <= limit:
        return values
    step = (len(values) - 1) / (limit - 1)
    return [values[round(i * step)] for i in range(limit)]
