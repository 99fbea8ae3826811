"""The forwarder's batch across tables: one function serves every table's stream, and each stream
record names its stream in ``eventSourceARN``; the records of each table go to that table's Forwarder.

Each event source mapping names one stream (Lambda API reference, CreateEventSourceMapping,
``EventSourceArn``; the module makes one per table stream), so a batch normally holds the records of
one stream. A batch is still split into contiguous runs of one table, in order, so
nothing depends on that. A record of a stream that is not in ``TABLES`` is a configuration error
(a mapping the settings do not know of): it and what follows are retried and alarmed, never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from replication.forwarding import Forwarder, ForwardReport
from replication.settings import ForwarderSettings
from replication.telemetry import logger


@dataclass
class TableRun:
    """Records ``start`` to ``stop`` (exclusive) of a batch, all of table ``name``'s stream, and what
    forwarding them came to (``report.first_failure`` counts from ``start``)."""

    name: str
    start: int
    stop: int
    report: ForwardReport


@dataclass
class BatchForward:
    runs: list[TableRun]
    first_failure: int | None = None  # index in the batch of the first record not safely handled
    unknown_streams: int = 0  # records of a stream no table in TABLES has (configuration errors)


def forward_batch(
    settings: ForwarderSettings, forwarders: Mapping[str, Forwarder], records: Sequence[dict[str, Any]]
) -> BatchForward:
    """Forward ``records`` run by run of one table, each with its table's Forwarder (by logical
    name), stopping at the first run with a record not safely handled: Lambda retries from there."""
    result = BatchForward(runs=[])
    start = 0
    while start < len(records):
        source = str(records[start].get("eventSourceARN") or "")
        stop = start + 1
        while stop < len(records) and str(records[stop].get("eventSourceARN") or "") == source:
            stop += 1
        table = settings.table_for_stream(source)
        if table is None:
            logger.error(
                "stream record of a stream no table in TABLES has; retried (configuration: needs a person)",
                extra={"event_source_arn": source[:300], "tables": sorted(settings.tables)},
            )
            result.unknown_streams += 1
            result.first_failure = start
            return result
        report = forwarders[table.name].process(records[start:stop])
        result.runs.append(TableRun(table.name, start, stop, report))
        if report.first_failure is not None:
            result.first_failure = start + report.first_failure
            return result
        start = stop
    return result
