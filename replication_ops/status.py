"""Status: is the pair healthy? Per side: the event source mappings (state, last processing result),
iterator age (CloudWatch, the last 15 minutes), failure queue depth, alarms in ALARM and recent
replication latency (namespace DynamoDBReplication, dimension ``service`` = the replicator's name)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from replication_ops.errors import ConfigError, aws_errors
from replication_ops.sides import Pair, Side

WINDOW = dt.timedelta(minutes=15)
PERIOD_SECONDS = 60
METRICS_NAMESPACE = "DynamoDBReplication"
HEALTHY_RESULTS = {"OK", "No records processed"}


@dataclass
class MappingStatus:
    function: str
    source: str
    state: str
    last_result: str
    iterator_age_ms: float | None = None


@dataclass
class SideStatus:
    side: str
    region: str
    mappings: list[MappingStatus] = field(default_factory=list)
    failure_queue_depth: int | None = None
    failure_queue_in_flight: int | None = None
    alarms_in_alarm: list[str] = field(default_factory=list)
    latency_ms: dict[str, float | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _statistic(
    side: Side, *, namespace: str, metric: str, dimensions: dict[str, str], statistic: str, now: dt.datetime
) -> float | None:
    with aws_errors(f"{side.name} CloudWatch"):
        points = side.client("cloudwatch").get_metric_statistics(
            Namespace=namespace,
            MetricName=metric,
            Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
            StartTime=now - WINDOW,
            EndTime=now + dt.timedelta(seconds=PERIOD_SECONDS),  # the current, partial minute too
            Period=PERIOD_SECONDS,
            Statistics=[statistic],
        )["Datapoints"]
    values = [p[statistic] for p in points if statistic in p]
    if not values:
        return None
    return max(values) if statistic == "Maximum" else sum(values) / len(values)


def side_status(side: Side, alarm_prefix: str | None, now: dt.datetime) -> SideStatus:
    status = SideStatus(side.label, side.region)
    lam = side.client("lambda")
    for output in ("forwarder_function_name", "replicator_function_name"):
        function = side.output(output)
        with aws_errors(f"{side.name} Lambda"):
            mappings = lam.list_event_source_mappings(FunctionName=function).get("EventSourceMappings", [])
        if not mappings:
            status.problems.append(f"{function} has no event source mapping")
        age = _statistic(
            side,
            namespace="AWS/Lambda",
            metric="IteratorAge",
            dimensions={"FunctionName": function},
            statistic="Maximum",
            now=now,
        )
        for mapping in mappings:
            entry = MappingStatus(
                function=function,
                source=str(mapping.get("EventSourceArn", "")),
                state=str(mapping.get("State", "?")),
                last_result=str(mapping.get("LastProcessingResult", "-")),
                iterator_age_ms=age,
            )
            status.mappings.append(entry)
            if entry.state != "Enabled":
                status.problems.append(f"{function} mapping is {entry.state}")
            if entry.last_result not in HEALTHY_RESULTS and entry.last_result != "-":
                status.problems.append(f"{function} last processing result: {entry.last_result}")
    queue = side.output("failure_queue_url")
    with aws_errors(f"{side.name} SQS"):
        attributes = side.client("sqs").get_queue_attributes(
            QueueUrl=queue,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
    status.failure_queue_depth = int(attributes.get("ApproximateNumberOfMessages", 0))
    status.failure_queue_in_flight = int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0))
    if status.failure_queue_depth or status.failure_queue_in_flight:
        status.problems.append(
            f"{status.failure_queue_depth + status.failure_queue_in_flight} message(s) in the failure queue: "
            "`ddb-replication redrive`"
        )
    prefix = alarm_prefix if alarm_prefix is not None else default_alarm_prefix(side)
    with aws_errors(f"{side.name} CloudWatch"):
        pages = (
            side.client("cloudwatch")
            .get_paginator("describe_alarms")
            .paginate(AlarmNamePrefix=prefix, StateValue="ALARM")
        )
        status.alarms_in_alarm = sorted(
            a["AlarmName"] for page in pages for a in page.get("MetricAlarms", [])
        )
    if status.alarms_in_alarm:
        status.problems.append(f"{len(status.alarms_in_alarm)} alarm(s) in ALARM")
    replicator = side.output("replicator_function_name")
    for statistic in ("Average", "Maximum"):
        status.latency_ms[statistic.lower()] = _latency(side, replicator, statistic, now)
    return status


def _latency(side: Side, replicator: str, statistic: str, now: dt.datetime) -> float | None:
    value = _statistic(
        side,
        namespace=METRICS_NAMESPACE,
        metric="ReplicationLatency",
        dimensions={"service": replicator},
        statistic=statistic,
        now=now,
    )
    return None if value is None else round(value, 1)


def default_alarm_prefix(side: Side) -> str:
    """The module names alarms ``<name>-...`` and the forwarder ``<name>-forwarder``."""
    forwarder = side.output("forwarder_function_name")
    return forwarder.removesuffix("forwarder") if forwarder.endswith("-forwarder") else forwarder


def run(
    pair: Pair, alarm_prefixes: dict[str, str | None], now: dt.datetime | None = None
) -> list[SideStatus]:
    now = now or dt.datetime.now(dt.UTC)
    _check_alarm_prefixes(pair, alarm_prefixes)
    return [side_status(side, alarm_prefixes.get(side.label), now) for side in pair.both()]


def _has_alarms(side: Side, prefix: str) -> bool:
    with aws_errors(f"{side.name} CloudWatch"):
        found = side.client("cloudwatch").describe_alarms(AlarmNamePrefix=prefix, MaxRecords=1)
    return bool(found.get("MetricAlarms") or found.get("CompositeAlarms"))


def _check_alarm_prefixes(pair: Pair, alarm_prefixes: dict[str, str | None]) -> None:
    """A given prefix that names no alarm (in any state) on either side is a typo, not "no alarm in
    ALARM": refused, so that status does not call a pair healthy by looking at nothing."""
    given = [(side, alarm_prefixes.get(side.label)) for side in pair.both()]
    given = [(side, prefix) for side, prefix in given if prefix is not None]
    if given and not any(_has_alarms(side, prefix) for side, prefix in given):
        prefixes = sorted({prefix for _, prefix in given})
        defaults = ", ".join(repr(default_alarm_prefix(side)) for side, _ in given)
        raise ConfigError(
            f"no alarm name on either side starts with {' or '.join(map(repr, prefixes))}: check "
            f"--alarm-prefix (without it each side's is taken from its function names: {defaults})"
        )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def render(statuses: list[SideStatus]) -> str:
    lines = []
    for s in statuses:
        health = "healthy" if not s.problems else "NEEDS ATTENTION"
        lines.append(f"{s.side} ({s.region}): {health}")
        lines.append(f"  {'function':<32} {'state':<10} {'last result':<24} iterator age (max 15 min)")
        for m in s.mappings:
            lines.append(f"  {m.function:<32} {m.state:<10} {m.last_result:<24} {_ms(m.iterator_age_ms)}")
        lines.append(
            f"  failure queue: {s.failure_queue_depth} waiting, {s.failure_queue_in_flight} in flight;"
            f" alarms in ALARM: {', '.join(s.alarms_in_alarm) or 'none'}"
        )
        lines.append(
            f"  replication latency (15 min): average {_ms(s.latency_ms.get('average'))}, "
            f"max {_ms(s.latency_ms.get('maximum'))}"
        )
        lines.extend(f"  ! {problem}" for problem in s.problems)
    return "\n".join(lines)


def as_json(statuses: list[SideStatus]) -> dict[str, Any]:
    from dataclasses import asdict

    return {"healthy": not any(s.problems for s in statuses), "sides": [asdict(s) for s in statuses]}
