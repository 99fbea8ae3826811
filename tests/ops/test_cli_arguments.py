"""Every flag of every subcommand is checked before anything happens: a bad value, an unknown flag
or a contradictory pair of flags is exit 2 with one line naming the flag and the fix (no usage block,
no traceback), and nothing was created, stored or written."""

from __future__ import annotations

import argparse

import pytest

from replication_ops.cli import build_parser
from replication_ops.errors import EXIT_BAD_INPUT

COMMANDS = ("credentials", "rotate", "backfill", "verify", "redrive", "status")
REQUIRED = {"backfill": ["--from", "cn"]}


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def _refused(run, command: str, *argv: str) -> str:
    result = run(command, *REQUIRED.get(command, []), *argv)
    assert result.code == EXIT_BAD_INPUT, result
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith(f"ddb-replication {command}: error: ")
    assert "Traceback" not in result.err
    return lines[0]


def test_every_flag_that_takes_a_value_is_checked_by_a_type_or_a_list_of_choices() -> None:
    for command, parser in _subparsers().items():
        for action in parser._actions:
            if action.option_strings and action.nargs != 0 and action.dest != "help":
                assert action.type is not None or action.choices, f"{command} {action.option_strings[0]}"


@pytest.mark.parametrize(
    ("command", "flag", "value"),
    [
        ("credentials", "--probe-timeout", "nan"),
        ("credentials", "--probe-timeout", "inf"),
        ("credentials", "--probe-timeout", "0"),
        ("rotate", "--probe-timeout", "-1"),
        ("rotate", "--adoption-wait", "nan"),
        ("rotate", "--adoption-wait", "inf"),
        ("rotate", "--adoption-wait", "-5"),
        ("rotate", "--adoption-wait", "1e9"),
        ("rotate", "--adoption-wait", "soon"),
    ],
)
def test_durations_are_finite_positive_numbers_of_seconds(run, command, flag, value) -> None:
    line = _refused(run, command, flag, value)
    assert f"argument {flag}: {value!r}" in line


@pytest.mark.parametrize("value", ["nan", "inf", "1e-300", "1e-400", "-1", "0.001", "1e12", "fast"])
def test_rates_are_zero_or_bounded(run, value) -> None:
    line = _refused(run, "backfill", "--rate", value)
    assert "--rate" in line
    assert "0 for no limit" in line or "not a" in line


@pytest.mark.parametrize(
    ("command", "flag", "value"),
    [
        ("backfill", "--segments", "0"),
        ("backfill", "--segments", "1000001"),
        ("backfill", "--segments", "2.5"),
        ("backfill", "--page-size", "0"),
        ("verify", "--segments", "-3"),
        ("verify", "--samples", "-1"),
        ("redrive", "--visibility-timeout", "43201"),
        ("redrive", "--max-messages", "0"),
    ],
)
def test_counts_are_whole_numbers_in_range(run, command, flag, value) -> None:
    line = _refused(run, command, flag, value)
    assert f"argument {flag}: {value!r}" in line


@pytest.mark.parametrize("value", ["not a url", "127.0.0.1:19001", "ftp://host", "http://", "http://h:99999"])
def test_endpoint_urls_are_http_urls(run, value) -> None:
    line = _refused(run, "status", "--cn-endpoint-url", value)
    assert "is not an endpoint URL: give http(s)://HOST[:PORT]" in line


def test_regions_profiles_and_names_are_checked(run) -> None:
    assert "not an AWS region code" in _refused(run, "status", "--us-region", "us east 1")
    assert "not a profile name" in _refused(run, "status", "--cn-profile", "my profile")
    assert "attribute name is 1 to" in _refused(run, "verify", "--timestamp-attribute", "")
    assert "not an alarm name prefix" in _refused(run, "status", "--alarm-prefix", "a b")


def test_paths_that_do_not_exist_are_named_with_where_they_come_from(run, tmp_path) -> None:
    line = _refused(run, "status", "--local-env", "build/local/enviroment.json")
    assert "build/local/enviroment.json: no such file (`make up` writes build/local/environment.json" in line
    assert "no such folder (a Terraform root" in _refused(run, "status", "--cn-root", "envs/cn-nrth-1")
    assert "no such file (save one with `terraform" in _refused(run, "status", "--us-outputs", "us.jsn")
    assert "is a folder: give a file name" in _refused(run, "backfill", "--checkpoint", str(tmp_path))


def test_an_unknown_flag_is_reported_by_its_subcommand_with_the_nearest_one(run) -> None:
    line = _refused(run, "verify", "--repiar")
    assert line.startswith("ddb-replication verify: error: unrecognized argument --repiar")
    assert "(did you mean --repair?)" in line
    assert "`ddb-replication verify --help`" in line


def test_a_mistyped_subcommand_lists_the_subcommands(run) -> None:
    result = run("verfy")
    assert result.code == EXIT_BAD_INPUT
    assert "invalid choice: 'verfy'" in result.err and "'verify'" in result.err
    assert len(result.err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--local-env", "README.md", "--cn-root", "envs/cn-north-1"],
            "--local-env sets both sides itself",
        ),
        (["--local-env", "README.md", "--us-profile", "global"], "give either --local-env alone"),
        (["--cn-root", "envs/cn-north-1", "--cn-outputs", "README.md"], "--cn-root and --cn-outputs"),
    ],
)
def test_flags_that_contradict_each_other_are_refused(run, argv, expected) -> None:
    assert expected in _refused(run, "status", *argv)


def test_a_dry_run_that_would_delete_poison_is_refused(run) -> None:
    assert "--dry-run changes nothing" in _refused(run, "redrive", "--dry-run", "--delete-poison")


def test_a_refused_adoption_wait_leaves_no_new_key(deployment, run) -> None:
    """The crash this closes: `rotate --adoption-wait nan` created and stored a key, then failed."""
    assert run("credentials", *deployment.args(), "--probe-timeout", "0.01").code != EXIT_BAD_INPUT
    before = deployment.us.peer_writer_keys()
    assert len(before) == 1  # installed and stored (the probe itself timed out)
    result = run("rotate", *deployment.args(), "--direction", "cn-to-us", "--adoption-wait", "nan")
    assert result.code == EXIT_BAD_INPUT
    assert deployment.us.peer_writer_keys() == before


@pytest.mark.parametrize(("command", "abbreviation"), [("verify", "--rep"), ("redrive", "--dry")])
def test_a_flag_is_never_abbreviated(run, command, abbreviation) -> None:
    """``verify --rep`` must not run ``--repair`` (it writes): a prefix is an unknown flag."""
    line = _refused(run, command, abbreviation)
    assert abbreviation in line


@pytest.mark.parametrize(
    "document",
    ['{"sides": []}', '{"sides": "cn-north-1"}', '{"sides": {"cn-north-1": [], "us-east-1": {}}}'],
)
def test_a_local_environment_file_of_another_shape_is_bad_input(run, tmp_path, document) -> None:
    path = tmp_path / "environment.json"
    path.write_text(document)
    line = _refused(run, "status", "--local-env", str(path))
    assert "is not a local environment file" in line


def test_an_outputs_file_that_is_not_utf8_is_bad_input(run, tmp_path) -> None:
    path = tmp_path / "cn.json"
    path.write_text('{"table_name": {"value": "t"}}', encoding="utf-16")
    line = _refused(run, "status", "--cn-outputs", str(path), "--us-outputs", str(path))
    assert "is not UTF-8" in line
