"""The forwarder's batch: classify each stream record, make the local writes the rules need, pack the
changes into as few Kinesis records as fit, send them, and name the first record not safely done.

Failures are sorted as in ``replication.failures`` (docs/failure-handling.md): transient and
configuration failures stop the batch at the first record they touch (Lambda retries from there;
configuration ones are also counted and alarmed); a local write DynamoDB refuses for good, and an item
that cannot carry a version (a version stamp or a delete mark would take it over 400 KB), send that
stream record's location and reason to the failure queue, and the batch goes on.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from replication.admission import reserved_attributes
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
from replication.conflicts import Conflict, ConflictKind
from replication.errors import ConfigurationError, PeerCredentialsError
from replication.exporting import ResidencyTally, screen_batch
from replication.failures import FailureKind, classify_failure
from replication.keys import canonical_key, key_digest
from replication.kinesis_sender import KinesisSender, OutgoingRecord
from replication.parallel import run_all
from replication.residency import Verdict
from replication.settings import ForwarderSettings, ServedTable
from replication.table_writer import TOMBSTONE_SOURCE_LOCAL, StampResult, TableWriter
from replication.telemetry import logger
from replication.versions import clock_now, format_timestamp
from replication.wire import pack_changes, partition_key

LOCAL_WRITE_CONCURRENCY = 8
MAX_REASON_CHARACTERS = 200
# The failure queue's message kind for what the engine can never replicate (as applying.py's).
POISON_MESSAGE_KIND = "poison"
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
    # Stream records sent to the failure queue: a local write DynamoDB refuses for good, or an item
    # that cannot carry a version (those also count in ``too_large``).
    refused: int = 0
    configuration_errors: int = 0
    transient_errors: int = 0
    # What the table's residency rules kept here (replication.exporting; docs/residency.md).
    residency: ResidencyTally = field(default_factory=ResidencyTally)
    # Conflicts resolved here (replication.conflicts): stamps given, new items a remembered delete won.
    conflicts: list[Conflict] = field(default_factory=list)
    first_failure: int | None = None  # index of the first stream record not safely handled

    def fail_at(self, index: int) -> None:
        if self.first_failure is None or index < self.first_failure:
            self.first_failure = index

    def count(self, kind: FailureKind) -> None:
        if kind is FailureKind.CONFIGURATION:
            self.configuration_errors += 1
        else:
            self.transient_errors += 1


class Forwarder:
    def __init__(
        self,
        settings: ForwarderSettings,
        writer: TableWriter,
        sender: KinesisSender,
        *,
        table: ServedTable,
        sqs: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Forwards the stream records of one served ``table`` (its ``writer`` writes that table).
        ``sqs``: client for ``settings.failure_queue_url`` (stream records the engine can never
        replicate). Without it, an item that cannot carry a version is only logged and counted, and a
        local write DynamoDB refuses for good is retried instead."""
        self._settings = settings
        self._table = table
        self._writer = writer
        self._sender = sender
        self._sqs = sqs
        self._clock = clock

    def process(self, records: Sequence[dict[str, Any]]) -> ForwardReport:
        report = ForwardReport()
        if not records:
            return report
        table = self._table.table
        context = ClassifyContext(
            names=table.version_attributes,
            local_region=table.local_region,
            peer_region=self._settings.peer_region,
            replicate_ttl_deletes=self._table.replicate_ttl_deletes,
            now=clock_now(self._clock()),
            max_clock_skew_seconds=table.max_clock_skew_seconds,
        )
        try:
            tombstones = self._writer.tombstones(
                r["dynamodb"]["Keys"] for r in records if needs_tombstone(r, context)
            )
            receipt_keys = [r["dynamodb"]["Keys"] for r in records if needs_receipt(r)]
            receipts = self._writer.removal_receipts(receipt_keys) if receipt_keys else {}
        except Exception as error:
            report.count(_log_failure(error, "could not read tombstones; the whole batch will be retried"))
            report.fail_at(0)
            return report
        decisions = classify_batch(records, tombstones, context, receipts)
        # What may cross under the table's residency rules (each decision's change without rules).
        sends = screen_batch(
            records,
            decisions,
            self._table.residency,
            table.version_attributes,
            table=table.name,
            tally=report.residency,
        )
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
            (index, change)
            for index, change in enumerate(sends)
            if change is not None and (report.first_failure is None or index < report.first_failure)
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

        resolved: list[tuple[int, Conflict]] = []  # (record index, conflict), appended in any order
        written: list[int] = []  # local deletes whose tombstone is written, appended in any order

        def write_key(
            indices: list[int],
        ) -> tuple[int | None, Counter[StampReason], FailureKind | None, list[tuple[int, str]]]:
            stamped: Counter[StampReason] = Counter()
            refused: list[tuple[int, str]] = []  # (record index, reason): to the failure queue
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
                            resolved.append((index, self._conflict(records[index], decision)))
                        elif result is StampResult.TOO_LARGE:
                            refused.append((index, TOO_LARGE_REASON))
                        elif decision.replaced is not None:
                            # Replaced before its stamp; an older version must not stay.
                            self._writer.restore(decision.key, decision.replaced, decision.stamp)
                    elif decision.action is Action.TOO_LARGE:
                        refused.append((index, TOO_LARGE_REASON))
                    elif decision.action is Action.DELETE_WINS:
                        assert decision.remembered is not None
                        self._writer.delete_if_older(
                            decision.key, decision.remembered, spare_unversioned=True
                        )
                        resolved.append((index, self._conflict(records[index], decision)))
                    else:
                        assert decision.change is not None
                        self._writer.remember_delete(
                            decision.key, decision.change.version, TOMBSTONE_SOURCE_LOCAL
                        )
                        written.append(index)  # its item is read after every tombstone is written
                except Exception as error:
                    kind = self._write_failure(error, index)
                    if kind is None:
                        refused.append((index, _reason(error)))
                        continue
                    return index, stamped, kind, refused
            return None, stamped, None, refused

        for failed, stamped, kind, refused in run_all(
            list(by_key.values()), write_key, LOCAL_WRITE_CONCURRENCY
        ):
            report.stamped += sum(stamped.values())
            report.stamped_by_reason.update(stamped)
            self._settle((failed, kind, refused), records, decisions, report)
        self._remove_recreated(sorted(written), records, decisions, report)
        # A record Lambda will deliver again records its conflict then.
        report.conflicts.extend(
            conflict
            for index, conflict in sorted(resolved, key=lambda found: found[0])
            if report.first_failure is None or index < report.first_failure
        )

    def _remove_recreated(
        self,
        deletes: list[int],
        records: Sequence[dict[str, Any]],
        decisions: list[Decision],
        report: ForwardReport,
    ) -> None:
        """After local deletes' tombstones: remove an older item a replicated upsert put back before
        its tombstone existed (docs/conflict-rules.md, "The write protocol and what it costs").

        One strongly consistent read of the deleted items for the batch, not a write per delete: an
        item put after a tombstone was written finds it in its own read after the put, so only items
        found here can still be older than their delete. Each found one is removed as any enforced
        delete is (``delete_if_older``, sparing an item without a version: the application's write
        after the delete, which is stamped after it). Failures as in ``_local_writes``."""
        deletes = [i for i in deletes if report.first_failure is None or i < report.first_failure]
        if not deletes:
            return
        try:
            present = self._writer.existing(decisions[i].key for i in deletes)
        except Exception as error:
            kind = _log_failure(error, "could not read the items of local deletes", record_index=deletes[0])
            report.fail_at(deletes[0])
            report.count(FailureKind.CONFIGURATION if kind is FailureKind.PERMANENT else kind)
            return
        by_key: dict[str, list[int]] = defaultdict(list)
        for index in deletes:
            if key_digest(decisions[index].key) in present:
                by_key[canonical_key(decisions[index].key)].append(index)

        def remove(indices: list[int]) -> tuple[int | None, FailureKind | None, list[tuple[int, str]]]:
            refused: list[tuple[int, str]] = []
            for index in indices:
                change = decisions[index].change
                assert change is not None
                try:
                    self._writer.delete_if_older(decisions[index].key, change.version, spare_unversioned=True)
                except Exception as error:
                    kind = self._write_failure(error, index)
                    if kind is None:
                        refused.append((index, _reason(error)))
                        continue
                    return index, kind, refused
            return None, None, refused

        for outcome in run_all(list(by_key.values()), remove, LOCAL_WRITE_CONCURRENCY):
            self._settle(outcome, records, decisions, report)

    def _write_failure(self, error: Exception, index: int) -> FailureKind | None:
        """What a failed local write does to the batch: None when it can never succeed and a failure
        queue is configured (its record goes there; a delete is still sent: its tombstone is written,
        only the local clean-up failed); otherwise the kind that stops the batch at ``index``, logged
        (without a failure queue, a refused write can only be retried, loudly)."""
        kind = classify_failure(error)
        if kind is FailureKind.PERMANENT and self._sqs is not None:
            return None
        _log_failure(error, "local write failed", record_index=index)
        return FailureKind.CONFIGURATION if kind is FailureKind.PERMANENT else kind

    def _settle(
        self,
        outcome: tuple[int | None, FailureKind | None, list[tuple[int, str]]],
        records: Sequence[dict[str, Any]],
        decisions: list[Decision],
        report: ForwardReport,
    ) -> None:
        """One key's local writes, (failed record index, its kind, refused (index, reason)), into the
        report: where its failure stops the batch, its refused records to the failure queue (a record
        that cannot go there stops the batch too)."""
        failed, kind, refused = outcome
        if failed is not None and kind is not None:
            report.fail_at(failed)
            report.count(kind)
        for index, reason in refused:
            if reason is TOO_LARGE_REASON:
                report.too_large += 1
            if not self._route_refusal(records[index], reason, decisions[index], report):
                report.fail_at(index)

    def _conflict(self, record: dict[str, Any], decision: Decision) -> Conflict:
        """The conflict a stamp given (``STAMP``) or a remembered delete's win (``DELETE_WINS``)
        resolved, with what the decision knows: no read of its own. The key is never logged for an
        item the table's residency rules keep here (docs/residency.md: nothing of a filtered item
        reaches a log line), whatever ``conflict_log_keys`` says."""
        rules = self._table.residency
        image = record["dynamodb"].get("NewImage") or {}
        loggable = not rules.restricts or (
            rules.verdict({k: v for k, v in image.items() if k not in reserved_attributes(image)})
            is Verdict.EXPORTED
        )
        if decision.action is Action.DELETE_WINS:
            return Conflict(
                ConflictKind.DELETE_WON,
                decision.key,
                decision.remembered,
                decision.written,
                key_loggable=loggable,
            )
        assert decision.reason is not None
        return Conflict(
            ConflictKind.STAMPED,
            decision.key,
            decision.stamp,
            decision.written,
            unknown=None if decision.written else "loser: the write carried no valid version (see reason)",
            reason=decision.reason.value,
            key_loggable=loggable,
        )

    def _send(self, to_send: list[tuple[int, Change]], report: ForwardReport) -> None:
        if not to_send:
            return
        table = self._table.table
        try:
            packed = pack_changes(
                [change for _, change in to_send],
                origin=table.local_region,
                table=table.table_name,
                name=table.name,
                version_attributes=table.version_attributes,
                max_record_bytes=self._settings.max_record_bytes,
            )
        except ConfigurationError as error:
            logger.error(f"cannot pack the batch (configuration: needs a person): {error}")
            report.count(FailureKind.CONFIGURATION)
            report.fail_at(to_send[0][0])
            return
        outgoing = [OutgoingRecord(data, partition_key(to_send[span.start][1])) for data, span in packed]
        try:
            result = self._sender.send(outgoing)
        except PeerCredentialsError as error:
            logger.error(f"no usable peer credentials, nothing sent (configuration: needs a person): {error}")
            report.count(FailureKind.CONFIGURATION)
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
            kind = result.failure_kind or FailureKind.TRANSIENT
            report.count(kind)
            logger.error(
                "records not delivered to the peer inbox"
                + (" (configuration: needs a person)" if kind is FailureKind.CONFIGURATION else ""),
                extra={"undelivered": len(result.undelivered), "last_error": result.last_error},
            )

    def _route_refusal(
        self, record: dict[str, Any], reason: str, decision: Decision, report: ForwardReport
    ) -> bool:
        """Send a stream record's location and why the engine cannot replicate it (its local write is
        refused for good, or its item cannot carry a version) to the failure queue; never its images.
        False: the queue could not take it, and the record must be retried rather than lost silently.
        Without a failure queue (only an item too large to carry a version gets here) it is logged."""
        stream = record.get("dynamodb", {})
        body = {
            "kind": POISON_MESSAGE_KIND,
            "reason": reason,
            "eventSourceARN": record.get("eventSourceARN"),
            "eventID": record.get("eventID"),
            "sequenceNumber": stream.get("SequenceNumber"),
            "action": decision.action.value,
            "keyDigest": key_digest(decision.key),
        }
        if self._sqs is None or not self._settings.failure_queue_url:
            logger.error("a local write cannot be replicated (no failure queue)", extra=body)
            return True
        logger.error(
            "local write refused; stream record routed to the failure queue",
            extra={"reason": reason, "sequence_number": body["sequenceNumber"]},
        )
        try:
            self._sqs.send_message(QueueUrl=self._settings.failure_queue_url, MessageBody=json.dumps(body))
        except Exception as error:
            report.count(_log_failure(error, "could not reach the failure queue; the record will be retried"))
            return False
        report.refused += 1
        return True


def _reason(error: BaseException) -> str:
    code = getattr(error, "response", {}).get("Error", {}).get("Code", error.__class__.__name__)
    reason = f"DynamoDB refused the local write: {code}"
    return reason[:MAX_REASON_CHARACTERS]


def _log_failure(error: BaseException, message: str, **extra: Any) -> FailureKind:
    kind = classify_failure(error)
    details = {"failure": kind.value, "error": error.__class__.__name__, **extra}
    if kind is FailureKind.CONFIGURATION:
        logger.error(f"{message} (configuration: needs a person)", extra=details, exc_info=error)
    else:
        logger.warning(message, extra=details, exc_info=error)
    return kind
