"""The replicator's batch: decode and validate each inbox record, route poison messages to the
failure queue, coalesce the changes per key and apply the winners with bounded concurrency."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from replication.changes import Change
from replication.coalesce import coalesce
from replication.errors import WireFormatError
from replication.parallel import run_all
from replication.settings import ReplicatorSettings
from replication.table_writer import Outcome, TableWriter
from replication.telemetry import logger
from replication.wire import KIND_PROBE, Envelope, decode

POISON_MESSAGE_KIND = "poison"
# SQS takes 256 KiB per message; the record itself is attached when it fits.
MAX_ATTACHED_DATA_BYTES = 180 * 1024


@dataclass
class ApplyReport:
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    poison: int = 0
    probes: int = 0
    changes_received: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    failed: set[int] = field(default_factory=set)  # indices of records to retry


class Replicator:
    def __init__(
        self,
        settings: ReplicatorSettings,
        writer: TableWriter,
        sqs: Any,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._writer = writer
        self._sqs = sqs
        self._clock = clock

    def process(self, records: Sequence[dict[str, Any]]) -> ApplyReport:
        report = ApplyReport()
        changes: list[tuple[int, Change]] = []
        for index, record in enumerate(records):
            try:
                envelope = self._decode(record)
            except WireFormatError as error:
                self._route_poison(index, record, str(error), report)
                continue
            if envelope.kind == KIND_PROBE:
                self._receive_probe(index, envelope, report)
                continue
            changes.extend((index, change) for change in envelope.changes)
        report.changes_received = len(changes)
        winners = list(coalesce(changes).values())
        results = run_all(
            [slot.change for slot in winners], self._writer.apply, self._settings.apply_concurrency
        )
        applied_at = self._clock()
        for slot, result in zip(winners, results, strict=True):
            if isinstance(result, BaseException):
                logger.warning(
                    "change not applied; its records will be retried",
                    extra={"error": result.__class__.__name__, "detail": str(result)[:200]},
                )
                report.failed.update(slot.sources)
                continue
            report.outcomes[result] += 1
            if result is Outcome.APPLIED and not slot.change.is_delete:
                report.latencies_ms.append(
                    max(0.0, (applied_at - float(slot.change.version.timestamp)) * 1000)
                )
        return report

    def _decode(self, record: dict[str, Any]) -> Envelope:
        try:
            data = base64.b64decode(record["kinesis"]["data"], validate=True)
        except (KeyError, TypeError, binascii.Error, ValueError):
            raise WireFormatError("record data is not base64") from None
        envelope = decode(data)
        table = self._settings.table
        if envelope.table != self._settings.peer_table_name:
            raise WireFormatError(
                f"message for table {envelope.table!r}, expected {self._settings.peer_table_name!r}"
            )
        if envelope.origin == table.local_region:
            raise WireFormatError(f"message claims to come from this side ({envelope.origin})")
        if envelope.version_attributes != table.version_attributes:
            raise WireFormatError(
                "the peer uses other version attribute names "
                f"({envelope.version_attributes.timestamp}, {envelope.version_attributes.origin})"
            )
        return envelope

    def _route_poison(self, index: int, record: dict[str, Any], reason: str, report: ApplyReport) -> None:
        kinesis = record.get("kinesis", {})
        # Never log or forward decoded contents: only where the record is and why it was refused.
        logger.error(
            "poison message routed to the failure queue",
            extra={"reason": reason, "sequence_number": kinesis.get("sequenceNumber")},
        )
        data = kinesis.get("data", "")
        body = {
            "kind": POISON_MESSAGE_KIND,
            "reason": reason,
            "eventSourceARN": record.get("eventSourceARN"),
            "eventID": record.get("eventID"),
            "sequenceNumber": kinesis.get("sequenceNumber"),
            "partitionKey": kinesis.get("partitionKey"),
            "approximateArrivalTimestamp": kinesis.get("approximateArrivalTimestamp"),
            "data": data if isinstance(data, str) and len(data) <= MAX_ATTACHED_DATA_BYTES else None,
        }
        try:
            self._sqs.send_message(QueueUrl=self._settings.failure_queue_url, MessageBody=json.dumps(body))
        except Exception:
            logger.exception("could not route the poison message; the record will be retried")
            report.failed.add(index)
            return
        report.poison += 1

    def _receive_probe(self, index: int, envelope: Envelope, report: ApplyReport) -> None:
        assert envelope.probe_id is not None
        try:
            self._writer.record_probe(envelope.probe_id, envelope.origin)
        except Exception:
            logger.exception("could not record the probe")
            report.failed.add(index)
            return
        logger.info("credentials probe received", extra={"probe_id": envelope.probe_id})
        report.probes += 1
