"""Metrics into each local partition's CloudWatch, as AWS would put them there.

Lambda publishes ``AWS/Lambda`` metrics per function (Invocations, Errors, Duration, IteratorAge),
and CloudWatch Logs turns the functions' EMF lines into metrics of their own namespace. Doing the
same locally makes the Terraform-made alarms and dashboard, and ``ddb-replication status``, read
real figures. Datapoints are queued and sent in the background, so no poller ever waits for them.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

FLUSH_INTERVAL_SECONDS = 1.0
MAX_DATA_PER_REQUEST = 500
MAX_VALUES_PER_DATUM = 150


def emf_datums(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(namespace, MetricData entry) for every metric of one EMF document."""
    out: list[tuple[str, dict[str, Any]]] = []
    meta = document.get("_aws") or {}
    timestamp = datetime.fromtimestamp(float(meta.get("Timestamp", 0)) / 1000, tz=UTC)
    for directive in meta.get("CloudWatchMetrics") or []:
        namespace = directive.get("Namespace") or "aws-embedded-metrics"
        dimension_sets = directive.get("Dimensions") or [[]]
        for metric in directive.get("Metrics") or []:
            name = metric.get("Name")
            raw = document.get(name)
            values = [
                float(v) for v in (raw if isinstance(raw, list) else [raw]) if isinstance(v, int | float)
            ]
            if not name or not values:
                continue
            for dimension_names in dimension_sets:
                dimensions = [
                    {"Name": d, "Value": str(document[d])} for d in dimension_names if d in document
                ]
                for start in range(0, len(values), MAX_VALUES_PER_DATUM):
                    datum: dict[str, Any] = {
                        "MetricName": name,
                        "Dimensions": dimensions,
                        "Timestamp": timestamp,
                        "Values": values[start : start + MAX_VALUES_PER_DATUM],
                    }
                    if metric.get("Unit"):
                        datum["Unit"] = metric["Unit"]
                    out.append((namespace, datum))
    return out


def invocation_datums(
    function_name: str, *, duration_ms: float, error: bool, iterator_age_ms: float | None, at: float
) -> list[tuple[str, dict[str, Any]]]:
    """What Lambda publishes for one invocation by a stream event source mapping."""
    timestamp = datetime.fromtimestamp(at, tz=UTC)
    dimensions = [{"Name": "FunctionName", "Value": function_name}]

    def datum(name: str, value: float, unit: str) -> tuple[str, dict[str, Any]]:
        return (
            "AWS/Lambda",
            {
                "MetricName": name,
                "Dimensions": dimensions,
                "Timestamp": timestamp,
                "Value": value,
                "Unit": unit,
            },
        )

    out = [
        datum("Invocations", 1, "Count"),
        datum("Errors", 1 if error else 0, "Count"),
        datum("Duration", round(duration_ms, 2), "Milliseconds"),
    ]
    if iterator_age_ms is not None:
        out.append(datum("IteratorAge", round(max(0.0, iterator_age_ms)), "Milliseconds"))
    return out


class MetricsPublisher:
    """PutMetricData in the background for one partition."""

    def __init__(self, cloudwatch: Any) -> None:
        self._cloudwatch = cloudwatch
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, daemon=True, name="metrics")
        self._stopped = False
        self.sent = 0
        self.failed = 0
        self._thread.start()

    def add(self, datums: list[tuple[str, dict[str, Any]]]) -> None:
        if not self._stopped:
            for item in datums:
                self._queue.put(item)

    def _run(self) -> None:
        stop = False
        while not stop:
            pending: list[tuple[str, dict[str, Any]]] = []
            try:
                item = self._queue.get(timeout=FLUSH_INTERVAL_SECONDS)
                while True:
                    if item is None:
                        stop = True
                        break
                    pending.append(item)
                    item = self._queue.get_nowait()
            except queue.Empty:
                pass
            if pending:
                self._send(pending)

    def _send(self, pending: list[tuple[str, dict[str, Any]]]) -> None:
        by_namespace: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for namespace, datum in pending:
            by_namespace[namespace].append(datum)
        for namespace, data in by_namespace.items():
            for start in range(0, len(data), MAX_DATA_PER_REQUEST):
                chunk = data[start : start + MAX_DATA_PER_REQUEST]
                try:
                    self._cloudwatch.put_metric_data(Namespace=namespace, MetricData=chunk)
                    self.sent += len(chunk)
                except Exception as error:
                    self.failed += len(chunk)
                    log.warning("PutMetricData to %s failed: %s", namespace, error)

    def stop(self) -> None:
        self._stopped = True
        self._queue.put(None)
        self._thread.join(timeout=10)
