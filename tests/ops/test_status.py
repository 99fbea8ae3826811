"""status: per side mappings, iterator age, failure queue depth, alarms in ALARM, latency."""

from __future__ import annotations

import datetime as dt

from replication_ops.errors import EXIT_BAD_INPUT, EXIT_DIFFERENCES, EXIT_OK

from .fakes import FakeSide


def _mappings(side: FakeSide) -> None:
    lam = side.client("lambda")
    lam.create_event_source_mapping(
        FunctionName=side.outputs["forwarder_function_name"],
        EventSourceArn=side.outputs["table_stream_arns"]["profiles"],
        StartingPosition="TRIM_HORIZON",
    )
    lam.create_event_source_mapping(
        FunctionName=side.outputs["replicator_function_name"],
        EventSourceArn=side.outputs["inbox_stream_arn"],
        StartingPosition="TRIM_HORIZON",
    )


def _metrics(side: FakeSide) -> None:
    now = dt.datetime.now(dt.UTC)
    cloudwatch = side.client("cloudwatch")
    cloudwatch.put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": "IteratorAge",
                "Dimensions": [{"Name": "FunctionName", "Value": side.outputs["forwarder_function_name"]}],
                "Timestamp": now,
                "Value": 1200.0,
                "Unit": "Milliseconds",
            },
        ],
    )
    cloudwatch.put_metric_data(
        Namespace="DynamoDBReplication",
        MetricData=[
            {
                "MetricName": "ReplicationLatency",
                "Dimensions": [
                    {"Name": "service", "Value": side.outputs["replicator_function_name"]},
                    {"Name": "table", "Value": "profiles"},
                ],
                "Timestamp": now,
                "Value": value,
                "Unit": "Milliseconds",
            }
            for value in (400.0, 800.0)
        ],
    )


def _lambda_errors_alarm(cloudwatch, name: str) -> None:
    """An alarm on a function's Errors, as the module creates them (its state set by each test)."""
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="Errors",
        Namespace="AWS/Lambda",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )


def test_status_reports_each_side_on_one_screen(deployment, run):
    for side in (deployment.cn, deployment.us):
        _mappings(side)
        _metrics(side)
    result = run("status", *deployment.args(), "--json")
    cn = result.json["sides"][0]
    assert cn["side"] == "cn"
    assert {m["function"] for m in cn["mappings"]} == {"ddbrep-cn-forwarder", "ddbrep-cn-replicator"}
    assert {m["state"] for m in cn["mappings"]} == {"Enabled"}
    forwarder = next(m for m in cn["mappings"] if m["function"] == "ddbrep-cn-forwarder")
    assert forwarder["iterator_age_ms"] == 1200.0
    assert cn["latency_ms"] == {"profiles": {"average": 600.0, "maximum": 800.0}}
    assert forwarder["table"] == "profiles"
    assert cn["failure_queue_depth"] == 0
    text = run("status", *deployment.args())
    assert "cn (cn-north-1)" in text.out and "us (us-east-1)" in text.out
    assert "600 ms" in text.out


def test_a_failure_message_and_an_alarm_make_the_side_need_attention(deployment, run):
    for side in (deployment.cn, deployment.us):
        _mappings(side)
    us = deployment.us
    us.client("sqs").send_message(QueueUrl=us.outputs["failure_queue_url"], MessageBody="{}")
    cloudwatch = us.client("cloudwatch")
    for name in ("ddbrep-us-replicator-errors", "someone-else"):  # only the first is the pair's own
        _lambda_errors_alarm(cloudwatch, name)
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test")
    result = run("status", *deployment.args(), "--json")
    assert result.code == EXIT_DIFFERENCES
    us_status = result.json["sides"][1]
    assert us_status["failure_queue_depth"] == 1
    assert us_status["alarms_in_alarm"] == ["ddbrep-us-replicator-errors"]
    assert result.json["sides"][0]["problems"] == []
    assert result.json["healthy"] is False


def test_a_function_without_a_mapping_is_a_problem(deployment, run):
    result = run("status", *deployment.args(), "--json")
    assert result.code == EXIT_DIFFERENCES
    assert "ddbrep-cn-forwarder has no event source mapping" in result.json["sides"][0]["problems"]


def test_a_table_whose_stream_no_mapping_reads_is_a_problem(deployment, run):
    """The forwarder has a mapping, but on a stream of a table outside the map: the map's table is
    not forwarded (each table's stream needs its own mapping)."""
    _mappings(deployment.us)
    other = deployment.cn.client("dynamodb").create_table(
        TableName="not-in-the-map",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    lam = deployment.cn.client("lambda")
    lam.create_event_source_mapping(
        FunctionName=deployment.cn.outputs["forwarder_function_name"],
        EventSourceArn=other["TableDescription"]["LatestStreamArn"],
        StartingPosition="TRIM_HORIZON",
    )
    lam.create_event_source_mapping(
        FunctionName=deployment.cn.outputs["replicator_function_name"],
        EventSourceArn=deployment.cn.outputs["inbox_stream_arn"],
        StartingPosition="TRIM_HORIZON",
    )
    result = run("status", *deployment.args(), "--json")
    assert result.code == EXIT_DIFFERENCES
    assert result.json["sides"][0]["problems"] == ["table profiles: no event source mapping reads its stream"]
    assert result.json["sides"][1]["problems"] == []


def test_an_alarm_prefix_that_names_no_alarm_is_a_typo_not_a_healthy_pair(deployment, run):
    for side in (deployment.cn, deployment.us):
        _mappings(side)
    _lambda_errors_alarm(deployment.us.client("cloudwatch"), "ddbrep-us-replicator-errors")
    typo = run("status", *deployment.args(), "--alarm-prefix", "dbrep-")
    assert typo.code == EXIT_BAD_INPUT
    assert "no alarm name on either side starts with 'dbrep-': check --alarm-prefix" in typo.err
    assert "'ddbrep-cn-', 'ddbrep-us-'" in typo.err
    assert run("status", *deployment.args(), "--alarm-prefix", "ddbrep-").code == EXIT_OK


def _put(
    side: FakeSide, namespace: str, metric: str, dimensions: dict[str, str], values, *, when=None
) -> None:
    side.client("cloudwatch").put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                "Timestamp": when or dt.datetime.now(dt.UTC),
                "Value": value,
                "Unit": "Milliseconds",
            }
            for value in values
        ],
    )


