"""EMF lines and invocations turned into CloudWatch metrics, as AWS does."""

from __future__ import annotations

from datetime import UTC, datetime

from replication_ops.local.cloudwatch import emf_datums, invocation_datums


def test_emf_documents_become_metric_data() -> None:
    document = {
        "_aws": {
            "Timestamp": 1795735531681,
            "CloudWatchMetrics": [
                {
                    "Namespace": "DynamoDBReplication",
                    "Dimensions": [["service"]],
                    "Metrics": [
                        {"Name": "ChangesApplied", "Unit": "Count"},
                        {"Name": "ReplicationLatency", "Unit": "Milliseconds"},
                        {"Name": "Missing", "Unit": "Count"},
                    ],
                }
            ],
        },
        "service": "ddbrep-cn-replicator",
        "ChangesApplied": [12.0],
        "ReplicationLatency": [float(n) for n in range(200)],
    }
    datums = emf_datums(document)
    assert {namespace for namespace, _ in datums} == {"DynamoDBReplication"}
    applied = [d for _, d in datums if d["MetricName"] == "ChangesApplied"]
    assert applied == [
        {
            "MetricName": "ChangesApplied",
            "Dimensions": [{"Name": "service", "Value": "ddbrep-cn-replicator"}],
            "Timestamp": datetime.fromtimestamp(1795735531.681, tz=UTC),
            "Values": [12.0],
            "Unit": "Count",
        }
    ]
    latency = [d for _, d in datums if d["MetricName"] == "ReplicationLatency"]
    assert sum(len(d["Values"]) for d in latency) == 200 and all(len(d["Values"]) <= 150 for d in latency)
    assert not [d for _, d in datums if d["MetricName"] == "Missing"]
    assert emf_datums({"_aws": {}}) == []


def test_invocations_become_lambda_metrics() -> None:
    datums = {
        d["MetricName"]: d
        for namespace, d in invocation_datums(
            "f", duration_ms=12.345, error=True, iterator_age_ms=1500.4, at=0.0
        )
        if namespace == "AWS/Lambda"
    }
    assert datums["Invocations"]["Value"] == 1 and datums["Errors"]["Value"] == 1
    assert datums["Duration"]["Value"] == 12.35 and datums["IteratorAge"]["Value"] == 1500
    assert datums["Invocations"]["Dimensions"] == [{"Name": "FunctionName", "Value": "f"}]
    assert "IteratorAge" not in {
        d["MetricName"]
        for _, d in invocation_datums("f", duration_ms=1, error=False, iterator_age_ms=None, at=0)
    }
