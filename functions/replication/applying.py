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

from replication.admission import admit
from replication.changes import Change
from replication.coalesce import Coalesced, coalesce
from replication.errors import ChangeRefused, WireFormatError
from replication.keys import key_digest
from replication.parallel import run_all
from replication.settings import ReplicatorSettings
from replication.table_writer import Outcome, TableWriter
from replication.telemetry import logger
from replication.versions import latest_allowed
from replication.wire import KIND_PROBE, Envelope, decode

POISON_MESSAGE_KIND = "poison"
# SQS takes 256 KiB per message; the record itself is attached when it fits.
MAX_ATTACHED_DATA_BYTES = 180 * 1024


@dataclass
class ApplyReport:
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    poison: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # changes refused, by error class name
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
        results = run_all([slot.change for slot in winners], self._apply, self._settings.apply_concurrency)
        applied_at = self._clock()
        for slot, result in zip(winners, results, strict=True):
            if isinstance(result, ChangeRefused):
                self._route_refused(slot, result, records, report)
                continue
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

    def _apply(self, change: Change) -> Outcome:
        """Apply one change, unless this side must never apply it (raises ``ChangeRefused``)."""
        table = self._settings.table
        admit(change, latest_allowed(self._clock(), table.max_clock_skew_seconds))
        return self._writer.apply(change)

    def _route_refused(
        self, slot: Coalesced, error: ChangeRefused, records: Sequence[dict[str, Any]], report: ApplyReport
    ) -> None:
        """A refused change goes to the failure queue with its reason, its key digest and where its
        records are (never its contents); the records are acknowledged."""
        sequence_numbers = [records[i].get("kinesis", {}).get("sequenceNumber") for i in sorted(slot.sources)]
        body = {
            "kind": POISON_MESSAGE_KIND,
            "reason": f"{error.__class__.__name__}: {error}",
            "key_digest": key_digest(slot.change.key),
            "change": "delete" if slot.change.is_delete else "upsert",
            "eventSourceARN": records[min(slot.sources)].get("eventSourceARN"),
            "sequenceNumber": sequence_numbers[0],  # where `ddb-replication redrive` lists it
            "sequenceNumbers": sequence_numbers,
        }
        logger.error("change refused and routed to the failure queue", extra=body)
        try:
            self._sqs.send_message(QueueUrl=self._settings.failure_queue_url, MessageBody=json.dumps(body))
        except Exception:
            logger.exception("could not route the refused change; its records will be retried")
            report.failed.update(slot.sources)
            return
        report.refused[error.__class__.__name__] += 1

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
