"""Residency rules applied by the engine (docs/residency.md): cn-north-1 exports only items whose
``residency`` is ``GLOBAL``, never their ``national_id``; us-east-1 has no rules. Each test is one
point of the semantics, checked on the wire (the records put into the peer's inbox, decoded) and in
both tables."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

import pytest
from moto import mock_aws

from replication.changes import Change
from replication.classify import Action
from replication.keys import key_digest
from replication.residency import ResidencyRules
from replication.table_writer import TOMBSTONE_SOURCE_LOCAL
from replication.telemetry import SERVICE
from replication.versions import Version, version_of
from replication.wire import decode

from .harness import NAMES, TABLE, Pair, Side

RULES = ResidencyRules.from_entry(
    {"export_filter": "residency == 'GLOBAL'", "excluded_attributes": ["national_id"]},
    "TABLES['profiles'].residency",
    protected=["pk", "sk", NAMES.timestamp, NAMES.origin],
)
KEY = {"pk": {"S": "user#1"}, "sk": {"S": "profile"}}
CANARY = "CANARY-110101199003077777"


@pytest.fixture
def pair() -> Any:
    with mock_aws():
        yield Pair(china_residency=RULES)


def profile(residency: str, **attributes: str) -> dict[str, Any]:
    return {"residency": {"S": residency}, **{name: {"S": value} for name, value in attributes.items()}}


def wire_changes(side: Side) -> list[Change]:
    """Every change ``side`` has put into the peer's inbox so far, decoded as the peer would."""
    return [change for record in side.sender.outbox for change in decode(record.data).changes]


def test_an_exported_upsert_crosses_without_its_excluded_attributes(pair: Pair) -> None:
    pair.china.put(KEY, profile("GLOBAL", name="Li", national_id=CANARY), "100")
    pair.china.forward()

    (change,) = wire_changes(pair.china)
    assert change.item is not None and "national_id" not in change.item
    assert change.item["name"] == {"S": "Li"}
    assert CANARY.encode() not in b"".join(record.data for record in pair.china.sender.outbox)
    pair.settle()
    assert pair.us.get(KEY) == RULES.project(pair.china.get(KEY))


@pytest.mark.parametrize("versioned", [True, False], ids=["versioned-write", "unversioned-update"])
def test_an_item_that_stops_passing_is_removed_on_the_peer_and_the_original_stays(
    pair: Pair, versioned: bool
) -> None:
    pair.china.put(KEY, profile("GLOBAL", name="Li", national_id=CANARY), "100")
    pair.settle()
    assert pair.us.get(KEY) is not None

    if versioned:
        pair.china.put(KEY, profile("CN-ONLY", name="Li", national_id=CANARY), "200")
    else:  # the version stays as it was: the forwarder stamps the write
        pair.china.update_field(KEY, "residency", "CN-ONLY")
    report = pair.china.forward()

    # A plain delete of the key, ordered right after the write that made the item stop passing; for
    # an unversioned write, right after the exported version it replaced (its stamp may land on a
    # later write that passes again).
    (change,) = wire_changes(pair.china)
    assert change == Change(KEY, Version(Decimal(200 if versioned else 100), "cn-north-1", True))
    assert report.residency.removals == 1
    pair.settle()

    assert pair.us.get(KEY) is None
    original = pair.china.get(KEY)
    assert original is not None and original["residency"] == {"S": "CN-ONLY"}
    assert original["national_id"] == {"S": CANARY}


def test_an_item_that_passes_again_before_its_stamp_is_not_removed_on_the_peer(pair: Pair) -> None:
    pair.china.put(KEY, profile("GLOBAL", name="Li"), "100")
    pair.settle()
    # Two unversioned updates before the forwarder runs: the first one's stamp lands on the second.
    pair.china.update_field(KEY, "residency", "CN-ONLY")
    pair.china.update_field(KEY, "residency", "GLOBAL")
    pair.settle()

    item = pair.china.get(KEY)
    assert item is not None and item["residency"] == {"S": "GLOBAL"}
    assert pair.us.get(KEY) == RULES.project(item)


