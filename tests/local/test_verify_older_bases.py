"""The oracle and an ``UpdateItem`` made on an item older than its table held (docs/conflict-rules.md,
"Writes without a newer version": the crash-mid-batch window).

An ``UpdateItem`` keeps what it was made on: ``ReturnValues=ALL_NEW`` returns "all of the attributes
of the item, as they appear after the UpdateItem operation" (DynamoDB API reference, UpdateItem,
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateItem.html). The rules let a
table hold an item older than one it held only while the application's own write lowered the version
(or deleted the item) and the forwarder has not handled that yet; an update made on an older item
outside that window carries what an engine fault let the table hold, and the oracle counts it lost.

The histories are a reduced ``make chaos`` run's trace of scenario 5 (issue 9: cn-north-1's forwarder
killed twice; key ``crash-mid-batch#user#shared-00000``, its writes' versions and times as recorded,
seconds after 1796030000), fed to each side's ``Observations`` as the stream records
Lambda delivers (StreamRecord: Keys, NewImage, OldImage, ApproximateCreationDateTime rounded down to
the second; https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_StreamRecord.html).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from replication_ops.local.loadgen import DELETE, PUT, UPDATE, LoadResult, Operation, Write
from replication_ops.local.verify import updates_on_older_versions, verify
from replication_ops.local.watcher import Observations, key_of, normalize_item

CN, US = "cn-north-1", "us-east-1"
TS, ORIGIN = "last_update_timestamp", "last_updater_region"
MARK = "_ddbrep_deleting"
PK, SK = "crash-mid-batch#user#shared-00000", "profile"
KEY = {"pk": {"S": PK}, "sk": {"S": SK}}
K = key_of(KEY)
T0 = 1796030000  # the trace's versions are T0 + seconds


def version(seconds: str) -> str:
    return str(Decimal(T0) + Decimal(seconds))


def image(at: str | None, origin: str | None, **fields: str) -> dict[str, Any]:
    """An item of the key: ``fields`` as Strings, the version (T0 + ``at``, ``origin``) if given."""
    item: dict[str, Any] = {**KEY, **{name: {"S": value} for name, value in fields.items()}}
    if at is not None and origin is not None:
        item.update({TS: {"N": version(at)}, ORIGIN: {"S": origin}})
    return item


def updated(base: dict[str, Any], at: str, origin: str, **fields: str) -> dict[str, Any]:
    """What an UpdateItem ``SET`` of ``fields`` and the version returns (ALL_NEW) when made on ``base``."""
    return {**base, **image(at, origin, **fields)}


def unmarked(item: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in item.items() if name != MARK}


@dataclass
class History:
    """One key's writes (both sides' generators) and the records each side's table-stream poller read."""

    writes: list[Write] = field(default_factory=list)
    seen: dict[str, Observations] = field(
        default_factory=lambda: {CN: Observations(CN), US: Observations(US)}
    )
    slot: int = 0

    def write(
        self,
        side: str,
        kind: str,
        at: str | None,
        item: dict[str, Any] | None,
        *,
        old: dict[str, Any] | None,
        took: tuple[float, float],
    ) -> Write:
        """A write as the generator records it: a conflict slot's write, versioned by the shared clock
        (``at``), with what DynamoDB returned (ALL_OLD of puts and deletes, ALL_NEW of updates)."""
        self.slot += 1
        fields = {} if item is None else {n: v["S"] for n, v in item.items() if "S" in v and n not in KEY}
        operation = Operation(side, 0.0, kind, PK, SK, fields, conflict=self.slot)
        written = Write(
            operation,
            None if at is None else (Decimal(version(at)), side),
            item,
            old,
            T0 + took[0],
            T0 + took[1],
        )
        self.writes.append(written)
        return written

    def record(self, side: str, old: dict[str, Any] | None, new: dict[str, Any] | None, second: int) -> None:
        """A stream record of the key on ``side`` (NEW_AND_OLD_IMAGES) at T0 + ``second``."""
        event = "INSERT" if old is None else "REMOVE" if new is None else "MODIFY"
        body: dict[str, Any] = {
            "Keys": KEY,
            "ApproximateCreationDateTime": T0 + second,
            "SequenceNumber": f"{T0 + second}{len(self.seen[side].changes.get(K, [])):021d}",
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if old is not None:
            body["OldImage"] = old
        if new is not None:
            body["NewImage"] = new
        record = {"eventName": event, "eventSource": "aws:dynamodb", "awsRegion": side, "dynamodb": body}
        self.seen[side].add(record, T0 + second + 0.5, TS, ORIGIN)

    def verify(self, cn: dict[str, Any] | None, us: dict[str, Any] | None) -> Any:
        tables = {CN: {} if cn is None else {K: cn}, US: {} if us is None else {K: us}}
        return verify(tables, LoadResult(self.writes), self.seen)


# The trace's items: what each write left (the peer's copies are the replicator's, as the peer sent them).
A = image("1396.151795", CN, city="Tianjin")
B = image("1396.151795", US, email="b@example.com")  # us's update, made on no item
C = image("1399.404194", US, city="Boston")
P = image("1399.757264", US, city="New York", street="5th Avenue")  # us's put: the late replicated one
N = image("1400.644309", CN, city="Beijing", street="Chang'an Avenue")  # cn's put, newer than P
LOWERED = updated(N, "1399.757264", CN, email="tie@example.cn")  # cn's late tie update: older than N
MARKED = {**P, MARK: {"S": f"{version('1400')} cn-north-1"}}  # cn's forwarder marks P for cn's delete


def _until_the_lowering(history: History, *, lowered: bool = True) -> None:
    """The trace up to cn's late tie update that lowered N's version (``lowered``), and us's put P
    replacing what cn's table held then (the replicator applies P: newer than the lowered version,
    us-east-1 > cn-north-1 at the same timestamp)."""
    h = history
    h.write(CN, PUT, "1396.151795", A, old=None, took=(1396.152, 1396.329))
    h.record(CN, None, A, 1396)
    h.write(US, UPDATE, "1396.151795", B, old=None, took=(1396.402, 1396.790))
    h.record(US, None, B, 1396)
    h.record(CN, A, B, 1398)
    h.write(US, PUT, "1399.404194", C, old=B, took=(1399.404, 1399.443))
    h.record(US, B, C, 1399)
    h.write(US, DELETE, None, None, old=C, took=(1399.674, 1399.757))
    h.record(US, C, None, 1399)
    h.write(US, PUT, "1399.757264", P, old=None, took=(1399.757, 1399.815))
    h.record(US, None, P, 1399)
    h.write(CN, DELETE, None, None, old=B, took=(1399.965, 1400.095))
    h.record(CN, B, None, 1400)
    h.write(CN, PUT, "1400.644309", N, old=None, took=(1400.644, 1401.273))
    h.record(CN, None, N, 1401)
    if lowered:
        h.write(CN, UPDATE, "1399.757264", LOWERED, old=None, took=(1401.394, 1401.472))
        h.record(CN, N, LOWERED, 1401)
        h.record(CN, LOWERED, P, 1403)
    else:  # the replicator applies P over N, which is newer: what the rules never let happen
        h.record(CN, N, P, 1403)


def _update_on(history: History, base: dict[str, Any], second: int) -> dict[str, Any]:
    """us's update of P (newer than N), then cn's application's update made on ``base`` at
    T0 + ``second`` (newer than everything; it keeps a delete mark ``base`` carries, which cn's
    forwarder then takes off); both sides end with cn's update. Returns what they hold."""
    h = history
    on_us = updated(P, "1402.636047", US, street="Broadway")
    h.write(US, UPDATE, "1402.636047", on_us, old=None, took=(1402.636, 1402.784))
    h.record(US, P, on_us, 1402)
    update = updated(base, f"{second}.233326", CN, zipcode="100000")
    h.write(CN, UPDATE, f"{second}.233326", update, old=None, took=(second + 0.233, second + 0.269))
    h.record(CN, base, update, second)
    final = unmarked(update)
    if MARK in update:
        h.record(CN, update, final, second + 2)
    h.record(US, on_us, final, second + 11)
    return final


def test_the_trace_an_update_made_on_the_older_item_before_the_forwarders_restore_keeps_it() -> None:
    """The trace itself: cn's forwarder, killed mid-batch, had not put N back when cn's application
    updated the key (newer than N): DynamoDB made the update on what the table held, us's put P (and
    the mark of cn's delete on it). Both sides hold that update, the documented outcome: N is lost to
    it, and the oracle counts nothing lost."""
    history = History()
    _until_the_lowering(history)
    history.record(CN, P, MARKED, 1405)
    final = _update_on(history, MARKED, 1406)
    assert final["city"] == P["city"] and final["street"] == P["street"]
    assert updates_on_older_versions(LoadResult(history.writes), history.seen) == {}
    result = history.verify(final, final)
    assert result.converged, result.examples


def test_without_the_update_the_restored_put_is_expected_on_both_sides() -> None:
    """The trace without the updates after the lowering: N is the newest write, so the forwarder puts
    it back; both sides holding us's older put P instead is a loss."""
    history = History()
    _until_the_lowering(history)
    history.record(CN, P, N, 1404)  # the forwarder's restore: N as cn's put made it
    history.record(US, P, N, 1405)
    assert history.verify(N, N).converged
    stale = History()
    _until_the_lowering(stale)
    result = stale.verify(P, P)
    assert result.lost == [K] and result.lost_by_side == {CN: 1, US: 1}


def test_an_update_on_the_older_item_with_no_lowering_write_before_it_is_a_loss() -> None:
    """The same update, but no application write lowered N: the table held P over N only because a
    stale change replaced a newer version, which the rules never allow. The update, as DynamoDB made
    it, is on both sides, and the oracle still counts N lost to it."""
    history = History()
    _until_the_lowering(history, lowered=False)
    history.record(CN, P, MARKED, 1405)
    final = _update_on(history, MARKED, 1406)
    older = updates_on_older_versions(LoadResult(history.writes), history.seen)
    assert set(older) == {K}
    assert older[K].held == (Decimal(version("1400.644309")), CN, False)
    assert older[K].base == (Decimal(version("1399.757264")), US, False)
    result = history.verify(final, final)
    assert result.lost == [K] and result.lost_by_side == {CN: 1, US: 0}
    assert "older than its table held" in result.examples[0]["reason"]


def test_an_update_made_after_the_restore_is_expected_on_the_restored_item() -> None:
    """The forwarder put N back before cn's application updated the key: the update is made on N,
    and that is what both sides must hold."""
    history = History()
    _until_the_lowering(history)
    history.record(CN, P, N, 1404)
    final = _update_on(history, N, 1406)
    assert final["city"] == N["city"]
    assert history.verify(final, final).converged


def test_an_update_after_the_restore_made_on_the_older_item_again_is_a_loss() -> None:
    """The forwarder put N back, then us's older put P replaced it again (a stale change applied: no
    application write lowered N after the restore), and cn's update was made on P: N is lost outside
    the window, and the oracle says so although both sides hold the update as DynamoDB made it."""
    history = History()
    _until_the_lowering(history)
    history.record(CN, P, N, 1404)
    history.record(CN, N, P, 1405)
    final = _update_on(history, P, 1406)
    assert set(updates_on_older_versions(LoadResult(history.writes), history.seen)) == {K}
    assert history.verify(final, final).lost == [K]


def test_an_update_older_than_what_it_was_not_made_on_is_left_to_the_last_writer_wins_order() -> None:
    """cn's update made on P in the window but older than N: N is the newest write and must be put
    back over it; both sides holding the update instead is a loss of N."""
    history = History()
    _until_the_lowering(history)
    update = updated(P, "1400.5", CN, zipcode="100000")
    history.write(CN, UPDATE, "1400.5", update, old=None, took=(1403.5, 1403.6))
    history.record(CN, P, update, 1403)
    assert updates_on_older_versions(LoadResult(history.writes), history.seen) == {}
    history.record(CN, update, N, 1404)
    history.record(US, P, N, 1405)
    assert history.verify(N, N).converged
    assert history.verify(unmarked(update), unmarked(update)).lost == [K]


def test_an_application_delete_opens_the_window_and_the_engines_removal_closes_it() -> None:
    """cn's application deletes N; us's older put P arrives before cn's forwarder has written the
    delete's tombstone (docs/conflict-rules.md, "Deletes and tombstones"), and an update made on it
    then keeps it. Once the forwarder removed P, an update made on an older item that came back is a
    loss."""
    history = History()
    history.write(CN, PUT, "1400.644309", N, old=None, took=(1400.644, 1401.273))
    history.record(CN, None, N, 1401)
    history.write(CN, DELETE, None, None, old=N, took=(1401.5, 1401.6))
    history.record(CN, N, None, 1401)
    history.write(US, PUT, "1399.757264", P, old=None, took=(1399.757, 1399.815))
    history.record(US, None, P, 1399)
    history.record(CN, None, P, 1402)  # before the tombstone: the replicator's INSERT
    kept = History(list(history.writes), _copied(history.seen), history.slot)
    update = updated(P, "1403.1", CN, zipcode="100000")
    kept.write(CN, UPDATE, "1403.1", update, old=None, took=(1403.1, 1403.2))
    kept.record(CN, P, update, 1403)
    assert updates_on_older_versions(LoadResult(kept.writes), kept.seen) == {}
    history.record(CN, P, None, 1403)  # the forwarder removes P (the delete is newer)
    history.record(CN, None, P, 1404)  # P comes back: the tombstone is there, an engine fault
    update = updated(P, "1405.1", CN, zipcode="100000")
    history.write(CN, UPDATE, "1405.1", update, old=None, took=(1405.1, 1405.2))
    history.record(CN, P, update, 1405)
    assert set(updates_on_older_versions(LoadResult(history.writes), history.seen)) == {K}


def _copied(seen: dict[str, Observations]) -> dict[str, Observations]:
    copies = {}
    for side, observed in seen.items():
        copy = Observations(side)
        copy.removes = {k: list(v) for k, v in observed.removes.items()}
        copy.changes = {k: list(v) for k, v in observed.changes.items()}
        copy.history = {k: list(v) for k, v in observed.history.items()}
        copies[side] = copy
    return copies


def test_observations_keep_each_keys_records_in_stream_order() -> None:
    """What the check reads: per key, each record's versions, second, new image and removed item."""
    history = History()
    history.record(CN, None, N, 1401)
    history.record(CN, N, LOWERED, 1401)
    history.record(CN, LOWERED, None, 1402)
    changes = history.seen[CN].changes[K]
    assert [(c.event, c.second - T0) for c in changes] == [
        ("INSERT", 1401),
        ("MODIFY", 1401),
        ("REMOVE", 1402),
    ]
    assert changes[1].old == (Decimal(version("1400.644309")), CN)
    assert changes[1].new == (Decimal(version("1399.757264")), CN)
    assert changes[1].image == normalize_item(LOWERED) and changes[1].removed is None
    assert changes[2].image is None and changes[2].removed == normalize_item(LOWERED)
