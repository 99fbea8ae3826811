"""Module-level Logger and Metrics, shared by both functions (Powertools).

Item contents are never logged: they may be personal data. Log keys, counts and error codes.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

NAMESPACE = "DynamoDBReplication"

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "ddb-replication"
logger = Logger(service=SERVICE)
NAMESPACE_IN_USE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE
# The endpoint's own metrics (dimension service): poison messages, probes, and the totals alarms watch.
metrics = Metrics(namespace=NAMESPACE_IN_USE, service=SERVICE)
TABLE_DIMENSION = "table"


def table_metrics(name: str) -> EphemeralMetrics:
    """Metrics of one served table: dimensions service and ``table`` (its logical name). An
    EphemeralMetrics keeps its own metrics and dimensions (Powertools, Metrics: "EphemeralMetrics ...
    does not share data across instances"), so each table's values go out in their own EMF document;
    the caller flushes it (``flush_metrics``)."""
    table = EphemeralMetrics(namespace=NAMESPACE_IN_USE, service=SERVICE)
    table.add_dimension(TABLE_DIMENSION, name)
    return table


__all__ = ["NAMESPACE", "TABLE_DIMENSION", "MetricUnit", "logger", "metrics", "table_metrics"]