def test_the_peer_takes_a_residency_removal_for_an_echo_and_sends_nothing_back(pair: Pair) -> None:
    pair.china.put(KEY, profile("GLOBAL", name="Li"), "100")
    pair.settle()
    pair.china.put(KEY, profile("CN-ONLY", name="Li"), "200")
    pair.china.forward()
    pair.us.replicate(pair.china.sender.outbox)
    pair.china.sender.outbox = []

    report = pair.us.forward()  # the peer's forwarder reads the REMOVE its replicator caused

    assert pair.us.get(KEY) is None
    # The mark, then the marked removal: both the engine's own, nothing sent back.
    assert {action for action, count in report.counts.items() if count} == {Action.ECHO}
    assert pair.us.sender.outbox == []
    assert pair.china.get(KEY) is not None


def test_a_filtered_item_and_its_delete_send_nothing(pair: Pair) -> None:
    secret_key = {"pk": {"S": CANARY}, "sk": {"S": "profile"}}
    pair.china.put(secret_key, profile("CN-ONLY", national_id=CANARY), "100")
    first = pair.china.forward()
    pair.china.delete(secret_key)
    second = pair.china.forward()

    assert pair.china.sender.outbox == []  # neither the item nor its key ever crossed
    assert first.residency.filtered == 1 and second.residency.filtered == 1
    # Deleting here is remembered as any local delete: an older upsert of the key cannot come back.
    tombstones = pair.china.writer.tombstones([secret_key])
    assert tombstones[key_digest(secret_key)].source == TOMBSTONE_SOURCE_LOCAL
    pair.settle()
    assert pair.us.items() == {}


def test_a_change_from_the_peer_keeps_the_excluded_attributes_it_lacks(pair: Pair) -> None:
    pair.china.put(KEY, profile("GLOBAL", name="Li", national_id=CANARY), "100")
    pair.settle()

    pair.us.put(KEY, profile("GLOBAL", name="Wang"), "200")  # the peer's copy has no national_id
    pair.settle()

    merged = pair.china.get(KEY)
    assert merged is not None
    assert merged["name"] == {"S": "Wang"} and merged["national_id"] == {"S": CANARY}
    assert version_of(merged, NAMES) == version_of(pair.us.get(KEY), NAMES)
    assert pair.us.get(KEY) == RULES.project(merged)


def test_a_peer_change_over_an_item_without_a_version_keeps_its_excluded_attributes(pair: Pair) -> None:
    # Written before replication, or without a version: the replicator replaces it in a transaction
    # with the key's tombstone check, which keeps the excluded attributes too.
    pair.china.put(KEY, profile("GLOBAL", name="Li", national_id=CANARY), None)
    pair.us.put(KEY, profile("GLOBAL", name="Wang"), "200")
    pair.us.forward()
    pair.china.replicate(pair.us.sender.outbox)
    pair.us.sender.outbox = []

    merged = pair.china.get(KEY)
    assert merged is not None and merged["name"] == {"S": "Wang"} and merged["national_id"] == {"S": CANARY}
    pair.settle()
    assert pair.us.get(KEY) == RULES.project(pair.china.get(KEY))  # type: ignore[arg-type]


def test_a_change_that_carries_an_excluded_attribute_sets_it(pair: Pair) -> None:
    pair.china.put(KEY, profile("GLOBAL", name="Li", national_id=CANARY), "100")
    pair.settle()

    pair.us.put(KEY, profile("GLOBAL", name="Li", national_id="from-the-peer"), "200")
    pair.settle()

    assert pair.china.get(KEY)["national_id"] == {"S": "from-the-peer"}  # type: ignore[index]


def test_a_peer_change_removes_the_other_attributes_it_lacks(pair: Pair) -> None:
    pair.china.put(KEY, profile("GLOBAL", name="Li", city="Beijing", national_id=CANARY), "100")
    pair.settle()
    pair.us.put(KEY, profile("GLOBAL", name="Li"), "200")
    pair.settle()

    assert "city" not in pair.china.get(KEY)  # type: ignore[operator]


def test_a_replicated_delete_removes_the_whole_item(pair: Pair) -> None:
    pair.china.put(KEY, profile("GLOBAL", national_id=CANARY), "100")
    pair.settle()
    pair.us.delete(KEY)
    pair.settle()

    assert pair.china.get(KEY) is None and pair.us.get(KEY) is None


