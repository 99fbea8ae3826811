"""The replicator's batch: decode and check each inbox record, route it to the served table it names,
coalesce the changes per table and key, apply the winners with bounded concurrency, and sort every
failure into transient, permanent or configuration
(``replication.failures``; the table is in docs/failure-handling.md).

- A record that cannot be read at all, or is for a table this replicator does not serve (a *poison
  message*), and a change that can never be applied
  (a *refused change*: DynamoDB would refuse it, it is malformed, its version is beyond the allowed
  clock skew or it carries a reserved attribute name; ``replication.admission``) go to the failure queue with
  where they are and why, never their contents; the rest of the record and of the batch is applied
  and the shard moves on.
- Transient and configuration failures are reported in the partial batch response: Lambda retries
  from the first record that holds such a change. Nothing is dropped that a retry could apply.

Memory: a record is inflated at most to ``decode_budget_bytes`` (by the function's memory), and the
batch is decoded and applied in runs of records whose bodies together stay within that budget, so
what a batch holds decoded at once is bounded whatever its records inflate to.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from replication.admission import check_change
from replication.changes import Change
from replication.coalesce import coalesce
from replication.conflicts import Conflict, ConflictKind, resolved
from replication.errors import BodyTooLargeError, PermanentChangeError, WireFormatError
from replication.failures import FailureKind, classify_failure
from replication.keys import key_digest
from replication.lag import END_TO_END, Passage, arrival_time, origin_time, stage_lags
from replication.parallel import run_all
from replication.settings import ReplicatorSettings, ServedTable
from replication.table_writer import Applied, Created, Outcome, TableWriter, is_item_too_large
from replication.telemetry import logger
from replication.versions import Version, latest_allowed
from replication.wire import FORWARDER_BODY_BYTES, KIND_PROBE, MAX_BODY_BYTES, Envelope, decode_body, inflate

POISON_MESSAGE_KIND = "poison"
# SQS takes 256 KiB per message (SendMessage); a failure message stays well below.
MAX_FAILURE_MESSAGE_BYTES = 200 * 1024
MAX_REASON_CHARACTERS = 200
# Decoding builds Python objects from the inflated JSON: at worst about 42 bytes of objects per byte
# of body (lists nested in lists: an 80-byte list per 2 bytes of text, CPython 3.11), all the changes
# made from them included. tests/engine/test_decoding_bounds.py holds the worst shapes to this figure.
DECODE_EXPANSION = 48
# The share of the function's memory that decoded records may use; the rest is the runtime with boto3
# (about 100 MB), the event itself (at most 6 MB) and the writes in flight.
DECODE_MEMORY_SHARE = 0.6


def decode_budget_bytes(function_memory_mb: int) -> int:
    """Inflated body bytes one run of records may hold, for a function with this much memory (MB).

    512 MB (the module's minimum) gives 6.4 MiB: more than any forwarder's body
    (``FORWARDER_BODY_BYTES``), so no record a forwarder made is refused for its size. With less
    memory, a record beyond the budget is retried as a configuration error rather than refused.
    """
    by_memory = int(function_memory_mb * 1024 * 1024 * DECODE_MEMORY_SHARE / DECODE_EXPANSION)
    return min(MAX_BODY_BYTES, by_memory)


@dataclass
class TableApplyReport:
    """What one served table's changes came to in a batch (its metrics carry the ``table`` dimension)."""

    changes_received: int = 0
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)  # by cause, as ``ApplyReport.refused``
    configuration_errors: int = 0
    transient_errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)  # end to end, as stage_lags_ms[END_TO_END]
    # Applied changes' lag per stage (replication.lag), milliseconds, by stage name.
    stage_lags_ms: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    # Changes that lost to a newer version or delete (replication.conflicts), duplicates left out.
    conflicts: list[Conflict] = field(default_factory=list)


