"""backfill: the existing items of one side copied to the other through last-writer-wins."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from replication.table_writer import TableWriter
from replication.versions import Version
from replication_ops import scanning
from replication_ops.errors import EXIT_BAD_INPUT, EXIT_OK
from replication_ops.scanning import RateLimiter


def test_backfill_copies_missing_items_and_never_overwrites_newer_ones(deployment, run):
    cn, us = deployment.cn, deployment.us
    cn.put("new", ts="200", city="Beijing")
    cn.put("older-here", ts="100", city="old")
    us.put("older-here", ts="300", city="newer")
    cn.put("no-version", ts=None, city="Shanghai")
    cn.put("deleted-there", ts="100", city="gone")
    us.writer().remember_delete(
        {"pk": {"S": "deleted-there"}, "sk": {"S": "profile"}},
        Version(Decimal(150), "us-east-1", True),
        "local",
    )
    # One segment: moto's in-process tables are not safe for concurrent writers (a rare flake).
    result = run("backfill", "--from", "cn", *deployment.args(), "--segments", "1", "--json")
    assert result.code == EXIT_OK, result.err
    totals = result.json["tables"]["profiles"]["totals"]
    assert totals == {"scanned": 4, "copied": 2, "stale": 1, "tombstoned": 1, "unversioned": 1, "kept": 0}
    assert us.get("new")["city"] == {"S": "Beijing"}
    assert us.get("older-here")["city"] == {"S": "newer"}
    assert us.get("no-version")["city"] == {"S": "Shanghai"}
    assert us.get("deleted-there") is None


def test_backfill_prints_a_summary(deployment, run):
    deployment.us.put("a", ts="1")
    result = run("backfill", "--from", "us", *deployment.args())
    assert result.code == EXIT_OK
    assert "1 items scanned, 1 copied, 0 skipped as stale" in result.out


def test_an_interrupted_backfill_resumes_from_its_checkpoint(deployment, run, monkeypatch):
    for index in range(40):
        deployment.cn.put(f"user#{index:02}", ts="100")
    real_apply = TableWriter.apply
    calls = {"n": 0}

    def apply_then_interrupt(self, change):
        calls["n"] += 1
        if calls["n"] == 15:
            raise KeyboardInterrupt
        return real_apply(self, change)

    monkeypatch.setattr(TableWriter, "apply", apply_then_interrupt)
    first = run("backfill", "--from", "cn", *deployment.args(), "--segments", "2", "--page-size", "4")
    assert first.code == 130
    assert "--resume" in first.err
    checkpoint = json.loads(Path(".ddb-replication/backfill-cn-to-us-profiles.json").read_text())
    done_before = sum(s["counts"]["scanned"] for s in checkpoint["segments"])
    assert 0 < done_before < 40

    monkeypatch.setattr(TableWriter, "apply", real_apply)
    second = run(
        "backfill",
        "--from",
        "cn",
        *deployment.args(),
        "--segments",
        "2",
        "--page-size",
        "4",
        "--resume",
        "--json",
    )
    assert second.code == EXIT_OK, second.err
    assert second.json["tables"]["profiles"]["resumed"] is True
    # checkpointed pages are not read again
    assert second.json["tables"]["profiles"]["this_run"]["scanned"] == 40 - done_before
    assert second.json["tables"]["profiles"]["totals"]["scanned"] == 40
    assert deployment.us.count() == 40


def test_an_existing_checkpoint_needs_resume_or_restart(deployment, run):
    deployment.cn.put("a", ts="1")
    run("backfill", "--from", "cn", *deployment.args())
    again = run("backfill", "--from", "cn", *deployment.args())
    restarted = run("backfill", "--from", "cn", *deployment.args(), "--restart", "--json")
    assert again.code == EXIT_BAD_INPUT
    assert "holds a completed backfill: --restart to copy again" in again.err
    assert restarted.code == EXIT_OK
    # the item is there already: the condition refuses it
    assert restarted.json["tables"]["profiles"]["totals"]["stale"] == 1


def test_a_resume_with_another_segment_count_names_the_one_to_give(deployment, run):
    deployment.cn.put("a", ts="1")
    run("backfill", "--from", "cn", *deployment.args(), "--segments", "2", "--checkpoint", "cp.json")
    result = run(
        "backfill",
        "--from",
        "cn",
        *deployment.args(),
        "--segments",
        "3",
        "--checkpoint",
        "cp.json",
        "--resume",
    )
    assert result.code == EXIT_BAD_INPUT
    assert "cp.json was started with --segments 2: resume with --segments 2" in result.err


def test_resume_refuses_a_checkpoint_of_another_backfill(deployment, run):
    deployment.cn.put("a", ts="1")
    run("backfill", "--from", "cn", *deployment.args(), "--checkpoint", "cp.json")
    result = run("backfill", "--from", "us", *deployment.args(), "--checkpoint", "cp.json", "--resume")
    assert result.code == EXIT_BAD_INPUT
    assert (
        "cp.json belongs to another backfill (cn-north-1/profiles -> us-east-1/profiles), not "
        "us-east-1/profiles -> cn-north-1/profiles: give --checkpoint another file, or --restart"
        in result.err
    )


def test_an_unknown_table_is_bad_input(deployment, run):
    deployment.us.outputs["table_names"] = {"profiles": "no-such-table"}
    deployment.rewrite_outputs()
    result = run("backfill", "--from", "cn", *deployment.args())
    assert result.code == EXIT_BAD_INPUT
    assert "no-such-table does not exist" in result.err


def test_the_rate_limit_spaces_items_evenly(monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(scanning.time, "sleep", waits.append)
    limiter = RateLimiter(100, clock=lambda: 0.0)
    for _ in range(5):
        limiter.acquire()
    assert [round(w, 3) for w in waits] == [0.01, 0.02, 0.03, 0.04]


def test_a_checkpoint_that_cannot_be_written_stops_a_resume_before_any_copy(deployment, run, monkeypatch):
    """The resumed checkpoint is rewritten before the first item: a failure there is one line,
    exit 2, and nothing was copied (it was a traceback at the first page)."""
    deployment.cn.put("a", ts="100")

    def interrupt(self, change):
        raise KeyboardInterrupt

    real_apply = TableWriter.apply
    monkeypatch.setattr(TableWriter, "apply", interrupt)
    assert run("backfill", "--from", "cn", *deployment.args(), "--segments", "1").code == 130
    monkeypatch.setattr(TableWriter, "apply", real_apply)
    checkpoint = Path(".ddb-replication/backfill-cn-to-us-profiles.json")
    (checkpoint.parent / (checkpoint.name + ".tmp")).mkdir()  # the atomic replace's temporary name
    result = run("backfill", "--from", "cn", *deployment.args(), "--segments", "1", "--resume")
    assert result.code == EXIT_BAD_INPUT
    assert result.err.strip().splitlines() == [
        f"ddb-replication backfill: error: cannot write the checkpoint {checkpoint} (Is a directory): "
        "give --checkpoint a file in a folder you can write"
    ]
    assert deployment.us.get("a") is None


def test_restart_never_overwrites_a_file_that_is_not_a_checkpoint(deployment, run):
    """`--checkpoint cn.json --restart` would have replaced the outputs file with a checkpoint."""
    before = deployment.cn_outputs.read_text()
    result = run(
        "backfill",
        "--from",
        "cn",
        *deployment.args(),
        "--checkpoint",
        str(deployment.cn_outputs),
        "--restart",
    )
    assert result.code == EXIT_BAD_INPUT
    assert f"{deployment.cn_outputs} is not a backfill checkpoint: give --checkpoint another file name" in (
        result.err
    )
    assert deployment.cn_outputs.read_text() == before
