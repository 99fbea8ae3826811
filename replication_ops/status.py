"""Status: is the pair healthy? Per side: the event source mappings (state, last processing result),
iterator age (CloudWatch, the last 15 minutes), failure queue depth, alarms in ALARM, recent
replication latency per table and its stages at p50 and p99 (namespace DynamoDBReplication,
dimensions ``service`` = the replicator's name and ``table`` = the logical table; replication.lag),
and how far behind the changes coming to the side are (``behind_ms``). Each table's stream has its
own mapping to the forwarder.

The percentiles are CloudWatch's, over the last 15 whole minutes (the current one included) as one
period: a percentile of 15 minutes is not any combination of the minutes' percentiles. pNN is the
value NN percent of the period's values are below ("Statistics definitions", CloudWatch user guide);
CloudWatch computes it from the values the replicator's EMF lines put (``GetMetricData`` with a
percentile ``Stat``: "any CloudWatch statistic or extended statistic", CloudWatch API reference,
MetricStat).

``behind_ms`` is this project's counterpart of global tables' ``PendingReplicationCount`` ("the number
of item updates that are written to one replica table, but that have not yet been written in another
replica", DynamoDB developer guide, Monitoring global tables): a count needs reading the streams, so
it is a time instead, the peer forwarder's iterator age plus this replicator's, each the maximum of
the latest minute with data (Lambda's IteratorAge: the age of the last record of a batch when Lambda
received it). It approximates the age of the oldest change still on its way in the two streams; it
leaves out the functions' own work, and a change parked in a failure queue is counted there instead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from replication import lag
from replication_ops import certificate_status
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
    table: str | None = None  # the logical table whose stream a forwarder mapping reads


@dataclass
class SideStatus:
    side: str
    region: str
    mappings: list[MappingStatus] = field(default_factory=list)
    failure_queue_depth: int | None = None
    failure_queue_in_flight: int | None = None
    alarms_in_alarm: list[str] = field(default_factory=list)
    latency_ms: dict[str, dict[str, float | None]] = field(default_factory=dict)  # per logical table
    # Per logical table, each stage's lag (replication.lag) and end to end: {"p50", "p99"} ms.
    lag_stages_ms: dict[str, dict[str, dict[str, float | None]]] = field(default_factory=dict)
    # Each function's iterator age now (the latest minute's maximum), by "forwarder" / "replicator".
    iterator_age_now_ms: dict[str, float | None] = field(default_factory=dict)
    # How far behind the peer's changes to this side are (see the module docstring); None: no data.
    behind_ms: float | None = None
    # This side's forwarder certificate as the peer's IAM Roles Anywhere saw it (roles_anywhere mode).
    certificates: list[certificate_status.CertificateStatus] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _statistic(
    side: Side,
    *,
    namespace: str,
    metric: str,
    dimensions: dict[str, str],
    statistic: str,
    now: dt.datetime,
    latest: bool = False,
) -> float | None:
    """The statistic over the window (the average of the minutes' averages, the maximum of their
    maxima), or with ``latest`` the latest minute's that has data."""
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
    if latest:
        return max(points, key=lambda p: p["Timestamp"])[statistic]
    return max(values) if statistic == "Maximum" else sum(values) / len(values)


