"""Every flag of every subcommand is checked before anything happens: a bad value, an unknown flag
or a contradictory pair of flags is exit 2 with one line naming the flag and the fix (no usage block,
no traceback), and nothing was created, stored or written."""

from __future__ import annotations

import argparse
import os
import tomllib
from pathlib import Path

import pytest

from replication_ops import arguments
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
    assert "did you mean 'verify'?" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_a_mistyped_local_environment_command_lists_only_the_listed_commands(capsys) -> None:
    from replication_ops.local.__main__ import build_parser as local_parser

    with pytest.raises(SystemExit) as refused:
        local_parser().parse_args(["updown"])
    assert refused.value.code == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "invalid choice: 'updown' (choose from 'demo', 'up', 'down'" in err
    assert "_serve" not in err


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


# -- what a fresh user met at the last stop (issue 15's walk) -----------------------------------


def _numeric_flags() -> list[tuple[str, str]]:
    """Every flag of every subcommand whose value is a number (its type is one of arguments' number
    types), so a new numeric flag is covered without being listed here."""
    return [
        (command, action.option_strings[0])
        for command, parser in _subparsers().items()
        for action in parser._actions
        if action.option_strings and getattr(action.type, "__name__", "") in NUMBER_TYPES
    ]


NUMBER_TYPES = ("number", "whole", "rate", "port")


def test_there_are_numeric_flags_to_check() -> None:
    assert {flag for _, flag in _numeric_flags()} >= {"--segments", "--rate", "--adoption-wait"}


@pytest.mark.parametrize("value", ["-inf", "-nan", "-1e9", "-1_000", "-0.5e1"])
def test_a_negative_looking_value_of_every_numeric_flag_is_judged_as_a_value(run, value) -> None:
    """argparse takes only ``-5`` and ``-.5`` for numbers; ``--segments -inf`` was "expected one
    argument". Every numeric flag now reads it as its value and its type says what is wrong."""
    for command, flag in _numeric_flags():
        line = _refused(run, command, flag, value)
        assert f"argument {flag}: {value!r}" in line, (command, flag, line)


def test_a_negative_looking_value_is_judged_by_the_local_environment_commands_too(capsys) -> None:
    from replication_ops.local.__main__ import build_parser as local_parser

    with pytest.raises(SystemExit) as refused:
        local_parser().parse_args(["up", "--inbox-shards", "-inf"])
    assert refused.value.code == EXIT_BAD_INPUT
    assert "argument --inbox-shards: '-inf'" in capsys.readouterr().err


def test_a_flag_missing_its_value_before_another_flag_is_still_named(run) -> None:
    line = _refused(run, "verify", "--segments", "--repair")
    assert "argument --segments: expected one argument" in line


@pytest.mark.parametrize(
    ("command", "flag", "what"),
    [
        ("status", "--local-env", "give a file"),
        ("status", "--cn-outputs", "give a file"),
        ("status", "--us-root", "give a folder"),
        ("backfill", "--checkpoint", "give a file name"),
    ],
)
def test_an_empty_path_says_it_is_empty(run, command, flag, what) -> None:
    """``--local-env "$R"`` with R unset said "is a folder" (Path('') is the current folder)."""
    line = _refused(run, command, flag, "")
    assert f"argument {flag}: '' is an empty path: {what} (is the shell variable in it set?)" in line


def test_a_device_given_as_an_outputs_file_is_called_a_device(run) -> None:
    line = _refused(run, "status", "--cn-outputs", "/dev/null")
    assert "/dev/null is a device, not a file (save one with `terraform" in line


def test_an_empty_outputs_file_is_called_empty(run, tmp_path) -> None:
    path = tmp_path / "cn.json"
    path.touch()
    line = _refused(run, "status", "--cn-outputs", str(path))
    assert f"{path} is empty (save one with `terraform -chdir=ROOT output -json > FILE`)" in line


