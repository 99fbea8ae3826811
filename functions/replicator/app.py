"""Replicator Lambda: inbox (Kinesis) batch from the peer partition -> the local table."""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from replication.applying import Replicator
from replication.errors import ReservedAttributeInChange, VersionAheadOfClock
from replication.settings import ReplicatorSettings
from replication.table_writer import Outcome, TableWriter
from replication.telemetry import MetricUnit, logger, metrics

# EMF takes at most 100 values per metric in one document.
MAX_LATENCY_SAMPLES = 100

# Lambda sets AWS_REGION; boto3 on its own reads only AWS_DEFAULT_REGION.
REGION = os.environ.get("AWS_REGION") or None
settings = ReplicatorSettings.from_env()
replicator = Replicator(
    settings,
    TableWriter(boto3.client("dynamodb", region_name=REGION), settings.table),
    boto3.client("sqs", region_name=REGION),
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Changes are coalesced per key across the whole batch, so the partial batch response is
    # built here: every record holding a change that could not be applied is reported.
    records = event.get("Records", [])
    report = replicator.process(records)

    metrics.add_metric("ChangesReceived", MetricUnit.Count, report.changes_received)
    metrics.add_metric("ChangesApplied", MetricUnit.Count, report.outcomes[Outcome.APPLIED])
    metrics.add_metric("StaleDropped", MetricUnit.Count, report.outcomes[Outcome.STALE])
    metrics.add_metric("TombstoneHits", MetricUnit.Count, report.outcomes[Outcome.TOMBSTONED])
    metrics.add_metric("PoisonMessages", MetricUnit.Count, report.poison)
    # Every refused change counts in ChangesRefused; the engine's own two causes also by themselves.
    metrics.add_metric("ChangesRefused", MetricUnit.Count, report.refused.total())
    metrics.add_metric("VersionsAheadRefused", MetricUnit.Count, report.refused[VersionAheadOfClock.__name__])
    metrics.add_metric(
        "ReservedAttributesRefused", MetricUnit.Count, report.refused[ReservedAttributeInChange.__name__]
    )
    metrics.add_metric("ConfigurationErrors", MetricUnit.Count, report.configuration_errors)
    metrics.add_metric("TransientErrors", MetricUnit.Count, report.transient_errors)
    metrics.add_metric("ProbesReceived", MetricUnit.Count, report.probes)
    for latency in _sample(sorted(report.latencies_ms), MAX_LATENCY_SAMPLES):
        metrics.add_metric("ReplicationLatency", MetricUnit.Milliseconds, latency)
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


def _sample(values: list[float], limit: int) -> list[float]:
    """Evenly spaced samples of sorted values, always keeping the maximum."""
    if len(values) <= limit:
        return values
    step = (len(values) - 1) / (limit - 1)
    return [values[round(i * step)] for i in range(limit)]