def side_status(side: Side, alarm_prefix: str | None, now: dt.datetime, tables: list[str]) -> SideStatus:
    """``tables``: the logical tables to report (every table, or the one of ``--table``)."""
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
        is_forwarder = output == "forwarder_function_name"
        status.iterator_age_now_ms[output.removesuffix("_function_name")] = _statistic(
            side,
            namespace="AWS/Lambda",
            metric="IteratorAge",
            dimensions={"FunctionName": function},
            statistic="Maximum",
            now=now,
            latest=True,
        )
        for mapping in mappings:
            source = str(mapping.get("EventSourceArn", ""))
            entry = MappingStatus(
                function=function,
                source=source,
                state=str(mapping.get("State", "?")),
                last_result=str(mapping.get("LastProcessingResult", "-")),
                iterator_age_ms=age,
                table=side.table_of_stream(source) if is_forwarder else None,
            )
            if is_forwarder and entry.table not in tables:
                continue
            status.mappings.append(entry)
            if entry.state != "Enabled":
                status.problems.append(f"{function} mapping is {entry.state}")
            if entry.last_result not in HEALTHY_RESULTS and entry.last_result != "-":
                status.problems.append(f"{function} last processing result: {entry.last_result}")
        if is_forwarder and mappings:
            read = {m.table for m in status.mappings if m.function == function}
            status.problems.extend(
                f"table {t}: no event source mapping reads its stream" for t in tables if t not in read
            )
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
    for table in tables:
        status.latency_ms[table] = {
            statistic.lower(): _latency(side, replicator, table, statistic, now)
            for statistic in ("Average", "Maximum")
        }
    status.lag_stages_ms = lag_percentiles(side, replicator, tables, now)
    return status


LAG_PERCENTILES = ("p50", "p99")
MAX_QUERIES_PER_REQUEST = 500  # GetMetricData's MetricDataQueries (CloudWatch API reference)


def lag_percentiles(
    side: Side, replicator: str, tables: list[str], now: dt.datetime
) -> dict[str, dict[str, dict[str, float | None]]]:
    """``{table: {stage: {"p50": ms, "p99": ms}}}`` for every stage of replication.lag and
    ``end_to_end`` over the window (None: no value in it), from GetMetricData requests of up to 500
    queries, each a percentile of one metric over one period as long as the window (the module
    docstring). The window ends with the current minute: GetMetricData rounds a StartTime of the
    last 15 days down to the whole minute (CloudWatch API reference, GetMetricData)."""
    end = now.replace(second=0, microsecond=0) + dt.timedelta(seconds=PERIOD_SECONDS)
    found: dict[str, dict[str, dict[str, float | None]]] = {
        table: {stage: dict.fromkeys(LAG_PERCENTILES) for stage in lag.METRICS} for table in tables
    }
    asked = [
        (table, stage, metric, statistic)
        for table in tables
        for stage, metric in lag.METRICS.items()
        for statistic in LAG_PERCENTILES
    ]
    queries = [
        {
            "Id": f"q{index}",
            "MetricStat": {
                "Metric": {
                    "Namespace": METRICS_NAMESPACE,
                    "MetricName": metric,
                    "Dimensions": [
                        {"Name": "service", "Value": replicator},
                        {"Name": "table", "Value": table},
                    ],
                },
                "Period": int(WINDOW.total_seconds()),
                "Stat": statistic,
            },
        }
        for index, (table, _, metric, statistic) in enumerate(asked)
    ]
    cloudwatch = side.client("cloudwatch")
    for start in range(0, len(queries), MAX_QUERIES_PER_REQUEST):
        with aws_errors(f"{side.name} CloudWatch"):
            pages = cloudwatch.get_paginator("get_metric_data").paginate(
                MetricDataQueries=queries[start : start + MAX_QUERIES_PER_REQUEST],
                StartTime=end - WINDOW,
                EndTime=end,
            )
            results = [result for page in pages for result in page.get("MetricDataResults", [])]
        for result in results:
            table, stage, _, statistic = asked[int(result["Id"][1:])]
            values = result.get("Values") or []
            if values:
                found[table][stage][statistic] = round(values[0], 1)
    return found


def _latency(side: Side, replicator: str, table: str, statistic: str, now: dt.datetime) -> float | None:
    value = _statistic(
        side,
        namespace=METRICS_NAMESPACE,
        metric=lag.METRICS[lag.END_TO_END],
        dimensions={"service": replicator, "table": table},
        statistic=statistic,
        now=now,
    )
    return None if value is None else round(value, 1)


