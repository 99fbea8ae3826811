"""Every conflict on record (docs/conflict-rules.md, "Conflicts on record"): each conflict the engine
resolves is counted per table and kind and logged, sampled, with both versions and the key's digest,
through both real pipelines on real stream and inbox events."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from replication import conflicts
from replication.conflicts import Conflict, ConflictKind
from replication.errors import ConfigurationError
from replication.keys import key_digest
from replication.residency import ResidencyRules
from replication.settings import ConflictLogSettings
from replication.table_writer import Outcome
from replication.telemetry import SERVICE
from replication.versions import Version, version_of

from .harness import LOGICAL, NAMES, Pair, Side

KEY = {"pk": {"S": "user#1"}, "sk": {"S": "profile"}}
CANARY = "CANARY-110101199003077777"  # item content that must never reach a log line
DEFAULTS = ConflictLogSettings()


def replicated(side: Side, outbox: list[Any]) -> list[Conflict]:
    """Deliver ``outbox`` (the peer's Kinesis records) to ``side``'s replicator: the conflicts it
    recorded for the table."""
    return side.replicate(outbox)["report"].tables[LOGICAL].conflicts


def sent(side: Side) -> list[Any]:
    """What ``side``'s forwarder has put into the peer's inbox, taken out of it."""
    outbox, side.sender.outbox = side.sender.outbox, []
    return outbox


def version(timestamp: str, origin: str, delete: bool = False) -> dict[str, Any]:
    """A version as the log line shows it."""
    return {"timestamp": timestamp, "origin": origin, "delete": delete}


def as_logged(found: Version) -> dict[str, Any]:
    return version(str(found.timestamp), found.origin, found.is_delete)


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG, logger=SERVICE):
        yield caplog


def logged_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The conflict lines as Powertools writes them: every field of each record."""
    return [vars(r) for r in caplog.records if r.getMessage() == conflicts.LOG_MESSAGE]


def counted(output: str) -> dict[tuple[str, str], float]:
    """``Conflicts`` by (table, kind) from the EMF documents in ``output``."""
    found: dict[tuple[str, str], float] = {}
    for text in output.splitlines():
        if text.startswith("{") and '"_aws"' in text:
            document = json.loads(text)
            names = [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
            if conflicts.METRIC in names:
                (dimensions,) = document["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
                assert sorted(dimensions) == ["kind", "service", "table"]
                values = document[conflicts.METRIC]
                found[(document["table"], document["kind"])] = sum(
                    values if isinstance(values, list) else [values]
                )
    return found


# -- each kind, where the engine resolves it -----------------------------------------------------


def test_a_stale_change_dropped_is_recorded_with_the_version_that_won(
    pair: Pair, log: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a newer write on us-east-1 and an older one on cn-north-1, made concurrently
    pair.us.put(KEY, {"city": {"S": "New York"}}, "1764200010")
    pair.china.put(KEY, {"city": {"S": CANARY}}, "1764200005")
    pair.us.forward()
    pair.china.forward()
    # WHEN cn-north-1's change reaches us-east-1
    found = replicated(pair.us, sent(pair.china))
    conflicts.record([(LOGICAL, c) for c in found], DEFAULTS)
    # THEN it is dropped there, counted for its table and kind, and logged with both versions
    assert counted(capsys.readouterr().out) == {(LOGICAL, "stale-dropped"): 1.0}
    (entry,) = logged_lines(log)
    assert (entry["kind"], entry["table"], entry["key_digest"]) == ("stale-dropped", LOGICAL, key_digest(KEY))
    assert entry["winner"] == version("1764200010", "us-east-1")
    assert entry["loser"] == version("1764200005", "cn-north-1")


def test_a_tie_broken_by_origin_is_recorded_where_the_greater_origin_won(
    pair: Pair, log: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    pair.china.put(KEY, {"city": {"S": CANARY}}, "1764200000.25")
    pair.us.put(KEY, {"city": {"S": "New York"}}, "1764200000.25")
    pair.china.forward()
    pair.us.forward()
    # us-east-1's change wins on cn-north-1 (applied, no conflict there) ...
    assert replicated(pair.china, sent(pair.us)) == []
    # ... and cn-north-1's loses the tie on us-east-1, where it is recorded.
    found = replicated(pair.us, sent(pair.china))
    conflicts.record([(LOGICAL, c) for c in found], DEFAULTS)
    assert counted(capsys.readouterr().out) == {(LOGICAL, "tie-broken"): 1.0}
    (entry,) = logged_lines(log)
    assert entry["winner"] == version("1764200000.25", "us-east-1")
    assert entry["loser"] == version("1764200000.25", "cn-north-1")


def test_a_delete_that_won_against_a_late_upsert_is_recorded_with_the_remembered_delete(
    pair: Pair, log: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an upsert of us-east-1 in flight while cn-north-1 writes the item newer and deletes it
    pair.us.put(KEY, {"city": {"S": CANARY}}, "1764200001")
    pair.us.forward()
    older_upsert = sent(pair.us)
    pair.china.put(KEY, {"city": {"S": "newer"}}, "1764200002")
    pair.china.delete(KEY)
    pair.china.forward()
    # WHEN the upsert arrives on cn-north-1
    found = replicated(pair.china, older_upsert)
    conflicts.record([(LOGICAL, c) for c in found], DEFAULTS)
    # THEN the remembered delete (the tombstone the forwarder wrote) won, and says so
    remembered = pair.china.writer.tombstones([KEY])[key_digest(KEY)].version
    assert counted(capsys.readouterr().out) == {(LOGICAL, "delete-won"): 1.0}
    (entry,) = logged_lines(log)
    assert entry["winner"] == as_logged(remembered) and entry["winner"]["delete"] is True
    assert entry["loser"] == version("1764200001", "us-east-1")


def test_a_replicated_delete_older_than_the_item_is_recorded_as_stale(pair: Pair) -> None:
    # GIVEN the item on both sides, deleted on cn-north-1 while us-east-1 writes it newer
    pair.china.put(KEY, {"city": {"S": "Beijing"}}, "1764200000")
    pair.settle()
    pair.china.delete(KEY)
    pair.china.forward()
    remembered = pair.china.writer.tombstones([KEY])[key_digest(KEY)].version
    later = str(remembered.timestamp + 5)
    pair.us.put(KEY, {"city": {"S": "New York"}}, later)
    # WHEN the delete arrives on us-east-1
    (found,) = replicated(pair.us, sent(pair.china))
    # THEN it lost to the newer item: both versions are known from the failed condition
    assert found.kind is ConflictKind.STALE_DROPPED
    assert found.winner == Version(Decimal(later), "us-east-1")
    assert found.loser == remembered


def test_a_new_item_older_than_a_remembered_delete_is_recorded_on_the_forwarder(
    pair: Pair, log: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a delete remembered on cn-north-1
    pair.china.put(KEY, {"city": {"S": "Beijing"}}, "1764200002")
    pair.china.delete(KEY)
    pair.china.forward()
    remembered = pair.china.writer.tombstones([KEY])[key_digest(KEY)].version
    # WHEN a writer with a slow clock creates the item again, older than the delete
    pair.china.put(KEY, {"city": {"S": CANARY}}, "1764200003")
    report = pair.china.forward()
    conflicts.record([(LOGICAL, c) for c in report.conflicts], DEFAULTS)
    # THEN the delete won there: recorded with the delete and the write that lost
    assert counted(capsys.readouterr().out) == {(LOGICAL, "delete-won"): 1.0}
    (entry,) = logged_lines(log)
    assert entry["winner"] == as_logged(remembered)
    assert entry["loser"] == version("1764200003", "cn-north-1")


def test_an_unversioned_write_stamped_is_recorded_with_its_stamp(
    pair: Pair, log: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    pair.china.put(KEY, {"city": {"S": CANARY}}, None)  # no version attributes at all
    report = pair.china.forward()
    conflicts.record([(LOGICAL, c) for c in report.conflicts], DEFAULTS)
    stamp = version_of(pair.china.get(KEY), NAMES)
    assert stamp is not None
    assert counted(capsys.readouterr().out) == {(LOGICAL, "stamped"): 1.0}
    (entry,) = logged_lines(log)
    assert entry["winner"] == as_logged(stamp) and entry["winner"]["origin"] == "cn-north-1"
    # The write carried no version: none to show, and the line says why.
    assert (entry["loser"], entry["reason"]) == (None, "absent")
    assert "no valid version" in entry["unknown"]


def test_a_write_that_kept_the_version_is_recorded_with_the_version_it_kept(pair: Pair) -> None:
    pair.china.put(KEY, {"city": {"S": "Beijing"}, "email": {"S": "a@example.com"}}, "1764200000")
    pair.settle()
    pair.us.update_field(KEY, "email", "b@example.com")  # the item still says cn-north-1 wrote it
    (found,) = pair.us.forward().conflicts
    assert (found.kind, found.reason) == (ConflictKind.STAMPED, "not-newer")
    assert found.loser == Version(Decimal("1764200000"), "cn-north-1")
    assert found.winner == version_of(pair.us.get(KEY), NAMES)


def test_a_duplicate_delivery_is_no_conflict(pair: Pair) -> None:
    pair.china.put(KEY, {"city": {"S": "Beijing"}}, "1764200000")
    pair.china.forward()
    outbox = sent(pair.china)
    assert replicated(pair.us, outbox) == []
    again = pair.us.replicate(outbox)["report"].tables[LOGICAL]
    # The same version again: dropped as stale, but nothing was lost.
    assert again.outcomes[Outcome.STALE] == 1 and again.conflicts == []


# -- the log line ------------------------------------------------------------------------------------


def stale_conflict(pair: Pair) -> Conflict:
    pair.us.put(KEY, {"city": {"S": "New York"}}, "1764200010")
    pair.china.put(KEY, {"city": {"S": CANARY}, "national_id": {"S": CANARY}}, "1764200005")
    pair.us.forward()
    pair.china.forward()
    (found,) = replicated(pair.us, sent(pair.china))
    return found


def test_the_key_is_not_logged_by_default(pair: Pair) -> None:
    entry = conflicts.line(LOGICAL, stale_conflict(pair), DEFAULTS)
    assert "key" not in entry and entry["key_digest"] == key_digest(KEY)


def test_the_key_is_logged_when_configured(pair: Pair) -> None:
    configured = ConflictLogSettings.from_env({"CONFLICT_LOG_KEYS": "true"})
    assert conflicts.line(LOGICAL, stale_conflict(pair), configured)["key"] == KEY


def test_a_line_never_holds_item_contents(pair: Pair, log: pytest.LogCaptureFixture) -> None:
    found = stale_conflict(pair)
    pair.china.put({**KEY, "sk": {"S": "other"}}, {"city": {"S": CANARY}}, None)
    stamped = pair.china.forward().conflicts
    conflicts.record([(LOGICAL, c) for c in [found, *stamped]], ConflictLogSettings(log_keys=True))
    lines = logged_lines(log)
    assert len(lines) == 2
    assert all(CANARY not in json.dumps(line, default=str) for line in lines)


def test_the_forwarder_never_logs_the_key_of_an_item_its_residency_rules_keep_here(
    log: pytest.LogCaptureFixture,
) -> None:
    rules = ResidencyRules.from_entry(
        {"export_filter": "residency == 'GLOBAL'", "excluded_attributes": []}, "TABLES['profiles'].residency"
    )
    secret_key = {"pk": {"S": f"user#{CANARY}"}, "sk": {"S": "profile"}}
    with mock_aws():
        pair = Pair(china_residency=rules)
        pair.china.put(secret_key, {"residency": {"S": "CN-ONLY"}}, None)
        pair.china.put(KEY, {"residency": {"S": "GLOBAL"}}, None)
        report = pair.china.forward()
    conflicts.record([(LOGICAL, c) for c in report.conflicts], ConflictLogSettings(log_keys=True))
    lines = {line["key_digest"]: line for line in logged_lines(log)}
    assert "key" not in lines[key_digest(secret_key)]  # even with conflict_log_keys
    assert lines[key_digest(KEY)]["key"] == KEY
    assert CANARY not in json.dumps(list(lines.values()), default=str)


# -- sampling ----------------------------------------------------------------------------------------


def synthetic(count: int) -> list[tuple[str, Conflict]]:
    """``count`` stale changes of distinct keys over two tables."""
    winner, loser = Version(Decimal(2), "us-east-1"), Version(Decimal(1), "cn-north-1")
    return [
        (
            ("orders", "profiles")[i % 2],
            Conflict(ConflictKind.STALE_DROPPED, {"pk": {"S": f"k{i}"}}, winner, loser),
        )
        for i in range(count)
    ]


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(0, 300),
    rate=st.floats(0, 1),
    max_lines=st.integers(0, 50),
    seed=st.integers(0, 2**32),
)
def test_sampling_logs_at_most_max_lines_and_never_more_than_there_were(
    count: int, rate: float, max_lines: int, seed: int
) -> None:
    found = synthetic(count)
    chosen = conflicts.sample(found, ConflictLogSettings(rate, max_lines), random.Random(seed))
    assert len(chosen) <= min(max_lines, count)
    assert [found.index(c) for c in chosen] == sorted(found.index(c) for c in chosen)  # in their order


def test_every_conflict_is_counted_however_few_are_logged(
    log: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    conflicts.record(synthetic(1000), ConflictLogSettings(sample_rate=1.0, max_lines=5), rng=random.Random(7))
    assert counted(capsys.readouterr().out) == {
        ("orders", "stale-dropped"): 500,
        ("profiles", "stale-dropped"): 500,
    }
    lines = logged_lines(log)
    assert len(lines) == 5


def test_a_sample_rate_of_zero_logs_nothing_and_one_logs_each_up_to_the_bound() -> None:
    found = synthetic(10)
    assert conflicts.sample(found, ConflictLogSettings(sample_rate=0.0, max_lines=100)) == []
    assert conflicts.sample(found, ConflictLogSettings(sample_rate=1.0, max_lines=100)) == found


def test_the_bound_samples_every_table_not_only_the_first_conflicts() -> None:
    # 900 conflicts of one table first, then 100 of another: a sample of 50 reaches the second
    winner, loser = Version(Decimal(2), "us-east-1"), Version(Decimal(1), "cn-north-1")
    found = [
        (
            "orders" if i < 900 else "profiles",
            Conflict(ConflictKind.STALE_DROPPED, {"pk": {"S": f"k{i}"}}, winner, loser),
        )
        for i in range(1000)
    ]
    chosen = conflicts.sample(found, ConflictLogSettings(1.0, 50), random.Random(1))
    assert {table for table, _ in chosen} == {"orders", "profiles"}


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"CONFLICT_LOG_SAMPLE_RATE": "1.5"}, "CONFLICT_LOG_SAMPLE_RATE"),
        ({"CONFLICT_LOG_SAMPLE_RATE": "nan"}, "CONFLICT_LOG_SAMPLE_RATE"),
        ({"CONFLICT_LOG_MAX_LINES": "-1"}, "CONFLICT_LOG_MAX_LINES"),
        ({"CONFLICT_LOG_MAX_LINES": "1001"}, "CONFLICT_LOG_MAX_LINES"),
        ({"CONFLICT_LOG_KEYS": "maybe"}, "CONFLICT_LOG_KEYS"),
    ],
)
def test_a_conflict_log_setting_out_of_range_is_a_configuration_error(
    env: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        ConflictLogSettings.from_env(env)


def test_the_conflict_log_defaults_are_bounded_and_keep_keys_out() -> None:
    assert ConflictLogSettings.from_env({}) == ConflictLogSettings(1.0, 20, False)
