"""Module-level Logger and Metrics, shared by both functions (Powertools).

Item contents are never logged: they may be personal data. Log keys, counts and error codes.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = "DynamoDBReplication"

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "ddb-replication"
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE, service=SERVICE)

__all__ = ["NAMESPACE", "MetricUnit", "logger", "metrics"]