@dataclass
class ApplyReport:
    """The batch's totals, and in ``tables`` the share of each served table (by logical name). A
    poison message, a probe and a failure of the failure queue itself belong to no table."""

    outcomes: Counter[Outcome] = field(default_factory=Counter)
    poison: int = 0  # records refused whole, sent to the failure queue
    # Changes refused (permanent), sent to the failure queue, by cause: the error's class name
    # (``VersionAheadOfClock``, ``ReservedAttributeInChange``, ``ItemValidationError``,
    # ``WireFormatError``) or DynamoDB's error code (``ValidationException``).
    refused: Counter[str] = field(default_factory=Counter)
    configuration_errors: int = 0  # changes (or records) retried until a person acts
    transient_errors: int = 0  # changes retried because of throttling, 5xx, timeouts
    probes: int = 0
    changes_received: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    failed: set[int] = field(default_factory=set)  # indices of records to retry
    tables: defaultdict[str, TableApplyReport] = field(default_factory=lambda: defaultdict(TableApplyReport))


@dataclass(frozen=True)
class Refusal:
    """One change that can never be applied: its position in its record, why, and its key's digest."""

    position: int
    reason: str
    cause: str  # as counted in ``ApplyReport.refused``
    key_digest: str | None = None


@dataclass
class _Run:
    """Decoded changes of consecutive records, applied together."""

    # Logical table -> (record index, change): keys are coalesced within their table only.
    tables: defaultdict[str, list[tuple[int, Change]]] = field(default_factory=lambda: defaultdict(list))
    # id(change) -> (record index, position in the record's changes)
    located: dict[int, tuple[int, int]] = field(default_factory=dict)
    # record index -> when that record was sent and reached the inbox (replication.lag)
    passed: dict[int, Passage] = field(default_factory=dict)
    body_bytes: int = 0