class _WriteAfterMergeRead:
    """The engine's DynamoDB client on cn-north-1, with one application write of ``national_id``
    right after the replicator's merge has read the item (between its read and its write)."""

    def __init__(self, side: Side, inner: Any, value: str | None) -> None:
        self._side, self._inner, self._value = side, inner, value
        self.reads = 0
        self.written = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def get_item(self, **request: Any) -> Any:
        response = self._inner.get_item(**request)
        self.reads += 1
        if not self.written and "ProjectionExpression" in request:
            self.written = True
            if self._value is None:
                expression, values = "REMOVE national_id", None
            else:
                expression, values = "SET national_id = :v", {":v": {"S": self._value}}
            self._inner.update_item(
                TableName=TABLE,
                Key=KEY,
                UpdateExpression=expression,
                **({"ExpressionAttributeValues": values} if values else {}),
            )
        return response


@pytest.mark.parametrize("written", ["NEW-ID", None], ids=["set", "removed"])
def test_an_application_write_of_an_excluded_attribute_racing_the_merge_is_not_lost(
    written: str | None,
) -> None:
    clients: dict[str, _WriteAfterMergeRead] = {}

    def engine_client(side: Side, inner: Any) -> Any:
        if side.region != "cn-north-1":
            return inner
        clients["cn"] = _WriteAfterMergeRead(side, inner, written)
        return clients["cn"]

    with mock_aws():
        pair = Pair(china_residency=RULES, engine_client=engine_client)
        pair.china.put(KEY, profile("GLOBAL", name="Li", national_id=CANARY), "100")
        pair.settle()
        pair.us.put(KEY, profile("GLOBAL", name="Wang"), "200")
        pair.settle()

        item = pair.china.get(KEY)
        assert clients["cn"].written and clients["cn"].reads >= 2  # the merge read again
        assert item is not None and item["name"] == {"S": "Wang"}
        assert item.get("national_id") == (None if written is None else {"S": written})
        assert pair.us.get(KEY) == RULES.project(item)


def test_a_filter_error_keeps_the_item_here_and_is_counted(caplog: pytest.LogCaptureFixture) -> None:
    failing = ResidencyRules.from_entry(
        {"export_filter": "contains(age, `1`)", "excluded_attributes": []}, "TABLES['profiles'].residency"
    )
    with mock_aws():
        pair = Pair(china_residency=failing)
        pair.china.put(KEY, {"age": {"N": "41"}, "name": {"S": CANARY}}, "100")
        with caplog.at_level(logging.DEBUG, logger=SERVICE):
            report = pair.china.forward()

    assert pair.china.sender.outbox == []
    assert report.residency.filter_errors == 1 and report.residency.filtered == 1
    (warning,) = [r for r in caplog.records if "export filter could not be evaluated" in r.getMessage()]
    assert warning.key_digest == key_digest(KEY)  # type: ignore[attr-defined]
    assert all(CANARY not in json.dumps(vars(r), default=str) for r in caplog.records)


def test_a_peer_change_too_large_with_the_kept_attributes_goes_to_the_failure_queue(pair: Pair) -> None:
    # GIVEN an item whose excluded attribute holds 250 KB here (the peer's copy lacks it)
    pair.china.put(KEY, profile("GLOBAL", name="Li", national_id=CANARY + "x" * 250_000), "100")
    pair.settle()
    # WHEN the peer writes a 200 KB change: valid there, over 400 KB once merged with what is kept here
    pair.us.put(KEY, profile("GLOBAL", name="Wang", note="y" * 200_000), "200")
    small = {"pk": {"S": "user#2"}, "sk": {"S": "profile"}}
    pair.us.put(small, profile("GLOBAL", name="Zhao"), "200")
    pair.settle()
    # THEN the change is not applied here, it waits in this side's failure queue with its reason
    # (no item contents), and the batch went on
    kept = pair.china.get(KEY)
    assert kept is not None and kept["name"] == {"S": "Li"}
    messages = pair.china.sqs.receive_message(QueueUrl=pair.china.queue_url, MaxNumberOfMessages=10)
    (body,) = [json.loads(message["Body"]) for message in messages["Messages"]]
    (refused,) = body["refused"]
    assert refused == {
        "change": 0,
        "reason": "DynamoDB refused the write: the item would exceed 400 KB (ValidationException)",
        "keyDigest": key_digest(KEY),
    }
    assert "yyyy" not in json.dumps(body) and CANARY not in json.dumps(body)
    assert pair.china.get(small) == pair.us.get(small)