def default_alarm_prefix(side: Side) -> str:
    """The module names alarms ``<name>-...`` and the forwarder ``<name>-forwarder``."""
    forwarder = side.output("forwarder_function_name")
    return forwarder.removesuffix("forwarder") if forwarder.endswith("-forwarder") else forwarder


def run(
    pair: Pair,
    alarm_prefixes: dict[str, str | None],
    now: dt.datetime | None = None,
    *,
    table: str | None = None,
) -> list[SideStatus]:
    """Both sides' status, for every table or for ``table`` (``--table``)."""
    now = now or dt.datetime.now(dt.UTC)
    tables = pair.tables(table)
    _check_alarm_prefixes(pair, alarm_prefixes)
    statuses = [side_status(side, alarm_prefixes.get(side.label), now, tables) for side in pair.both()]
    for status, peer in zip(statuses, reversed(statuses), strict=True):
        status.behind_ms = behind_ms(
            peer.iterator_age_now_ms.get("forwarder"), status.iterator_age_now_ms.get("replicator")
        )
    certificate_status.attach(pair, statuses, now)
    return statuses


def behind_ms(peer_forwarder_age: float | None, replicator_age: float | None) -> float | None:
    """How far behind the peer's changes to a side are: the peer forwarder's iterator age plus the
    side's replicator's (the module docstring); None when neither reported one."""
    if peer_forwarder_age is None and replicator_age is None:
        return None
    return (peer_forwarder_age or 0.0) + (replicator_age or 0.0)


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


STAGE_LABELS = {
    lag.STREAM_TO_FORWARDER: "stream -> forwarder",
    lag.FORWARDER_TO_INBOX: "forwarder -> inbox",
    lag.INBOX_TO_APPLY: "inbox -> apply",
}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def render(statuses: list[SideStatus]) -> str:
    lines = []
    for s in statuses:
        health = "healthy" if not s.problems else "NEEDS ATTENTION"
        lines.append(f"{s.side} ({s.region}): {health}")
        lines.append(
            f"  {'function':<32} {'table':<16} {'state':<10} {'last result':<24} iterator age (max 15 min)"
        )
        for m in s.mappings:
            table = m.table or "-"
            lines.append(
                f"  {m.function:<32} {table:<16} {m.state:<10} {m.last_result:<24} {_ms(m.iterator_age_ms)}"
            )
        lines.append(
            f"  failure queue: {s.failure_queue_depth} waiting, {s.failure_queue_in_flight} in flight;"
            f" alarms in ALARM: {', '.join(s.alarms_in_alarm) or 'none'}"
        )
        lines.append(
            f"  behind (the peer's changes to this side, now): {_ms(s.behind_ms)}"
            " (peer forwarder's iterator age + this replicator's)"
        )
        for table, latency in s.latency_ms.items():
            stages = s.lag_stages_ms.get(table, {})
            end_to_end = stages.get(lag.END_TO_END, {})
            lines.append(
                f"  table {table}: replication latency (15 min): p50 {_ms(end_to_end.get('p50'))}, "
                f"p99 {_ms(end_to_end.get('p99'))}, average {_ms(latency.get('average'))}, "
                f"max {_ms(latency.get('maximum'))}"
            )
            lines.append(
                "    by stage (p50 / p99): "
                + ", ".join(
                    f"{STAGE_LABELS[stage]} {_ms(stages.get(stage, {}).get('p50'))} / "
                    f"{_ms(stages.get(stage, {}).get('p99'))}"
                    for stage in lag.STAGES
                )
            )
        lines.extend(certificate_status.render_lines(s.certificates))
        lines.extend(f"  ! {problem}" for problem in s.problems)
    return "\n".join(lines)


def as_json(statuses: list[SideStatus]) -> dict[str, Any]:
    from dataclasses import asdict

    return {"healthy": not any(s.problems for s in statuses), "sides": [asdict(s) for s in statuses]}