class Replicator:
    def __init__(
        self,
        settings: ReplicatorSettings,
        writers: Mapping[str, TableWriter],
        sqs: Any,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``writers``: one per served table, by logical name (``settings.tables``)."""
        self._settings = settings
        self._writers = writers
        self._sqs = sqs
        self._clock = clock
        self._budget = decode_budget_bytes(settings.function_memory_mb)

    def process(self, records: Sequence[dict[str, Any]]) -> ApplyReport:
        report = ApplyReport()
        refusals: dict[int, list[Refusal]] = defaultdict(list)
        record_tables: dict[int, str] = {}  # record index -> its served table
        run = _Run()
        for index, record in enumerate(records):
            try:
                body = inflate(_record_data(record), max_body_bytes=self._budget)
            except BodyTooLargeError as error:
                if self._budget >= FORWARDER_BODY_BYTES:
                    self._route_poison(index, record, str(error), report)
                    continue
                # A forwarder may have made it: this function is given too little memory to decode it.
                logger.error(
                    "record too large for this function's memory; it will be retried "
                    "(configuration: needs a person; give the replicator at least 512 MB)",
                    extra={"reason": str(error), "sequence_number": _location(record)["sequenceNumber"]},
                )
                report.configuration_errors += 1
                report.failed.add(index)
                continue
            except WireFormatError as error:
                self._route_poison(index, record, str(error), report)
                continue
            if run.tables and run.body_bytes + len(body) > self._budget:
                self._apply(run, refusals, report)
                run = _Run()
            run.body_bytes += len(body)
            try:
                envelope = self._check_envelope(decode_body(body))
                table = None if envelope.kind == KIND_PROBE else self._served_table(envelope)
            except WireFormatError as error:
                self._route_poison(index, record, str(error), report)
                continue
            del body
            if table is None:
                self._receive_probe(index, envelope, report)
                continue
            record_tables[index] = table.name
            run.passed[index] = Passage(envelope.sent_at_ms / 1000, arrival_time(record))
            self._admit(index, envelope, table=table, run=run, refused=refusals[index], report=report)
        self._apply(run, refusals, report)
        for index, refused in sorted(refusals.items()):
            if refused:
                self._route_refusals(index, records[index], refused, report, record_tables[index])
        return report

    # -- decoding and admission ---------------------------------------------------------------

    def _check_envelope(self, envelope: Envelope) -> Envelope:
        side = self._settings.side
        if envelope.origin == side.local_region:
            raise WireFormatError(f"message claims to come from this side ({envelope.origin})")
        if envelope.version_attributes != side.version_attributes:
            raise WireFormatError(
                "the peer uses other version attribute names "
                f"({envelope.version_attributes.timestamp[:100]}, {envelope.version_attributes.origin[:100]})"
            )
        return envelope

    def _served_table(self, envelope: Envelope) -> ServedTable:
        """The served table a changes message is for: by its logical table name, or, in a record from
        a forwarder older than the table map (no name), by its sender table (docs/wire-format.md,
        "Versions"). A table this replicator does not serve, or a sender table other than the served
        table's peer table, makes the record a poison message (permanent: retrying cannot route it;
        it goes to the failure queue with its reason, and the shard moves on for the other tables)."""
        served = ", ".join(sorted(self._settings.tables)) or "none"
        if envelope.name is None:
            table = self._settings.table_for_peer_table(envelope.table)
            if table is None:
                raise WireFormatError(
                    f"message without a logical table name for sender table {envelope.table[:100]!r}, "
                    f"which is no served table's peer table (served: {served[:200]})"
                )
            return table
        table = self._settings.tables.get(envelope.name)
        if table is None:
            raise WireFormatError(
                f"message for table {envelope.name[:100]!r}, which this replicator does not serve "
                f"(served: {served[:200]}); add it to the table map on both sides, then redrive"
            )
        if envelope.table != table.peer_table_name:
            raise WireFormatError(
                f"message for table {table.name!r} from sender table {envelope.table[:100]!r}, "
                f"expected {table.peer_table_name!r}"
            )
        return table

    def _admit(
        self,
        index: int,
        envelope: Envelope,
        *,
        table: ServedTable,
        run: _Run,
        refused: list[Refusal],
        report: ApplyReport,
    ) -> None:
        """Changes DynamoDB would accept join the run; the others are refused before coalescing, so a
        refused change never hides an older, valid change of its key."""
        received = len(envelope.changes) + len(envelope.refused)
        report.changes_received += received
        report.tables[table.name].changes_received += received
        refused.extend(
            Refusal(position, reason, WireFormatError.__name__) for position, reason in envelope.refused
        )
        taken = {position for position, _ in envelope.refused}
        positions = (p for p in range(len(envelope.changes) + len(taken)) if p not in taken)
        latest = latest_allowed(self._clock(), self._settings.side.max_clock_skew_seconds)
        for position, change in zip(positions, envelope.changes, strict=True):
            try:
                check_change(change, table.key_schema, latest)
            except PermanentChangeError as error:
                refused.append(
                    Refusal(position, _reason(error), error.__class__.__name__, key_digest(change.key))
                )
                continue
            run.tables[table.name].append((index, change))
            run.located[id(change)] = (index, position)

    # -- applying -----------------------------------------------------------------------------

    def _apply(self, run: _Run, refusals: dict[int, list[Refusal]], report: ApplyReport) -> None:
        winners = [
            (name, slot) for name, changes in run.tables.items() for slot in coalesce(changes).values()
        ]
        if not winners:
            return
        concurrency = self._settings.apply_concurrency
        results: list[Applied | Created | BaseException] = list(
            run_all(winners, lambda winner: self._writers[winner[0]].write(winner[1].change), concurrency)
        )
        # The items the run's puts created: each table's tombstones in one read after all its puts
        # (TableWriter.check_created), then each remembered delete that wins enforced.
        created: defaultdict[str, list[tuple[int, Created]]] = defaultdict(list)
        for index, ((name, _), result) in enumerate(zip(winners, results, strict=True)):
            if isinstance(result, Created):
                created[name].append((index, result))
        for name, entries in created.items():
            checked = self._writers[name].check_created([entry for _, entry in entries], concurrency)
            for (index, _), outcome in zip(entries, checked, strict=True):
                results[index] = outcome
        applied_at = self._clock()
        for (name, slot), applied in zip(winners, results, strict=True):
            tally = report.tables[name]
            assert not isinstance(applied, Created)
            if not isinstance(applied, BaseException):
                result = applied.outcome
                report.outcomes[result] += 1
                tally.outcomes[result] += 1
                conflict = _conflict(slot.change, applied)
                if conflict is not None:
                    tally.conflicts.append(conflict)
                if result is Outcome.APPLIED and not slot.change.is_delete:
                    # A delete's version is made from its stream record's second: too coarse to time.
                    self._time(run, slot.change, applied_at, tally, report)
                continue
            kind = classify_failure(applied)
            if kind is FailureKind.PERMANENT:
                # The newest change of its key in this run; older ones of the key were superseded by it.
                source, position = run.located[id(slot.change)]
                refusals[source].append(
                    Refusal(position, _reason(applied), _cause(applied), key_digest(slot.change.key))
                )
                continue
            _log_retried(kind, applied, "change not applied; its records will be retried")
            if kind is FailureKind.CONFIGURATION:
                report.configuration_errors += 1
                tally.configuration_errors += 1
            else:
                report.transient_errors += 1
                tally.transient_errors += 1
            report.failed.update(slot.sources)

    @staticmethod
    def _time(
        run: _Run, change: Change, applied_at: float, tally: TableApplyReport, report: ApplyReport
    ) -> None:
        """An applied change's lag per stage (replication.lag)."""
        origin = origin_time(change.version.timestamp, change.stream_created)
        lags = stage_lags(origin, run.passed[run.located[id(change)][0]], applied_at)
        for stage, seconds in lags.items():
            tally.stage_lags_ms[stage].append(seconds * 1000)
        report.latencies_ms.append(lags[END_TO_END] * 1000)
        tally.latencies_ms.append(lags[END_TO_END] * 1000)

    # -- the failure queue ---------------------------------------------------------------------

    def _route_poison(self, index: int, record: dict[str, Any], reason: str, report: ApplyReport) -> None:
        # Never log or send decoded contents: only where the record is and why it was refused.
        logger.error(
            "poison message routed to the failure queue",
            extra={"reason": _truncate(reason), "sequence_number": _location(record)["sequenceNumber"]},
        )
        if self._send({**_location(record), "reason": _truncate(reason)}, index, report):
            report.poison += 1

    def _route_refusals(
        self, index: int, record: dict[str, Any], refused: list[Refusal], report: ApplyReport, table: str
    ) -> None:
        refused.sort(key=lambda refusal: refusal.position)
        summary = (
            f"{len(refused)} change(s) refused; first, change {refused[0].position}: {refused[0].reason}"
        )
        body: dict[str, Any] = {
            **_location(record),
            "table": table,
            "reason": _truncate(summary),
            "refusedCount": len(refused),
        }
        listed: list[dict[str, Any]] = []
        size = len(json.dumps(body)) + 32
        for refusal in refused:
            entry = {"change": refusal.position, "reason": _truncate(refusal.reason)}
            if refusal.key_digest:
                entry["keyDigest"] = refusal.key_digest
            size += len(json.dumps(entry)) + 1
            if size > MAX_FAILURE_MESSAGE_BYTES:
                break  # the record itself stays in the inbox for its retention period
            listed.append(entry)
        body["refused"] = listed
        logger.error(
            "changes refused and routed to the failure queue",
            extra={
                "refused": len(refused),
                "table": table,
                "first_reason": _truncate(refused[0].reason),
                "sequence_number": body["sequenceNumber"],
            },
        )
        if self._send(body, index, report):
            report.refused.update(refusal.cause for refusal in refused)
            report.tables[table].refused.update(refusal.cause for refusal in refused)

    def _send(self, body: dict[str, Any], index: int, report: ApplyReport) -> bool:
        try:
            self._sqs.send_message(
                QueueUrl=self._settings.failure_queue_url,
                MessageBody=json.dumps({"kind": POISON_MESSAGE_KIND, **body}),
            )
        except Exception as error:
            kind = classify_failure(error)
            _log_retried(kind, error, "could not reach the failure queue; the record will be retried")
            if kind is FailureKind.CONFIGURATION:
                report.configuration_errors += 1
            else:
                report.transient_errors += 1
            report.failed.add(index)
            return False
        return True

    def _receive_probe(self, index: int, envelope: Envelope, report: ApplyReport) -> None:
        assert envelope.probe_id is not None
        try:
            # Any table's writer: probes are rows of the shared tombstone table, for no table.
            next(iter(self._writers.values())).record_probe(envelope.probe_id, envelope.origin)
        except Exception as error:
            kind = classify_failure(error)
            _log_retried(kind, error, "could not record the probe; its record will be retried")
            if kind is FailureKind.CONFIGURATION:
                report.configuration_errors += 1
            else:
                report.transient_errors += 1
            report.failed.add(index)
            return
        logger.info("credentials probe received", extra={"probe_id": envelope.probe_id})
        report.probes += 1


