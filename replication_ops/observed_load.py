"""A table's write load read from AWS, for ``ddb-replication plan --cn-table/--us-table``.

For a table that exists (replicated or not yet), the plan's inputs come from what DynamoDB reports:

- the write rate: CloudWatch ``AWS/DynamoDB`` ``ConsumedWriteCapacityUnits`` (dimension
  ``TableName``), its Sum over the period in whole hours, divided by the period's seconds, is the
  average write units per second; divided by the units one write of the average item takes
  (``replication_ops.capacity.write_units``) it is the average changes per second. DynamoDB
  aggregates the metric at one-minute intervals, and its documentation says to "use the Sum
  statistic to calculate the consumed throughput" ("DynamoDB Metrics and dimensions", DynamoDB
  developer guide, https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html).
  Transactions (twice the
  units) and the table's own replication writes, if it is replicated already, count too: the rate
  is then an upper bound, said in the result.
- the item size: ``DescribeTable``'s ``TableSizeBytes / ItemCount`` (the average item, DynamoDB's
  size; "DynamoDB updates this value approximately every six hours", API reference, TableDescription).

The busiest hour's rate is reported beside the average: the plan costs the average (a month's bill),
capacity must be planned for the peak.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from replication_ops.capacity import write_units
from replication_ops.errors import ConfigError, aws_errors
from replication_ops.sides import Side

HOUR = 3600


@dataclass(frozen=True)
class ObservedLoad:
    table: str
    region: str
    period_hours: int
    wcu_per_second: float  # average over the period
    peak_hour_wcu_per_second: float
    average_item_bytes: int | None  # None: the table reports no size yet
    item_count: int

    def changes_per_second(self, item_bytes: int) -> tuple[float, float]:
        """(average, busiest hour) changes/s for items of ``item_bytes``."""
        units = write_units(item_bytes)
        return self.wcu_per_second / units, self.peak_hour_wcu_per_second / units


def read(side: Side, table: str, period_hours: int, now: dt.datetime | None = None) -> ObservedLoad:
    """``table``'s load on ``side`` over the last ``period_hours`` whole hours."""
    end = (now or dt.datetime.now(dt.UTC)).replace(minute=0, second=0, microsecond=0)
    start = end - dt.timedelta(hours=period_hours)
    with aws_errors(f"{side.name} table {table}"):
        description = side.client("dynamodb").describe_table(TableName=table)["Table"]
        response = side.client("cloudwatch").get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "wcu",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/DynamoDB",
                            "MetricName": "ConsumedWriteCapacityUnits",
                            "Dimensions": [{"Name": "TableName", "Value": table}],
                        },
                        "Period": HOUR,
                        "Stat": "Sum",
                    },
                }
            ],
            StartTime=start,
            EndTime=end,
        )
    values = _values(response)
    size, count = int(description.get("TableSizeBytes") or 0), int(description.get("ItemCount") or 0)
    return ObservedLoad(
        table=table,
        region=side.region,
        period_hours=period_hours,
        wcu_per_second=sum(values) / (period_hours * HOUR),
        peak_hour_wcu_per_second=max(values, default=0.0) / HOUR,
        average_item_bytes=round(size / count) if size and count else None,
        item_count=count,
    )


def _values(response: dict[str, Any]) -> list[float]:
    (result,) = response["MetricDataResults"]
    if result.get("StatusCode") not in (None, "Complete"):
        raise ConfigError(
            f"CloudWatch returned the metric {result.get('StatusCode')}: try a shorter --period-hours"
        )
    return [float(v) for v in result.get("Values", [])]


__all__ = ["ObservedLoad", "read"]