def _distribution(side: FakeSide, metric: str, dimensions: dict[str, str], values, counts) -> None:
    """Values with their counts in one datum, as an EMF line's array reaches CloudWatch."""
    side.client("cloudwatch").put_metric_data(
        Namespace="DynamoDBReplication",
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                "Timestamp": dt.datetime.now(dt.UTC),
                "Values": list(values),
                "Counts": list(counts),
                "Unit": "Milliseconds",
            }
        ],
    )


def test_status_gives_each_stage_of_a_tables_lag_at_p50_and_p99(deployment, run):
    """The replicator's per-stage metrics (replication.lag) as CloudWatch's percentiles over 15
    minutes. Each percentile falls inside a run of equal values (p50 of 600 x3, 1,000 x2 is 600 ms,
    p99 1,000 ms), so it is the same whatever a definition does between two values."""
    for side in (deployment.cn, deployment.us):
        _mappings(side)
    us = deployment.us
    table = {"service": us.outputs["replicator_function_name"], "table": "profiles"}
    _distribution(us, "StreamToForwarderLatency", table, (600.0, 1000.0), (3, 2))
    _distribution(us, "ForwarderToInboxLatency", table, (100.0,), (1,))
    _distribution(us, "InboxToApplyLatency", table, (300.0, 700.0), (97, 3))
    _distribution(us, "ReplicationLatency", table, (1000.0, 1400.0, 9000.0), (60, 39, 2))
    result = run("status", *deployment.args(), "--json")
    stages = result.json["sides"][1]["lag_stages_ms"]["profiles"]
    assert stages == {
        "stream_to_forwarder": {"p50": 600.0, "p99": 1000.0},
        "forwarder_to_inbox": {"p50": 100.0, "p99": 100.0},
        "inbox_to_apply": {"p50": 300.0, "p99": 700.0},
        "end_to_end": {"p50": 1000.0, "p99": 9000.0},
    }
    assert result.json["sides"][0]["lag_stages_ms"]["profiles"]["end_to_end"] == {"p50": None, "p99": None}
    text = run("status", *deployment.args()).out
    assert "replication latency (15 min): p50 1,000 ms, p99 9,000 ms" in text
    assert (
        "by stage (p50 / p99): stream -> forwarder 600 ms / 1,000 ms, forwarder -> inbox 100 ms / 100 ms, "
        "inbox -> apply 300 ms / 700 ms"
    ) in text


def test_status_percentiles_leave_out_values_older_than_15_minutes(deployment, run):
    for side in (deployment.cn, deployment.us):
        _mappings(side)
    us = deployment.us
    table = {"service": us.outputs["replicator_function_name"], "table": "profiles"}
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
    _put(us, "DynamoDBReplication", "ReplicationLatency", table, (50_000.0,), when=old)
    _put(us, "DynamoDBReplication", "ReplicationLatency", table, (800.0,))
    result = run("status", *deployment.args(), "--json")
    assert result.json["sides"][1]["lag_stages_ms"]["profiles"]["end_to_end"] == {"p50": 800.0, "p99": 800.0}


def test_behind_is_the_peer_forwarders_iterator_age_now_plus_this_replicators(deployment, run):
    """Changes from cn to us wait in cn's table stream (cn forwarder) and in us's inbox (us
    replicator); an older minute's higher age no longer counts."""
    for side in (deployment.cn, deployment.us):
        _mappings(side)
    now = dt.datetime.now(dt.UTC)
    forwarder = {"FunctionName": deployment.cn.outputs["forwarder_function_name"]}
    replicator = {"FunctionName": deployment.us.outputs["replicator_function_name"]}
    _put(deployment.cn, "AWS/Lambda", "IteratorAge", forwarder, (9000.0,), when=now - dt.timedelta(minutes=5))
    _put(deployment.cn, "AWS/Lambda", "IteratorAge", forwarder, (700.0, 1200.0), when=now)
    _put(deployment.us, "AWS/Lambda", "IteratorAge", replicator, (300.0,), when=now)
    result = run("status", *deployment.args(), "--json")
    cn, us = result.json["sides"]
    assert us["behind_ms"] == 1500.0
    assert cn["behind_ms"] is None  # nothing reported on the way from us to cn
    assert "behind (the peer's changes to this side, now): 1,500 ms" in run("status", *deployment.args()).out