def _conflict(change: Change, applied: Applied) -> Conflict | None:
    """The conflict a change that lost records (None: applied, or a duplicate of what is held).
    The loser is the change itself; the winner what the failed condition returned."""
    if applied.outcome not in (Outcome.STALE, Outcome.TOMBSTONED):
        return None
    held: Version | None = applied.held
    if held is None:
        kind = (
            ConflictKind.DELETE_WON if applied.outcome is Outcome.TOMBSTONED else ConflictKind.STALE_DROPPED
        )
        unknown = "winner: DynamoDB returned no item with the failed condition"
        return Conflict(kind, change.key, None, change.version, unknown=unknown)
    kind = resolved(change.version, held)
    return None if kind is None else Conflict(kind, change.key, held, change.version)


def _record_data(record: dict[str, Any]) -> bytes:
    try:
        return base64.b64decode(record["kinesis"]["data"], validate=True)
    except (KeyError, TypeError, binascii.Error, ValueError):
        raise WireFormatError("record data is not base64") from None


def _location(record: dict[str, Any]) -> dict[str, Any]:
    """Where a record is: enough to read it again from the inbox while the stream retains it."""
    kinesis = record.get("kinesis") if isinstance(record.get("kinesis"), dict) else {}
    return {
        "eventSourceARN": record.get("eventSourceARN"),
        "eventID": record.get("eventID"),
        "sequenceNumber": kinesis.get("sequenceNumber"),
        "partitionKey": kinesis.get("partitionKey"),
        "approximateArrivalTimestamp": kinesis.get("approximateArrivalTimestamp"),
    }


def _reason(error: BaseException) -> str:
    if isinstance(error, PermanentChangeError):
        return f"{error.__class__.__name__}: {error}"
    if isinstance(error, ClientError) and is_item_too_large(error):
        # Possible for a change that fits on the peer: merged with this side's excluded attributes
        # (docs/residency.md), the item may pass DynamoDB's 400 KB.
        return f"DynamoDB refused the write: the item would exceed 400 KB ({_cause(error)})"
    return f"DynamoDB refused the write: {_cause(error)}"


def _cause(error: BaseException) -> str:
    if isinstance(error, PermanentChangeError):
        return error.__class__.__name__
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", error.__class__.__name__))


def _truncate(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARACTERS else text[: MAX_REASON_CHARACTERS - 3] + "..."


def _log_retried(kind: FailureKind, error: BaseException, message: str) -> None:
    extra = {"failure": kind.value, "error": error.__class__.__name__, "detail": _truncate(str(error))}
    if kind is FailureKind.CONFIGURATION:
        # Loud: retrying cannot help until a person fixes the deployment (ConfigurationErrors alarm).
        logger.error(f"{message} (configuration: needs a person)", extra=extra)
    else:
        logger.warning(message, extra=extra)
