"""Per-stage replication lag: where a change's time goes between its write on one side and its apply
on the other (docs/wire-format.md, "Times a change passed"; the metrics in docs/architecture.md).

The times a change passes, all epoch seconds:

- **origin**: its write, where known: the version timestamp, the writer's own clock reading, but
  never earlier than the second of its DynamoDB stream record (``Change.stream_created``: DynamoDB
  Streams gives ApproximateCreationDateTime "rounded down to the closest second", DynamoDB Streams API
  reference, StreamRecord). A version older than its stream record is not the write's time (a
  backfilled or long-unchanged version, a delete's version): the stream record's second is then the
  best known. Without a stream time (an older forwarder) the version timestamp alone.
- **sent**: the forwarder's send time (the envelope's ``at``, milliseconds, the forwarder's clock).
- **arrived**: the inbox record's ``approximateArrivalTimestamp`` in the replicator's Lambda event
  ("the approximate time that the record was inserted into the stream", Kinesis API reference,
  Record; in the event, epoch seconds with a millisecond fraction such as ``1545084650.987``).
- **applied**: the replicator's clock when its write returned.

The stages are the differences: ``stream_to_forwarder`` (origin to sent: the stream, the forwarder
mapping's batching window and poll, the forwarder's own work), ``forwarder_to_inbox`` (sent to
arrived: PutRecords across the partitions), ``inbox_to_apply`` (arrived to applied: the inbox poll,
the replicator's work and write) and ``end_to_end`` (origin to applied; the ``ReplicationLatency``
metric). Because DynamoDB Streams gives no finer time than the second, the write's own path into its
stream is not a stage of its own: it is inside ``stream_to_forwarder``.

Clock skew: the four times come from four clocks (writer, forwarder, Kinesis in the peer partition,
replicator). A stage that comes out negative (a later clock behind an earlier one) is **clamped to
0**, never reported negative: a stage takes no less than no time. When the clocks agree, the three
stages sum exactly to ``end_to_end``; with skew the clamped sum can exceed it by the skew.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

STREAM_TO_FORWARDER = "stream_to_forwarder"
FORWARDER_TO_INBOX = "forwarder_to_inbox"
INBOX_TO_APPLY = "inbox_to_apply"
END_TO_END = "end_to_end"
STAGES = (STREAM_TO_FORWARDER, FORWARDER_TO_INBOX, INBOX_TO_APPLY)
# The replicator's EMF metric of each stage (milliseconds; dimensions service and table).
METRICS: Mapping[str, str] = {
    STREAM_TO_FORWARDER: "StreamToForwarderLatency",
    FORWARDER_TO_INBOX: "ForwarderToInboxLatency",
    INBOX_TO_APPLY: "InboxToApplyLatency",
    END_TO_END: "ReplicationLatency",
}


@dataclass(frozen=True)
class Passage:
    """When the record that carried a change left the forwarder and reached the inbox (epoch
    seconds); ``arrived`` is None when the event gave no arrival time."""

    sent: float
    arrived: float | None


def origin_time(version_timestamp: Decimal, stream_created: int | None) -> float:
    """The change's write time as best known (see the module docstring)."""
    written = float(version_timestamp)
    return written if stream_created is None else max(written, float(stream_created))


def arrival_time(record: Mapping[str, Any]) -> float | None:
    """A Kinesis record's ``approximateArrivalTimestamp`` from a Lambda event (epoch seconds), or None
    when it is missing or not a number."""
    kinesis = record.get("kinesis")
    arrived = kinesis.get("approximateArrivalTimestamp") if isinstance(kinesis, Mapping) else None
    if isinstance(arrived, bool) or not isinstance(arrived, int | float):
        return None
    return float(arrived)


def stage_lags(origin: float, passage: Passage, applied: float) -> dict[str, float]:
    """Each stage's duration in seconds, negative ones clamped to 0, and ``end_to_end``. Without an
    arrival time only ``stream_to_forwarder`` and ``end_to_end`` are known."""
    lags = {STREAM_TO_FORWARDER: max(0.0, passage.sent - origin)}
    if passage.arrived is not None:
        lags[FORWARDER_TO_INBOX] = max(0.0, passage.arrived - passage.sent)
        lags[INBOX_TO_APPLY] = max(0.0, applied - passage.arrived)
    lags[END_TO_END] = max(0.0, applied - origin)
    return lags