def test_outputs_from_a_pipe_are_accepted(tmp_path) -> None:
    """``--cn-outputs <(terraform output -json)`` names a pipe: it is read, not refused."""
    from replication_ops.arguments import existing_file

    fifo = tmp_path / "outputs"
    os.mkfifo(fifo)
    assert existing_file()(str(fifo)) == str(fifo)


@pytest.mark.parametrize("path", ["/proc/ddb-replication-checkpoint.json", "/proc/self/new/checkpoint.json"])
def test_a_checkpoint_where_no_file_can_be_created_is_refused_before_anything(run, path) -> None:
    """/proc passes a permission check for root but holds no files of ours: creating one is tried."""
    line = _refused(run, "backfill", "--checkpoint", path)
    assert "no file can be created in /proc" in line
    assert "give a path in a folder you can write" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_checkpoint_in_a_read_only_folder_is_refused(run, tmp_path) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert "no file can be created in" in _refused(
            run, "backfill", "--checkpoint", str(folder / "c.json")
        )
    finally:
        folder.chmod(0o755)


def test_a_checkpoint_named_as_a_folder_that_does_not_exist_yet_is_refused(run) -> None:
    line = _refused(run, "backfill", "--checkpoint", "checkpoints/")
    assert "checkpoints/ is a folder: give a file name" in line


def test_a_checkpoint_that_is_a_device_is_refused(run) -> None:
    """os.replace would put a regular file in place of /dev/null."""
    assert "/dev/null is a device: give a file name" in _refused(run, "backfill", "--checkpoint", "/dev/null")


def test_the_same_attribute_for_timestamp_and_origin_is_refused(run) -> None:
    line = _refused(run, "verify", "--timestamp-attribute", "v", "--origin-attribute", "v")
    assert "--timestamp-attribute and --origin-attribute are both 'v'" in line


@pytest.mark.parametrize(
    ("command", "argv", "right"),
    [
        ("credentials", ["--adoption-wait", "30"], "rotate"),
        ("credentials", ["--delete-unused"], "rotate"),
        ("status", ["--repair"], "verify"),
        ("verify", ["--dry-run"], "redrive"),
    ],
)
def test_a_flag_of_another_subcommand_names_that_subcommand(run, command, argv, right) -> None:
    line = _refused(run, command, *argv)
    assert f"{argv[0]} is a flag of another command: use `ddb-replication {right}` (" in line


def test_a_flag_of_several_other_subcommands_names_each(run) -> None:
    line = _refused(run, "status", "--segments", "3")
    assert "use `ddb-replication backfill` or `ddb-replication verify`" in line


def test_credentials_help_points_to_rotate_for_replacing_a_key(run) -> None:
    assert "use `ddb-replication rotate`" in " ".join(run("credentials", "--help").out.split())


def test_a_subcommand_given_after_another_says_to_give_it_alone(run) -> None:
    line = _refused(run, "credentials", "rotate")
    assert "rotate is a command of its own (use `ddb-replication rotate ...`)" in line


def test_version_is_the_distributions_version(run) -> None:
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    result = run("--version")
    assert result.code == 0
    assert result.out == f"ddb-replication {project['version']}\n"


def test_a_home_folder_after_an_equals_sign_is_expanded_as_the_shell_would(
    run, tmp_path, monkeypatch
) -> None:
    """bash leaves ``~`` alone in ``--checkpoint=~/b.json``: it once meant a folder named ``~``."""
    monkeypatch.setenv("HOME", str(tmp_path))
    line = _refused(run, "status", "--cn-outputs=~/cn.json")
    assert f"{tmp_path}/cn.json: no such file" in line


@pytest.mark.parametrize("text", ["localhost:0", "localhost:99999", "rolesanywhere.example.com:65536"])
def test_a_roles_anywhere_endpoint_port_outside_1_to_65535_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="a port is 1 to 65535"):
        arguments.host_port(text)


@pytest.mark.parametrize(
    "text", ["localhost:1", "localhost:65535", "rolesanywhere.cn-north-1.amazonaws.com.cn"]
)
def test_a_roles_anywhere_endpoint_with_a_port_in_range_or_none_is_taken(text: str) -> None:
    assert arguments.host_port(text) == text
