"""The conflict rules, end to end through both real pipelines (docs/conflict-rules.md)."""

from __future__ import annotations

import time

from replication.classify import Action
from replication.table_writer import DELETE_MARK

from .harness import NAMES, TABLE, Pair

KEY = {"pk": {"S": "user#1"}, "sk": {"S": "profile"}}


def test_a_stale_change_never_overwrites_a_newer_one(pair: Pair) -> None:
    pair.us.put(KEY, {"city": {"S": "New York"}}, "1764200010")
    pair.china.put(KEY, {"city": {"S": "Beijing"}}, "1764200005")  # older, written concurrently
    pair.settle()
    assert pair.china.get(KEY)["city"] == {"S": "New York"}
    assert pair.us.get(KEY) == pair.china.get(KEY)


def test_equal_timestamps_are_broken_by_origin_the_same_way_on_both_sides(pair: Pair) -> None:
    pair.china.put(KEY, {"city": {"S": "Beijing"}}, "1764200000.25")
    pair.us.put(KEY, {"city": {"S": "New York"}}, "1764200000.25")
    pair.settle()
    # "us-east-1" sorts after "cn-north-1": the us-east-1 write wins on both sides.
    assert pair.china.get(KEY)["city"] == {"S": "New York"}
    assert pair.us.get(KEY) == pair.china.get(KEY)


def test_a_delete_replicates_and_is_not_echoed_back(pair: Pair) -> None:
    pair.china.put(KEY, {"city": {"S": "Beijing"}}, "1764200000")
    pair.settle()
    pair.us.delete(KEY)
    pair.us.forward()
    delivered = pair.us.sender.outbox
    pair.us.sender.outbox = []
    pair.china.replicate(delivered)
    report = pair.china.forward()
    assert pair.china.get(KEY) is None
    assert report.counts[Action.ECHO] == 2  # the engine's delete mark, then the removal
    assert pair.china.sender.outbox == []


def test_a_local_delete_is_sent_even_when_the_peers_delete_of_the_item_is_remembered(pair: Pair) -> None:
    # GIVEN the item on both sides, deleted on us-east-1 and in flight to cn-north-1
    pair.china.put(KEY, {"city": {"S": "Beijing"}}, "1764200000")
    pair.settle()
    pair.us.delete(KEY)
    pair.us.forward()
    peers_delete = pair.us.sender.outbox
    pair.us.sender.outbox = []
    # WHEN the application deletes it on cn-north-1 too, and the peer's delete lands (its tombstone
    # written, nothing left to remove) before the forwarder reads cn-north-1's REMOVE
    pair.china.delete(KEY)
    pair.china.replicate(peers_delete)
    report = pair.china.forward()
    # THEN the local delete is not taken for the peer's echo: it is sent with its own version
    assert (report.counts[Action.DELETE], report.counts[Action.ECHO]) == (1, 0)
    assert len(pair.china.sender.outbox) == 1


def test_a_replicated_upsert_is_not_echoed_back(pair: Pair) -> None:
    pair.china.put(KEY, {"city": {"S": "Beijing"}}, "1764200000")
    pair.china.forward()
    pair.us.replicate(pair.china.sender.outbox)
    report = pair.us.forward()
    assert report.counts[Action.ECHO] == 1
    assert pair.us.sender.outbox == []


def test_an_older_upsert_arriving_after_a_delete_does_not_resurrect_the_item(pair: Pair) -> None:
    pair.us.put(KEY, {"city": {"S": "old"}}, "1764200001")
    pair.us.forward()
    older_upsert = pair.us.sender.outbox
    pair.us.sender.outbox = []
    pair.china.put(KEY, {"city": {"S": "newer"}}, "1764200002")
    pair.china.delete(KEY)
    pair.china.forward()
    pair.china.replicate(older_upsert)  # arrives late
    pair.settle()
    assert pair.china.get(KEY) is None
    assert pair.us.get(KEY) is None


def test_a_local_delete_racing_a_replicated_older_upsert_still_wins(pair: Pair) -> None:
    pair.us.put(KEY, {"city": {"S": "old"}}, "1764200001")
    pair.us.forward()
    older_upsert = pair.us.sender.outbox
    pair.us.sender.outbox = []
    pair.china.put(KEY, {"city": {"S": "newer"}}, "1764200002")
    pair.china.delete(KEY)
    # The replicated upsert lands before the forwarder has seen the local delete (no tombstone yet).
    pair.china.replicate(older_upsert)
    pair.settle()
    assert pair.china.get(KEY) is None
    assert pair.us.get(KEY) is None


def test_a_delete_never_loses_to_the_version_it_removed(pair: Pair) -> None:
    # A writer's clock 200 s fast (within the allowed skew): the version is ahead of the stream time.
    pair.china.put(KEY, {"city": {"S": "Beijing"}}, f"{int(time.time()) + 200}.5")
    pair.settle()
    pair.us.delete(KEY)  # the stream time (now) is older than the version it removed
    pair.settle()
    assert pair.us.get(KEY) is None
    assert pair.china.get(KEY) is None


