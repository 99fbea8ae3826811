"""Addressing the sides: Terraform outputs, profiles, credentials, and the errors for each."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from replication_ops.errors import EXIT_AWS_ACCESS, EXIT_BAD_INPUT, EXIT_OK
from replication_ops.sides import file_outputs


def test_outputs_are_read_from_terraform_output_json(deployment, run, tmp_path, monkeypatch):
    binary = tmp_path / "bin"
    binary.mkdir()
    fake = binary / "terraform"
    fake.write_text(
        '#!/bin/sh\nroot="${1#-chdir=}"\n[ "$2 $3" = "output -json" ] || exit 9\ncat "$root/outputs.json"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{binary}{os.pathsep}{os.environ['PATH']}")
    roots = {}
    for label in ("cn", "us"):
        root = tmp_path / "envs" / label
        root.mkdir(parents=True)
        (root / "outputs.json").write_text(getattr(deployment, f"{label}_outputs").read_text())
        roots[label] = str(root)
    result = run("verify", "--cn-root", roots["cn"], "--us-root", roots["us"], "--quiet")
    assert result.code == EXIT_OK, result.err


def test_a_root_that_does_not_exist_is_bad_input(run, tmp_path):
    result = run("status", "--cn-root", str(tmp_path / "nowhere"), "--us-root", str(tmp_path))
    assert result.code == EXIT_BAD_INPUT
    assert "nowhere: no such folder (a Terraform root such as envs/cn-north-1)" in result.err


def test_missing_outputs_say_which_flags_to_give(deployment, run):
    result = run("verify", "--us-outputs", str(deployment.us_outputs))
    assert result.code == EXIT_BAD_INPUT
    assert "--cn-root DIR or --cn-outputs FILE" in result.err


def test_a_missing_output_is_named(deployment, run):
    del deployment.cn.outputs["tombstone_table_name"]
    deployment.rewrite_outputs()
    deployment.cn.put("a", ts="1")
    result = run("verify", *deployment.args(), "--repair")
    assert result.code == EXIT_BAD_INPUT
    assert "'tombstone_table_name' is missing" in result.err


def test_empty_outputs_mean_the_root_was_not_applied(tmp_path):
    path = tmp_path / "o.json"
    path.write_text("{}")
    with pytest.raises(Exception, match="has the root been applied"):
        file_outputs(str(path))


def test_a_wrong_profile_is_bad_input(deployment, run, tmp_path, monkeypatch):
    config = tmp_path / "aws-config"
    config.write_text("[profile real]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    result = run("verify", *deployment.args(), "--cn-profile", "chinaa")
    assert result.code == EXIT_BAD_INPUT
    assert "chinaa" in result.err
    assert "profile" in result.err


def test_no_credentials_is_an_access_problem(tmp_path, run, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    outputs = tmp_path / "o.json"
    document = {"region": "us-east-1", "table_names": {"t": "t"}, "tombstone_table_name": "tt"}
    outputs.write_text(json.dumps(document))
    result = run(
        "verify",
        "--cn-outputs",
        str(outputs),
        "--us-outputs",
        str(outputs),
        "--cn-endpoint-url",
        "http://127.0.0.1:9",
        "--us-endpoint-url",
        "http://127.0.0.1:9",
    )
    assert result.code == EXIT_AWS_ACCESS
    assert "Unable to locate credentials" in result.err


def _local_environment(tmp_path: Path, **extra) -> Path:
    document = {
        "sides": {
            region: {
                "endpoint_url": f"http://127.0.0.1:{port}",
                "region": region,
                "aws_access_key_id": "AKIALOCAL",
                "aws_secret_access_key": "local",
            }
            for region, port in (("cn-north-1", 4566), ("us-east-1", 4567))
        },
        **extra,
    }
    path = tmp_path / "environment.json"
    path.write_text(json.dumps(document))
    return path


def test_the_local_environment_file_gives_endpoints_keys_and_outputs(tmp_path):
    from replication_ops.sides import SideOptions, apply_local_environment

    path = _local_environment(tmp_path)
    (tmp_path / "tf" / "cn-north-1" / "envs" / "cn-north-1").mkdir(parents=True)
    (tmp_path / "tf" / "us-east-1").mkdir(parents=True)
    (tmp_path / "tf" / "us-east-1" / "outputs.json").write_text("{}")
    options = {label: SideOptions(label) for label in ("cn", "us")}
    apply_local_environment(options, str(path))
    assert options["cn"].endpoint_url == "http://127.0.0.1:4566"
    assert options["us"].region == "us-east-1"
    assert options["cn"].access_key_id == "AKIALOCAL"
    assert Path(options["cn"].root).parts[-2:] == ("envs", "cn-north-1")
    assert options["us"].outputs_file == str(tmp_path / "tf" / "us-east-1" / "outputs.json")


def test_a_local_environment_without_its_roots_says_make_up_again(run, tmp_path):
    result = run("status", "--local-env", str(_local_environment(tmp_path)))
    assert result.code == EXIT_BAD_INPUT
    assert "Terraform root" in result.err and "is gone (`make up` again)" in result.err


def test_a_local_environment_whose_server_is_gone_says_make_up(run, tmp_path):
    path = _local_environment(tmp_path, server_pid=_a_pid_that_is_gone())
    result = run("status", "--local-env", str(path))
    assert result.code == EXIT_BAD_INPUT
    assert "no longer running" in result.err and "`make up`" in result.err


def test_a_file_that_is_not_a_local_environment_is_named(run, tmp_path):
    path = tmp_path / "environment.json"
    path.write_text('{"not": "it"}')
    result = run("status", "--local-env", str(path))
    assert result.code == EXIT_BAD_INPUT
    assert "is not a local environment file" in result.err


def _a_pid_that_is_gone() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_every_subcommand_has_help_with_examples_and_exit_codes(run, capsys):
    from replication_ops.cli import build_parser

    parser = build_parser()
    for command in ("credentials", "rotate", "backfill", "verify", "redrive", "status"):
        with pytest.raises(SystemExit) as exited:
            parser.parse_args([command, "--help"])
        assert exited.value.code == 0
        text = capsys.readouterr().out
        assert f"ddb-replication {command}" in text
        assert "exit codes:" in text


def test_bad_arguments_exit_2(run):
    assert run("backfill", "--from", "eu").code == EXIT_BAD_INPUT
