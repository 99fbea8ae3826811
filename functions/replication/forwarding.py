"""The forwarder's batch: classify each stream record, make the local writes the rules need, pack the
changes into as few Kinesis records as fit, send them, and name the first record not safely done."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from replication.changes import Change
from replication.classify import Action, ClassifyContext, Decision, classify_batch, needs_tombstone
from replication.errors import PeerCredentialsError, WireFormatError
from replication.keys import canonical_key, key_digest
from replication.kinesis_sender import KinesisSender, OutgoingRecord
from replication.parallel import run_all
from replication.settings import ForwarderSettings
from replication.table_writer import TOMBSTONE_SOURCE_LOCAL, TableWriter
from replication.telemetry import logger
from replication.wire import pack_changes

LOCAL_WRITE_CONCURRENCY = 8


@dataclass
class ForwardReport:
    counts: dict[Action, int] = field(default_factory=lambda: defaultdict(int))
    stamped: int = 0
    changes_sent: int = 0
    records_sent: int = 0
    bytes_sent: int = 0
    first_failure: int | None = None  # index of the first stream record not safely handled

    def fail_at(self, index: int) -> None:
        if self.first_failure is None or index < self.first_failure:
            self.first_failure = index


class Forwarder:
    def __init__(self, settings: ForwarderSettings, writer: TableWriter, sender: KinesisSender) -> None:
        self._settings = settings
        self._writer = writer
        self._sender = sender
        self._context = ClassifyContext(
            names=settings.table.version_attributes,
            local_region=settings.table.local_region,
            peer_region=settings.peer_region,
            replicate_ttl_deletes=settings.replicate_ttl_deletes,
        )

    def process(self, records: Sequence[dict[str, Any]]) -> ForwardReport:
        report = ForwardReport()
        if not records:
            return report
        names = self._context.names
        try:
            tombstones = self._writer.tombstones(
                r["dynamodb"]["Keys"] for r in records if needs_tombstone(r, names)
            )
        except Exception:
            logger.exception("could not read tombstones; the whole batch will be retried")
            report.fail_at(0)
            return report
        decisions = classify_batch(records, tombstones, self._context)
        for decision in decisions:
            report.counts[decision.action] += 1
        self._local_writes(decisions, report)
        to_send = [
            (index, decision.change)
            for index, decision in enumerate(decisions)
            if decision.change is not None and (report.first_failure is None or index < report.first_failure)
        ]
        self._send(to_send, report)
        return report

    def _local_writes(self, decisions: list[Decision], report: ForwardReport) -> None:
        """Stamps and tombstones, in record order per key, keys in parallel."""
        by_key: dict[str, list[int]] = defaultdict(list)
        for index, decision in enumerate(decisions):
            if decision.action in (Action.STAMP, Action.DELETE, Action.DELETE_WINS):
                by_key[canonical_key(decision.key)].append(index)

        def write_key(indices: list[int]) -> tuple[int | None, int]:
            stamped = 0
            for index in indices:
                decision = decisions[index]
                try:
                    if decision.action is Action.STAMP:
                        assert decision.stamp is not None
                        if self._writer.stamp(decision.key, decision.seen, decision.stamp):
                            stamped += 1
                        elif decision.replaced is not None:
                            # Replaced before its stamp; an older version must not stay.
                            self._writer.restore(decision.key, decision.replaced, decision.stamp)
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
                    return index, stamped
            return None, stamped

        for failed, stamped in run_all(list(by_key.values()), write_key, LOCAL_WRITE_CONCURRENCY):
            report.stamped += stamped
            if failed is not None:
                report.fail_at(failed)

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