def test_an_update_that_leaves_the_version_untouched_is_still_replicated(pair: Pair) -> None:
    pair.china.put(KEY, {"city": {"S": "Beijing"}, "email": {"S": "a@example.com"}}, "1764200000")
    pair.settle()
    pair.us.update_field(KEY, "email", "b@example.com")  # the item still says cn-north-1 wrote it
    pair.settle()
    assert pair.china.get(KEY)["email"] == {"S": "b@example.com"}
    assert pair.us.get(KEY) == pair.china.get(KEY)
    assert pair.us.get(KEY)["last_updater_region"] == {"S": "us-east-1"}


def test_a_write_without_version_attributes_is_stamped_and_replicated(pair: Pair) -> None:
    pair.china.put(KEY, {"city": {"S": "Beijing"}}, ts=None)
    pair.settle()
    replicated = pair.us.get(KEY)
    assert replicated == pair.china.get(KEY)
    assert replicated["last_updater_region"] == {"S": "cn-north-1"}


def test_a_hash_only_table_replicates() -> None:
    from moto import mock_aws

    with mock_aws():
        pair = Pair(sort_key=False)
        key = {"pk": {"S": "solo"}}
        pair.us.put(key, {"n": {"N": "1"}}, "1764200000")
        pair.settle()
        assert pair.china.get(key) == pair.us.get(key)


def test_every_attribute_type_round_trips_exactly(pair: Pair) -> None:
    attributes = {
        "s": {"S": "汉字 and emoji 🚀"},
        "empty": {"S": ""},
        "n": {"N": "12345678901234567890.123456789012345678"},
        "negative": {"N": "-1E-130"},
        "b": {"B": "AAEC/w=="},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2.5"]},
        "bs": {"BS": ["AQ==", "Ag=="]},
        "m": {"M": {"deep": {"L": [{"NULL": True}, {"BOOL": False}, {"M": {"x": {"N": "0"}}}]}}},
        "l": {"L": []},
        "null": {"NULL": True},
        "bool": {"BOOL": True},
    }
    pair.china.put(KEY, attributes, "1764200000")
    pair.settle()
    assert pair.us.get(KEY) == pair.china.get(KEY)


def test_a_replicated_insert_seen_after_a_newer_delete_is_remembered_is_not_stamped_over_it(
    pair: Pair,
) -> None:
    # GIVEN us-east-1 inserts an item, cn-north-1 applies it, then us-east-1 deletes it
    pair.us.put(KEY, {"city": {"S": "New York"}}, "1764200001")
    pair.us.forward()
    pair.china.replicate(pair.us.sender.outbox)
    pair.us.sender.outbox = []
    pair.us.delete(KEY)
    pair.us.forward()
    # WHEN cn-north-1's forwarder sees the replicated insert between the tombstone and the delete
    writer = pair.china.writer
    delete_if_older = writer.delete_if_older

    def forwarder_runs_first(key, version):  # type: ignore[no-untyped-def]
        pair.china.forward()
        return delete_if_older(key, version)

    writer.delete_if_older = forwarder_runs_first  # type: ignore[method-assign]
    pair.china.replicate(pair.us.sender.outbox)
    pair.us.sender.outbox = []
    writer.delete_if_older = delete_if_older  # type: ignore[method-assign]
    pair.settle()
    # THEN the delete wins on both sides
    assert pair.china.get(KEY) is None
    assert pair.us.get(KEY) is None


def test_a_local_insert_older_than_a_remembered_delete_loses_to_it(pair: Pair) -> None:
    pair.us.put(KEY, {"city": {"S": "New York"}}, "1764200005")
    pair.settle()
    pair.us.delete(KEY)
    pair.settle()
    # A writer with a slow clock creates the item again with a timestamp before the delete.
    pair.china.put(KEY, {"city": {"S": "Beijing"}}, "1764200001")
    pair.settle()
    assert pair.china.get(KEY) is None
    assert pair.us.get(KEY) is None


def test_a_delete_mark_left_by_a_failed_delete_does_not_hide_a_later_local_delete(pair: Pair) -> None:
    # GIVEN an item the engine marked for a delete (at version 1764200000) that never completed
    pair.china.put(KEY, {"city": {"S": "Beijing"}}, "1764200000")
    pair.china.forward()
    pair.china.db.update_item(
        TableName=TABLE,
        Key=KEY,
        UpdateExpression="SET #m = :m",
        ExpressionAttributeNames={"#m": DELETE_MARK},
        ExpressionAttributeValues={":m": {"S": "1764200000 us-east-1"}},
    )
    # WHEN the application writes a newer version with an UpdateItem (the mark stays) and deletes it
    pair.china.db.update_item(
        TableName=TABLE,
        Key=KEY,
        UpdateExpression="SET #ts = :ts, #o = :o",
        ExpressionAttributeNames={"#ts": NAMES.timestamp, "#o": NAMES.origin},
        ExpressionAttributeValues={":ts": {"N": "1764200005"}, ":o": {"S": "cn-north-1"}},
    )
    pair.china.delete(KEY)
    report = pair.china.forward()
    # THEN the mark's own record is an echo, the update and the delete are the application's (the
    # update kept the engine's mark, which the application did not write: its own newer version
    # decides it, as any other write's; the mark is never exported)
    assert (report.counts[Action.ECHO], report.counts[Action.FORWARD], report.counts[Action.DELETE]) == (
        1,
        1,
        1,
    )
    assert report.counts[Action.STAMP] == 0
