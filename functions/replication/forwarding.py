"""The forwarder's batch: classify each stream record, make the local writes the rules need, pack the
changes into as few Kinesis records as fit, send them, and name the first record not safely done."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from replication.changes import Change
from replication.classify import (
    Action,
    ClassifyContext,
    Decision,
    StampReason,
    classify_batch,
    needs_receipt,
    needs_tombstone,
)
from replication.errors import PeerCredentialsError, WireFormatError
from replication.keys import canonical_key, key_digest
from replication.kinesis_sender import KinesisSender, OutgoingRecord
from replication.parallel import run_all
from replication.settings import ForwarderSettings
from replication.table_writer import TOMBSTONE_SOURCE_LOCAL, StampResult, TableWriter
from replication.telemetry import logger
from replication.versions import clock_now, format_timestamp
from replication.wire import pack_changes

LOCAL_WRITE_CONCURRENCY = 8
# The failure queue's message kind for what the engine can never replicate (see applying.py).
UNREPLICABLE_KIND = "poison"
TOO_LARGE_REASON = (
    "the item cannot carry a version: with the version attributes it would exceed DynamoDB's 400 KB "
    "(409,600 bytes) item limit, so it is not replicated; shrink the item (docs/conflict-rules.md, Item size)"
)


@dataclass
class ForwardReport:
    counts: dict[Action, int] = field(default_factory=lambda: defaultdict(int))
    stamped: int = 0
    stamped_by_reason: Counter[StampReason] = field(default_factory=Counter)
    too_large: int = 0  # local writes that cannot carry a version, reported to the failure queue
    changes_sent: int = 0
    records_sent: int = 0
    bytes_sent: int = 0
    first_failure: int | None = None  # index of the first stream record not safely handled

    def fail_at(self, index: int) -> None:
        if self.first_failure is None or index < self.first_failure:
            self.first_failure = index


class Forwarder:
    def __init__(
        self,
        settings: ForwarderSettings,
        writer: TableWriter,
        sender: KinesisSender,
        *,
        sqs: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``sqs``: client for ``settings.failure_queue_url`` (items that cannot carry a version)."""
        self._settings = settings
        self._writer = writer
        self._sender = sender
        self._sqs = sqs
        self._clock = clock

    def process(self, records: Sequence[dict[str, Any]]) -> ForwardReport:
        report = ForwardReport()
        if not records:
            return report
        table = self._settings.table
        context = ClassifyContext(
            names=table.version_attributes,
            local_region=table.local_region,
            peer_region=self._settings.peer_region,
            replicate_ttl_deletes=self._settings.replicate_ttl_deletes,
            now=clock_now(self._clock()),
            max_clock_skew_seconds=table.max_clock_skew_seconds,
        )
        try:
            tombstones = self._writer.tombstones(
                r["dynamodb"]["Keys"] for r in records if needs_tombstone(r, context)
            )
            receipt_keys = [r["dynamodb"]["Keys"] for r in records if needs_receipt(r)]
            receipts = self._writer.removal_receipts(receipt_keys) if receipt_keys else {}
        except Exception:
            logger.exception("could not read tombstones; the whole batch will be retried")
            report.fail_at(0)
            return report
        decisions = classify_batch(records, tombstones, context, receipts)
        for decision in decisions:
            report.counts[decision.action] += 1
            if decision.reason is StampReason.AHEAD:
                logger.warning(
                    "a local write's version is beyond the allowed clock skew: stamped as unversioned",
                    extra={
                        "key_digest": key_digest(decision.key),
                        "max_clock_skew_seconds": table.max_clock_skew_seconds,
                        "forwarder_time": format_timestamp(context.now),
                    },
                )
        self._local_writes(records, decisions, report)
        to_send = [
            (index, decision.change)
            for index, decision in enumerate(decisions)
            if decision.change is not None and (report.first_failure is None or index < report.first_failure)
        ]
        self._send(to_send, report)
        return report

    def _local_writes(
        self, records: Sequence[dict[str, Any]], decisions: list[Decision], report: ForwardReport
    ) -> None:
        """Stamps and tombstones, in record order per key, keys in parallel."""
        by_key: dict[str, list[int]] = defaultdict(list)
        for index, decision in enumerate(decisions):
            if decision.action in (Action.STAMP, Action.DELETE, Action.DELETE_WINS, Action.TOO_LARGE):
                by_key[canonical_key(decision.key)].append(index)

        def write_key(indices: list[int]) -> tuple[int | None, Counter[StampReason], int]:
            stamped: Counter[StampReason] = Counter()
            too_large = 0
            for index in indices:
                decision = decisions[index]
                try:
                    if decision.action is Action.STAMP:
                        assert decision.stamp is not None and decision.reason is not None
                        result = self._writer.stamp(
                            decision.key, decision.seen, decision.stamp, decision.remove
                        )
                        if result is StampResult.STAMPED:
                            stamped[decision.reason] += 1
                        elif result is StampResult.TOO_LARGE:
                            self._report_too_large(records[index])
                            too_large += 1
                        elif decision.replaced is not None:
                            # Replaced before its stamp; an older version must not stay.
                            self._writer.restore(decision.key, decision.replaced, decision.stamp)
                    elif decision.action is Action.TOO_LARGE:
                        self._report_too_large(records[index])
                        too_large += 1
                    elif decision.action is Action.DELETE_WINS:
                        assert decision.remembered is not None
                        self._writer.delete_if_older(
                            decision.key, decision.remembered, spare_unversioned=True
                        )
                    else:
                        assert decision.change is not None
                        self._writer.remember_delete(
                            decision.key, decision.change.version, TOMBSTONE_SOURCE_LOCAL
                        )
                        # An older replicated upsert may have recreated the item in the meantime.
                        self._writer.delete_if_older(
                            decision.key, decision.change.version, spare_unversioned=True
                        )
                except Exception:
                    logger.exception("local write failed", extra={"record_index": index})
                    return index, stamped, too_large
            return None, stamped, too_large

        for failed, stamped, too_large in run_all(list(by_key.values()), write_key, LOCAL_WRITE_CONCURRENCY):
            report.stamped += sum(stamped.values())
            report.stamped_by_reason.update(stamped)
            report.too_large += too_large
            if failed is not None:
                report.fail_at(failed)

    def _report_too_large(self, record: dict[str, Any]) -> None:
        """A local write that cannot carry a version: logged, counted and sent to the failure queue
        with its key digest and stream position (never its contents); the batch goes on. Raises if
        the queue cannot take it, so the record is retried rather than lost silently."""
        body = {
            "kind": UNREPLICABLE_KIND,
            "reason": TOO_LARGE_REASON,
            "key_digest": key_digest(record["dynamodb"]["Keys"]),
            "eventSourceARN": record.get("eventSourceARN"),
            "eventID": record.get("eventID"),
            "sequenceNumber": record["dynamodb"].get("SequenceNumber"),
        }
        logger.error("a local write cannot carry a version and is not replicated", extra=body)
        if self._settings.failure_queue_url and self._sqs is not None:
            self._sqs.send_message(QueueUrl=self._settings.failure_queue_url, MessageBody=json.dumps(body))

    def _send(self, to_send: list[tuple[int, Change]], report: ForwardReport) -> None:
        if not to_send:
            return
        table = self._settings.table
        try:
            packed = pack_changes(
                [change for _, change in to_send],
                origin=table.local_region,
                table=table.table_name,
                version_attributes=table.version_attributes,
                max_record_bytes=self._settings.max_record_bytes,
            )
        except WireFormatError as error:
            logger.error("cannot pack the batch", extra={"reason": str(error)})
            report.fail_at(to_send[0][0])
            return
        outgoing = [OutgoingRecord(data, key_digest(to_send[span.start][1].key)) for data, span in packed]
        try:
            result = self._sender.send(outgoing)
        except PeerCredentialsError as error:
            logger.error(f"no usable peer credentials, nothing sent: {error}")
            report.fail_at(to_send[0][0])
            return
        report.records_sent = len(result.delivered)
        report.bytes_sent = result.bytes_sent
        for record_index, (_, span) in enumerate(packed):
            if record_index in result.delivered:
                report.changes_sent += len(span)
            else:
                report.fail_at(to_send[span.start][0])
        if result.undelivered:
            logger.error(
                "records not delivered to the peer inbox",
                extra={"undelivered": len(result.undelivered), "last_error": result.last_error},
            )
