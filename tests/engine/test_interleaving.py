"""Specification: every multi-call sequence of the engine stays correct when the application writes the
same key between any two of its AWS calls (docs/conflict-rules.md; issue 9, fault 5).

Each scenario names an engine sequence on the local side and the starting state that leads to it. For
every boundary of the sequence (found by recording its calls, see ``interleaving.py``) and every
application write (PutItem and single-field UpdateItem with a newest, middle or oldest version or none,
and DeleteItem), both pipelines run to quiescence and both tables must hold the last-writer-wins
oracle's item. ``make test`` runs a fixed-seed sample; ``make test-slow`` (``--slow``) runs every case.
A failing case prints its scenario, boundary and write, the log of calls and the streams, and the
command that replays it alone (``--interleaving-case``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from moto import mock_aws

from replication.keys import key_digest
from replication.kinesis_sender import OutgoingRecord
from replication.table_writer import DELETE_MARK
from replication.typed_values import from_client

from .harness import NAMES, TABLE, Side
from .interleaving import (
    AHEAD,
    KEY,
    MIDDLE,
    NEWEST,
    OLDER_THAN_V1,
    OLDEST,
    V1,
    V2,
    WRITES,
    WRITES_BY_NAME,
    Case,
    Run,
    Scenario,
    World,
    check,
    every_case,
    start,
)

# -- the scenarios: an engine sequence on the local side, and how the pair gets there ---------------


def _unversioned_insert(run: Run, local: Side, peer: Side) -> None:
    run.put(local, None)


def _update_keeping_the_version(run: Run, local: Side, peer: Side) -> None:
    run.put(peer, V1)
    run.settle()
    run.update(local, None)


def _unversioned_put_over_a_version_ahead_of_the_clock(run: Run, local: Side, peer: Side) -> None:
    run.put(peer, AHEAD)
    run.settle()
    run.put(local, None)  # the stamp must still come after the peer's version


def _put_with_an_older_version(run: Run, local: Side, peer: Side) -> None:
    run.put(peer, V1)
    run.settle()
    run.put(local, OLDER_THAN_V1)


def _unversioned_recreation_after_a_delete(run: Run, local: Side, peer: Side) -> None:
    run.put(peer, V1)
    run.settle()
    run.delete(peer)
    run.settle()
    run.put(local, None)


def _insert_older_than_a_remembered_delete(run: Run, local: Side, peer: Side) -> None:
    run.put(peer, V1)
    run.settle()
    run.delete(peer)
    run.settle()
    run.put(local, V2)  # a slow clock: older than the delete's version (its stream second)


def _replicated_insert_seen_after_its_delete(run: Run, local: Side, peer: Side) -> None:
    run.put(peer, V1)
    run.forward(peer)
    run.deliver(peer)
    run.delete(peer)
    run.forward(peer)
    run.deliver(peer)  # the local forwarder reads the insert, the mark and the removal together


def _local_delete(run: Run, local: Side, peer: Side) -> None:
    run.put(peer, V1)
    run.settle()
    run.delete(local)


def _local_delete_of_a_version_ahead_of_the_clock(run: Run, local: Side, peer: Side) -> None:
    run.put(local, AHEAD)
    run.settle()
    run.delete(local)  # the delete takes the removed version's place


def _replicated_update(run: Run, local: Side, peer: Side) -> None:
    run.put(peer, V1)
    run.settle()
    run.put(peer, V2)
    run.forward(peer)


def _replicated_create(run: Run, local: Side, peer: Side) -> None:
    run.put(peer, V1)
    run.forward(peer)


def _replicated_create_after_an_older_delete(run: Run, local: Side, peer: Side) -> None:
    run.put(peer, V1)
    run.settle()
    run.delete(peer)
    run.settle()
    run.put(peer, AHEAD)
    run.forward(peer)


def _replicated_upsert_older_than_the_item(run: Run, local: Side, peer: Side) -> None:
    run.put(peer, V1)
    run.forward(peer)
    late, peer.sender.outbox = peer.sender.outbox, []
    run.put(local, V2)
    run.settle()
    peer.sender.outbox = late


def _replicated_upsert_older_than_a_remembered_delete(run: Run, local: Side, peer: Side) -> None:
    run.put(peer, V1)
    run.settle()
    run.put(peer, V2)
    run.forward(peer)
    late, peer.sender.outbox = peer.sender.outbox, []
    run.delete(peer)
    run.settle()
    peer.sender.outbox = late


def _replicated_delete(run: Run, local: Side, peer: Side) -> None:
    run.put(peer, V1)
    run.settle()
    run.delete(peer)
    run.forward(peer)


def _replicated_delete_older_than_a_local_write(run: Run, local: Side, peer: Side) -> None:
    run.put(peer, V1)
    run.settle()
    run.put(local, AHEAD)  # not forwarded yet
    run.delete(peer)
    run.forward(peer)


def _replicated_delete_over_an_unstamped_write(run: Run, local: Side, peer: Side) -> None:
    run.put(peer, V1)
    run.settle()
    run.update(local, None)  # not stamped yet
    run.delete(peer)
    run.forward(peer)


SCENARIOS = [
    Scenario("stamp-insert", "the application puts X without a version", "forwarder", _unversioned_insert),
    Scenario(
        "stamp-update",
        "both hold X (v1 from the peer); the application updates a field, leaving the version",
        "forwarder",
        _update_keeping_the_version,
    ),
    Scenario(
        "stamp-ahead",
        "both hold X (a version from the peer ahead of the stream clock); the application puts X "
        "without a version",
        "forwarder",
        _unversioned_put_over_a_version_ahead_of_the_clock,
    ),
    Scenario(
        "stamp-older-put",
        "both hold X (v1 from the peer); the application puts X with an older version",
        "forwarder",
        _put_with_an_older_version,
    ),
    Scenario(
        "stamp-recreation",
        "X deleted on the peer, the delete replicated; the application puts X without a version",
        "forwarder",
        _unversioned_recreation_after_a_delete,
    ),
    Scenario(
        "delete-wins-local-insert",
        "X deleted on the peer, the delete replicated; the application puts X with an older version",
        "forwarder",
        _insert_older_than_a_remembered_delete,
    ),
    Scenario(
        "delete-wins-replicated-insert",
        "the replicator applied X (v1) and then its delete before the forwarder read the insert",
        "forwarder",
        _replicated_insert_seen_after_its_delete,
    ),
    Scenario(
        "local-delete",
        "both hold X (v1 from the peer); the application deletes X",
        "forwarder",
        _local_delete,
    ),
    Scenario(
        "local-delete-ahead",
        "both hold X (a version ahead of the stream clock, local); the application deletes X",
        "forwarder",
        _local_delete_of_a_version_ahead_of_the_clock,
    ),
    Scenario(
        "replicated-update",
        "both hold X (v1 from the peer); the peer's update to v2 arrives",
        "replicator",
        _replicated_update,
    ),
    Scenario("replicated-create", "the peer's new X arrives", "replicator", _replicated_create),
    Scenario(
        "replicated-create-after-delete",
        "X deleted on both sides; the peer's new X (newer than the delete) arrives",
        "replicator",
        _replicated_create_after_an_older_delete,
    ),
    Scenario(
        "replicated-upsert-stale",
        "the local side holds X (v2); the peer's older X (v1) arrives late",
        "replicator",
        _replicated_upsert_older_than_the_item,
    ),
    Scenario(
        "replicated-upsert-tombstoned",
        "X (v2) deleted on both sides; the peer's X (v2) arrives after its delete",
        "replicator",
        _replicated_upsert_older_than_a_remembered_delete,
    ),
    Scenario(
        "replicated-delete",
        "both hold X (v1 from the peer); the peer's delete of X arrives",
        "replicator",
        _replicated_delete,
    ),
    Scenario(
        "replicated-delete-stale",
        "both hold X (v1); the local side wrote X ahead of the clock; the peer's delete arrives",
        "replicator",
        _replicated_delete_older_than_a_local_write,
    ),
    Scenario(
        "replicated-delete-unstamped",
        "both hold X (v1); the local side updated a field (not stamped yet); the peer's delete arrives",
        "replicator",
        _replicated_delete_over_an_unstamped_write,
    ),
]
SCENARIOS_BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}
LOCAL_SIDES = ("us-east-1", "cn-north-1")
# make test: one case per scenario, drawn with the scenario's name as the seed (the same on every run);
# a boundary past the sequence's last call is taken as "after the last call".
SAMPLED_BOUNDARIES = range(0, 4)


def _sample(scenario: Scenario) -> list[Case]:
    rng = random.Random(scenario.name)
    first = 0 if scenario.act == "forwarder" else 1
    boundary = rng.choice([b for b in SAMPLED_BOUNDARIES if b >= first])
    return [Case(scenario, rng.choice(LOCAL_SIDES), ((boundary, rng.choice(WRITES)),))]


def _cases(scenario: Scenario, config: pytest.Config) -> Iterator[tuple[Case, list[str], str]]:
    chosen = [Case.parse(name, SCENARIOS_BY_NAME) for name in config.getoption("--interleaving-case")]
    if chosen:
        for case in chosen:
            if case.scenario is scenario:
                problems, text, _ = check(case, always_report=True)
                print(text)
                yield case, problems, text
    elif config.getoption("--slow"):
        for local in LOCAL_SIDES:
            yield from every_case(scenario, local)
    else:
        for case in _sample(scenario):
            problems, text, _ = check(case, clamp=True)
            yield case, problems, text


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[scenario.name for scenario in SCENARIOS])
def test_an_application_write_at_any_call_boundary_converges_to_the_last_writer_wins_oracle(
    scenario: Scenario, request: pytest.FixtureRequest
) -> None:
    started = time.monotonic()
    ran, failures = 0, []
    for _, problems, text in _cases(scenario, request.config):
        ran += 1
        if problems:
            failures.append(text)
    elapsed = time.monotonic() - started
    print(f"interleaving {scenario.name}: {ran} cases, {len(failures)} diverge ({elapsed:.0f} s)")
    summary = f"{len(failures)} of {ran} cases diverge ({elapsed:.0f} s):"
    assert not failures, "\n\n".join([summary, *failures])


def _ran(run: Run) -> tuple[list[tuple[str, str, str, str]], list[Any]]:
    """What a case did, without what depends on when it ran (the versions' timestamps): the engine's
    calls on the key with their outcomes, and what each side holds at the end."""
    calls = [
        (entry.side, entry.actor, entry.text, entry.outcome)
        for entry in run.log
        if entry.actor != "application"
    ]
    held = [
        None if item is None else {name: value for name, value in item.items() if name != NAMES.timestamp}
        for item in (side.get(KEY) for side in run.pair.sides())
    ]
    return calls, held


def test_every_engine_call_on_the_key_is_a_boundary_its_tombstone_reads_included() -> None:
    """The harness injects writes between the engine's calls that concern the key; a tombstone row
    is named by its table-qualified id ("NAME/DIGEST"), and the forwarder's read of it is one of
    them (it was missed when the id was the digest alone, and the kill points moved)."""
    scenario = SCENARIOS_BY_NAME["stamp-insert"]
    with mock_aws():
        run = start(scenario, "cn-north-1")
        run.act(())
        run.settle()
    calls = [entry.text for entry in run.log if entry.actor == "forwarder"]
    assert calls[0].startswith("BatchGetItem "), calls


def test_a_case_in_a_pair_put_back_to_its_set_up_runs_as_in_a_fresh_pair() -> None:
    """The exhaustive run (``every_case``) runs a scenario's cases one after another in one pair, put
    back to the state after the set-up for each (``World``): a case run there after another makes
    the same calls with the same outcomes, and ends with the same items, as in a fresh pair."""
    scenario = SCENARIOS_BY_NAME["replicated-delete"]
    case = Case(scenario, "us-east-1", ((2, WRITES_BY_NAME["put-middle"]),))
    with mock_aws():
        fresh = start(scenario, "us-east-1")
        fresh.act(case.writes)
        fresh.settle()
        expected = _ran(fresh)
    with mock_aws():
        world = World(scenario, "us-east-1")
        for writes in ((), ((3, WRITES_BY_NAME["delete"]),), case.writes):
            run = world.run()
            run.act(writes)
            run.settle()
        assert _ran(run) == expected
        assert run.problems() == []


# -- regressions: each divergence the harness found, with its right value ----------------------------
# (the interleaving named in each docstring; before={"Operation": write} runs the application's write
# right before the sequence's first call of that operation)


def _version(item: dict[str, Any] | None) -> tuple[Decimal, str] | None:
    if item is None:
        return None
    return Decimal(item[NAMES.timestamp]["N"]), item[NAMES.origin]["S"]


def _remembered(side: Side) -> Decimal:
    """The timestamp of the delete ``side`` remembers for KEY."""
    return side.writer.tombstones([KEY])[key_digest(KEY)].version.timestamp


def test_an_update_between_a_replicated_deletes_mark_and_delete_is_the_newest_write_on_both_sides(
    aws: None,
) -> None:
    """Issue 9, fault 5. B holds X (v1); A deletes X (d > v1); B's replicator marks X; before its
    DeleteItem, B's application runs UpdateItem SET city = "New City", version = d + 5 s, origin B
    (the update keeps the mark). The delete checked only the mark and removed X, and B's forwarder
    sent the removal as B's delete: X was gone on both sides. The update is the newest write."""
    run = start(SCENARIOS_BY_NAME["replicated-delete"], "us-east-1")
    a, b = run.peer, run.local
    d = _remembered(a)
    run.act(before={"DeleteItem": lambda: run.update(b, d + 5 - run.base, city="New City")})
    run.settle()
    expected = {
        **KEY,
        "city": {"S": "New City"},
        NAMES.timestamp: {"N": str(d + 5)},
        NAMES.origin: {"S": "us-east-1"},
    }
    assert b.get(KEY) == expected  # the engine's delete mark taken off again, the version kept
    assert a.get(KEY) == expected
    assert run.problems() == []


def test_an_update_between_the_forwarders_mark_and_delete_of_an_insert_older_than_a_delete_survives(
    aws: None,
) -> None:
    """Fault 5's kind in the forwarder: it removes an insert older than a remembered delete (mark,
    then delete); the application updates the item with a newer version between the two calls."""
    run = start(SCENARIOS_BY_NAME["delete-wins-local-insert"], "us-east-1")
    b = run.local
    run.act(before={"DeleteItem": lambda: run.update(b, NEWEST, city="newer than the delete")})
    run.settle()
    assert b.get(KEY) is not None and b.get(KEY)["city"] == {"S": "newer than the delete"}
    assert run.peer.get(KEY) == b.get(KEY)
    assert run.problems() == []


def test_a_replicated_delete_still_removes_an_older_put_that_replaced_its_mark(aws: None) -> None:
    """B's replicator marks X for A's delete (version d); before its DeleteItem, B's application puts
    X with a version between v1 and d (PutItem replaces the mark). The delete failed on the missing
    mark and kept X on B, while A refused B's older put: B kept X, A did not. The delete is newer."""
    run = start(SCENARIOS_BY_NAME["replicated-delete"], "us-east-1")
    b = run.local
    run.act(before={"DeleteItem": lambda: run.put(b, MIDDLE, city="older than the delete")})
    run.settle()
    assert b.get(KEY) is None
    assert run.peer.get(KEY) is None
    assert run.problems() == []


def test_an_old_version_written_over_an_unversioned_recreation_loses_to_the_remembered_delete(
    aws: None,
) -> None:
    """X deleted on A (remembered on B); B's application re-creates X without a version, then puts
    it with a version older than the delete, before B's forwarder reads either. The second write
    replaced an item without a version, so it was forwarded as newer than nothing; A refused it
    (older than the delete) and B kept it. A write older than a remembered delete loses to it."""
    run = start(SCENARIOS_BY_NAME["stamp-recreation"], "us-east-1")
    b = run.local
    run.put(b, MIDDLE, city="older than the delete")
    run.act()
    run.settle()
    assert b.get(KEY) is None
    assert run.peer.get(KEY) is None
    assert run.problems() == []


def test_an_unversioned_recreation_right_after_a_local_delete_survives_and_replicates(aws: None) -> None:
    """B's application deletes X and puts it again without a version before B's forwarder reads the
    item after the delete's tombstone. The forwarder, enforcing the delete against older replicated
    upserts, removed the re-creation too: the application's latest write vanished from its own
    table. It is stamped after the delete instead."""
    run = start(SCENARIOS_BY_NAME["local-delete"], "us-east-1")
    b = run.local
    run.act(before={"BatchGetItem": lambda: run.put(b, None, city="re-created")})
    run.settle()
    deleted = _remembered(b)
    item = b.get(KEY)
    assert item is not None and item["city"] == {"S": "re-created"}
    version = _version(item)
    assert version is not None and version[1] == "us-east-1" and version[0] > deleted
    assert run.peer.get(KEY) == item
    assert run.problems() == []


def test_an_unversioned_recreation_in_the_batch_of_its_local_delete_is_stamped_after_the_delete(
    aws: None,
) -> None:
    """The same, with the delete and the re-creation in one stream batch: the tombstones are read
    before the batch's local writes, so the re-creation's stamp did not count the delete, and sorted
    before it (here the deleted version, and so the delete's, is ahead of the stream clock)."""
    run = start(SCENARIOS_BY_NAME["local-delete-ahead"], "us-east-1")
    b = run.local
    run.put(b, None, city="re-created")
    run.act()
    run.settle()
    item = b.get(KEY)
    assert item is not None and item["city"] == {"S": "re-created"}
    assert run.peer.get(KEY) == item
    assert run.problems() == []


def test_an_unversioned_write_over_an_insert_older_than_a_delete_is_stamped_after_the_delete(
    aws: None,
) -> None:
    """B's forwarder removes an insert older than a remembered delete; before it marks the item,
    B's application puts X without a version. The enforcement removed that write too; it is the
    application's write after the delete, and is stamped after it."""
    run = start(SCENARIOS_BY_NAME["delete-wins-local-insert"], "us-east-1")
    b = run.local
    run.act(before={"UpdateItem": lambda: run.put(b, None, city="after the delete")})
    run.settle()
    item = b.get(KEY)
    assert item is not None and item["city"] == {"S": "after the delete"}
    assert run.peer.get(KEY) == item
    assert run.problems() == []


def test_an_older_replicated_upsert_does_not_replace_an_unversioned_write_past_a_newer_delete(
    aws: None,
) -> None:
    """X (v2) deleted on both sides; B's application puts X without a version; A's upsert of v2
    arrives late. The replicator's one-put path for existing items skipped the tombstone and put v2
    back on B, which A had deleted. The unversioned write stays and is stamped after the delete."""
    run = start(SCENARIOS_BY_NAME["replicated-upsert-tombstoned"], "us-east-1")
    b = run.local
    run.act(before={"PutItem": lambda: run.put(b, None, city="after the delete")})
    run.settle()
    item = b.get(KEY)
    assert item is not None and item["city"] == {"S": "after the delete"}
    assert run.peer.get(KEY) == item
    assert run.problems() == []


def test_a_stale_replicated_upsert_does_not_stay_over_an_unstamped_write(aws: None) -> None:
    """B holds X (v2), A's older X (v1) is late. B's application puts X without a version (the
    item's version goes back to none) just before v1 arrives: v1 replaced it as newer than nothing,
    B's stamp of the write then failed, and B kept v1 while A kept v2. The unstamped write is lost
    to the replicated change (docs/conflict-rules.md), but v1 is older than what B held: v2 is put
    back."""
    run = start(SCENARIOS_BY_NAME["replicated-upsert-stale"], "us-east-1")
    b = run.local
    held = b.get(KEY)
    run.act(before={"PutItem": lambda: run.put(b, None, city="unversioned")})
    run.settle()
    assert b.get(KEY) == held
    assert run.peer.get(KEY) == held
    assert run.problems() == []


def test_a_stale_replicated_delete_does_not_stay_over_an_unstamped_write(aws: None) -> None:
    """B wrote X with a version ahead of A's coming delete, then B's application put X without a
    version; A's delete (older than B's version) removed it before B's stamp, and A kept B's newer
    version: B had nothing, A had X. The delete is older than what B held: B's version is put back."""
    run = start(SCENARIOS_BY_NAME["replicated-delete-stale"], "us-east-1")
    b = run.local
    held = b.get(KEY)
    run.act(before={"PutItem": lambda: run.put(b, None, city="unversioned")})
    run.settle()
    assert b.get(KEY) == held
    assert run.peer.get(KEY) == held
    assert run.problems() == []


def test_two_unversioned_writes_stamped_in_one_batch_get_different_versions(aws: None) -> None:
    """B's application puts X twice without a version, then a third time while B's forwarder stamps
    the batch holding the first two. Both stamps of the batch had the same version: the second one
    landed on the third write, B forwarded two different items with one version, and A kept the
    first of them. The later stamp of a batch is later."""
    run = start(SCENARIOS_BY_NAME["stamp-insert"], "us-east-1")
    b = run.local
    run.put(b, None, city="second")
    run.act(before={"UpdateItem 2": lambda: run.put(b, None, city="third")})
    run.settle()
    assert b.get(KEY) is not None and b.get(KEY)["city"] == {"S": "third"}
    assert run.peer.get(KEY) == b.get(KEY)
    assert run.problems() == []


def test_an_unversioned_update_lost_to_older_versions_before_its_stamp_leaves_the_version_it_kept(
    aws: None,
) -> None:
    """Both hold X (v1 from A). B's application updates a field of X without a version (X keeps v1),
    then puts X with a version older than v1, before B's forwarder reads either; while the forwarder
    stamps that batch, B's application puts X again with an older version. Neither stamp landed; the
    second write's restore put back the image it replaced: the update's content under v1, which A
    never had. B and A held the same version with different contents. Last-writer-wins: the update
    is lost to the later writes, which are older than v1: both sides hold v1 as A wrote it (the
    update's own restore puts that back, before the second write's finds v1 there)."""
    run = start(SCENARIOS_BY_NAME["stamp-update"], "us-east-1")
    a, b = run.peer, run.local
    held = a.get(KEY)
    run.put(b, OLDEST, city="older")
    run.act(before={"UpdateItem 2": lambda: run.put(b, OLDEST + Decimal("0.001"), city="older, again")})
    run.settle()
    assert held is not None and held[NAMES.origin] == {"S": "cn-north-1"}
    assert b.get(KEY) == held
    assert a.get(KEY) == held
    assert run.problems() == []


def test_an_unversioned_update_lost_to_older_versions_across_stream_batches_leaves_the_version_it_kept(
    aws: None,
) -> None:
    """As above, across two stream batches: B's forwarder reads the update alone; before its stamp,
    B's application puts X with an older version; after the batch, once more. The second batch's
    first record (the first put) shows the update's content under v1 as the item it replaced, and
    nothing in that batch said otherwise: its restore put that back. The update's own restore (its
    stamp failed) puts back v1 as A wrote it, and its record, in the next batch, shows the forwarder
    which item v1 is."""
    run = start(SCENARIOS_BY_NAME["stamp-update"], "us-east-1")
    a, b = run.peer, run.local
    held = a.get(KEY)
    run.act(before={"UpdateItem": lambda: run.put(b, OLDEST, city="older")})
    run.put(b, OLDEST - Decimal("0.001"), city="older, again")
    run.settle()
    assert held is not None and held[NAMES.origin] == {"S": "cn-north-1"}
    assert b.get(KEY) == held
    assert a.get(KEY) == held
    assert run.problems() == []


# -- earlier losses of make demo and make chaos, each with its right value ---------------------------


def _held_back(run: Run, peer: Side, late: list[OutgoingRecord]) -> None:
    """Forward the peer's latest write, but hold what it sent back in ``late`` (a slow link)."""
    run.forward(peer)
    late.extend(peer.sender.outbox)
    peer.sender.outbox = []


def _late_upsert_then_delete(late: list[OutgoingRecord]) -> Callable[[Run, Side, Side], None]:
    """Both hold X (v1 from the peer); the peer writes X at ``MIDDLE`` (held back in ``late``) and
    then deletes X; the delete arrives first."""

    def setup(run: Run, local: Side, peer: Side) -> None:
        run.put(peer, V1)
        run.settle()
        run.put(peer, MIDDLE, city="late")
        _held_back(run, peer, late)
        run.delete(peer)
        run.forward(peer)

    return setup


def test_an_older_replicated_upsert_that_replaces_a_deletes_mark_is_deleted_too(aws: None) -> None:
    """make demo, before the interleaving harness: A writes X (middle) and deletes it; the delete
    reaches B first. B's replicator remembers the delete and marks X; before its DeleteItem, A's
    older upsert arrives and replaces X, and with it the mark. The delete found no mark, and X stayed
    on B while A had deleted it: the key was lost. The delete is A's newest write: X is gone on both
    sides, and B remembers that delete."""
    late: list[OutgoingRecord] = []
    scenario = Scenario("replicated-delete-late-upsert", "", "replicator", _late_upsert_then_delete(late))
    run = start(scenario, "us-east-1")
    a, b = run.peer, run.local
    deleted = _remembered(a)
    run.act(before={"DeleteItem": lambda: b.replicate(late)})
    run.settle()
    assert b.get(KEY) is None
    assert a.get(KEY) is None
    assert _remembered(b) == deleted
    assert run.problems() == []


def _peer_version_then_a_write_behind(run: Run, local: Side, peer: Side) -> None:
    """The peer's X (AHEAD of the stream clock) is on both sides; the local application, its clock 30 s
    behind, puts X with a version 30 s before the stream clock."""
    run.put(peer, AHEAD)
    run.settle()
    run.put(local, OLDEST)


def test_a_write_from_a_clock_behind_is_stamped_right_after_the_version_it_replaced(aws: None) -> None:
    """make chaos scenario 1 (a conflict key, one writer 20-40 s behind): a local put whose version is
    older than the one it replaced is stamped; the stamp must come after the replaced version even
    when that version is ahead of the forwarder's clock (docs/conflict-rules.md: max(clock, newest
    version it follows + 1 µs)), or the peer keeps its version and the sides differ."""
    scenario = Scenario("stamp-behind", "", "forwarder", _peer_version_then_a_write_behind)
    run = start(scenario, "us-east-1")
    a, b = run.peer, run.local
    written = b.get(KEY)
    run.act()
    run.settle()
    assert written is not None
    expected = {
        **written,
        NAMES.timestamp: {"N": str(run.at(AHEAD) + Decimal("0.000001"))},
        NAMES.origin: {"S": "us-east-1"},
    }
    assert b.get(KEY) == expected
    assert a.get(KEY) == expected
    assert run.problems() == []


def _held_upsert_then_v1_then_a_write_behind(late: list[OutgoingRecord]) -> Callable[[Run, Side, Side], None]:
    """The peer writes X at ``OLDER_THAN_V1`` (held back in ``late``, as on a link down for half a
    minute), then at v1, which arrives; the local application, 30 s behind, puts X at ``OLDEST``."""

    def setup(run: Run, local: Side, peer: Side) -> None:
        run.put(peer, OLDER_THAN_V1, city="late")
        _held_back(run, peer, late)
        run.put(peer, V1)
        run.settle()
        run.put(local, OLDEST)

    return setup


def test_a_late_replicated_upsert_before_the_stamp_of_a_write_behind_leaves_the_replaced_version(
    aws: None,
) -> None:
    """make chaos scenario 1 (a link down for 30 s, a conflict key, one writer 20-40 s behind): B holds
    A's v1; B's application puts X with a version 30 s behind; before B's forwarder stamps it, A's
    older upsert, held back by the outage, arrives and replaces it (newer than B's put, older than
    v1). The stamp's floor, v1, never held on B: B kept A's older upsert while A kept v1. The put is
    lost to the replicated change, which is older than v1: v1 is on both sides."""
    late: list[OutgoingRecord] = []
    scenario = Scenario(
        "stamp-behind-late-upsert", "", "forwarder", _held_upsert_then_v1_then_a_write_behind(late)
    )
    run = start(scenario, "us-east-1")
    a, b = run.peer, run.local
    held = a.get(KEY)
    run.act(before={"UpdateItem": lambda: b.replicate(late)})
    run.settle()
    assert held is not None and held[NAMES.timestamp] == {"N": str(run.at(V1))}
    assert b.get(KEY) == held
    assert a.get(KEY) == held
    assert run.problems() == []


# -- a forwarder killed mid-batch (make chaos scenario 5, crash-mid-batch) ---------------------------


class Killed(BaseException):
    """The forwarder's worker killed (SIGKILL) right before one of its calls: nothing after it runs,
    and Lambda hands the same records again: "If the function returns an error, split the batch in
    two and retry" (BisectBatchOnFunctionError, which the module sets; Lambda API reference,
    CreateEventSourceMapping; https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-params.html)."""


def _kill_forwarder(run: Run, side: Side, records: list[dict[str, Any]], call: int | None) -> bool:
    """Run ``side``'s forwarder on ``records``, killed right before its ``call``-th call on the key
    (None: not killed); True if it ran to the end."""
    calls = 0
    engine_call = run.engine_call

    def killing(at: Side, operation: str, request: dict[str, Any]) -> Any:
        nonlocal calls
        if at is side and run.actor == "forwarder":
            calls += 1
            if calls == call:
                raise Killed(operation)
        return engine_call(at, operation, request)

    run.engine_call = killing  # type: ignore[method-assign]
    try:
        side.forwarder.process(records)
        return True
    except Killed:
        return False
    finally:
        run.engine_call = engine_call  # type: ignore[method-assign]


def _local_put_lowered_while_the_peers_older_put_is_late(
    late: list[OutgoingRecord], held: dict[str, Any]
) -> Callable[[Run, Side, Side], None]:
    """make chaos scenario 5 (crash-mid-batch), its trace reduced to one key: both hold X (v1 from
    the peer); the peer puts X at ``MIDDLE`` (held back in ``late``); the local application deletes X
    (the delete's version, its stream second, is newer than ``MIDDLE``), puts X at ``AHEAD`` (N, kept
    in ``held``) and updates it with the version (``MIDDLE``, local region): older than N, equal in
    timestamp to the peer's put, which wins the tie."""

    def setup(run: Run, local: Side, peer: Side) -> None:
        run.put(peer, V1)
        run.settle()
        run.put(peer, MIDDLE, city="the peer's put")
        _held_back(run, peer, late)
        run.delete(local)
        run.put(local, AHEAD, city="N")
        held["N"] = local.get(KEY)
        run.update(local, MIDDLE, city="an older version")

    return setup


def _crash_retry(first_kill: int, halves: int, second_kill: int | None) -> tuple[Run, dict[str, Any]]:
    """The trace's batch (the local delete, N's INSERT and the MODIFY that lowered N) on B = cn-north-1:
    B's forwarder killed right before its ``first_kill``-th call; B's replicator applies the peer's
    late put (it replaces the lowered version, which it is newer than); Lambda hands the same records
    again, in ``halves`` (1, or 2 as BisectBatchOnFunctionError splits them), the first of them
    killed again right before its ``second_kill``-th call, and then once more; then both pipelines
    settle."""
    late: list[OutgoingRecord] = []
    held: dict[str, Any] = {}
    scenario = Scenario(
        "crash-mid-batch", "", "forwarder", _local_put_lowered_while_the_peers_older_put_is_late(late, held)
    )
    run = start(scenario, "cn-north-1")
    b = run.local
    batch = list(b.pending())
    assert [record["eventName"] for record in batch] == ["REMOVE", "INSERT", "MODIFY"]
    assert not _kill_forwarder(run, b, batch, first_kill)
    b.replicate(late)
    middle = len(batch) // 2
    parts = [batch] if halves == 1 else [batch[:middle], batch[middle:]]
    for index, part in enumerate(parts):
        if not _kill_forwarder(run, b, part, second_kill if index == 0 else None):
            assert _kill_forwarder(run, b, part, None)
    del b._unread[: len(batch)]  # done with: Lambda's checkpoint moves past the batch
    run.settle()
    return run, held["N"]


@pytest.mark.parametrize(
    ("first_kill", "halves", "second_kill"),
    [(1, 1, None), (2, 2, None), (3, 1, 4)],
    ids=[
        "killed-before-reading-tombstones",
        "killed-before-the-tombstone-write-retried-in-halves",
        "killed-again-between-mark-and-delete",
    ],
)
def test_a_put_whose_lowering_update_a_late_replicated_put_replaced_is_on_both_sides_after_a_killed_batch(
    aws: None, first_kill: int, halves: int, second_kill: int | None
) -> None:
    """make chaos scenario 5 (crash-mid-batch) lost B's put N: B deleted X, put N, and lowered its
    version with an UpdateItem to (t, B) before its forwarder, killed mid-batch, had handled any of
    it; A's older put (t, A) reached B in between and replaced the lowered version (A wins the tie).
    By last-writer-wins N is newer than A's put and than B's delete (which A's put is older than):
    once the batch is handed again, the forwarder removes A's put for the delete and puts N back
    (the lowering update is lost to the replicated put, docs/conflict-rules.md), and N reaches A."""
    run, n = _crash_retry(first_kill, halves, second_kill)
    assert n is not None and n["city"] == {"S": "N"}
    assert run.local.get(KEY) == n
    assert run.peer.get(KEY) == n
    assert run.problems() == []


def test_an_update_made_while_a_killed_batch_waits_for_its_retry_keeps_the_item_it_was_made_on(
    aws: None,
) -> None:
    """The trace of make chaos scenario 5 (crash-mid-batch) itself, on the same set-up: B's forwarder
    is killed after writing the delete's tombstone; A's put replaces the lowered version; the retry
    is killed between marking A's put for B's delete and deleting it; then B's application updates
    X (UpdateItem SET note and a version newer than everything, which keeps the mark); the next retry
    finds the newer update, takes its mark off, and N's restore is stale. The update is the newest
    write, and DynamoDB made it on the item B held then, A's put: both sides hold that. N is lost not
    to a rule but to the time the forwarder takes to put it back, here the killed batch's retries
    (docs/conflict-rules.md, Writes without a newer version)."""
    late: list[OutgoingRecord] = []
    held: dict[str, Any] = {}
    scenario = Scenario(
        "crash-mid-batch", "", "forwarder", _local_put_lowered_while_the_peers_older_put_is_late(late, held)
    )
    run = start(scenario, "cn-north-1")
    a, b = run.peer, run.local
    batch = list(b.pending())
    assert not _kill_forwarder(run, b, batch, 3)  # the tombstone read and written
    b.replicate(late)
    peers_put = b.get(KEY)
    assert not _kill_forwarder(run, b, batch, 4)  # X marked, not deleted
    updated = b.db.update_item(
        TableName=TABLE,
        Key=KEY,
        UpdateExpression="SET note = :note, #ts = :ts, #origin = :origin",
        ExpressionAttributeNames={"#ts": NAMES.timestamp, "#origin": NAMES.origin},
        ExpressionAttributeValues={
            ":note": {"S": "updated while the batch waits"},
            ":ts": {"N": str(run.at(NEWEST))},
            ":origin": {"S": "cn-north-1"},
        },
        ReturnValues="ALL_NEW",
    )["Attributes"]
    assert _kill_forwarder(run, b, batch, None)
    del b._unread[: len(batch)]
    run.settle()
    expected = {name: value for name, value in from_client(updated).items() if name != DELETE_MARK}
    assert peers_put is not None and expected["city"] == peers_put["city"] == {"S": "the peer's put"}
    assert b.get(KEY) == expected
    assert a.get(KEY) == expected
