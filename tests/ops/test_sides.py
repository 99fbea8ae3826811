"""Addressing the sides: Terraform outputs, profiles, credentials, and the errors for each."""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from replication_ops.errors import EXIT_AWS_ACCESS, EXIT_BAD_INPUT, EXIT_OK, ConfigError
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
        (root / "main.tf").write_text("# a Terraform root\n")
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
    del deployment.cn.outputs["forwarder_function_name"]  # where verify reads cn's residency rules
    deployment.rewrite_outputs()
    deployment.cn.put("a", ts="1")
    result = run("verify", *deployment.args(), "--repair")
    assert result.code == EXIT_BAD_INPUT
    assert "'forwarder_function_name' is missing" in result.err


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
    files = {}
    for label, region in (("cn", "cn-north-1"), ("us", "us-east-1")):
        files[label] = tmp_path / f"{label}.json"
        files[label].write_text(
            json.dumps(
                {
                    "region": region,
                    "table_names": {"t": "t"},
                    "tombstone_table_name": "tt",
                    "forwarder_function_name": "f",
                }
            )
        )
    result = run(
        "verify",
        "--cn-outputs",
        str(files["cn"]),
        "--us-outputs",
        str(files["us"]),
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


def test_the_local_environment_file_names_the_ca_its_tls_endpoints_present(tmp_path, monkeypatch):
    """Roles Anywhere's CreateSession is TLS even locally: the CLI trusts the local CA the file names,
    through the SDKs' AWS_CA_BUNDLE, over a machine's own bundle (which cannot verify it)."""
    from replication_ops.sides import SideOptions, apply_local_environment

    path = _local_environment(tmp_path)
    document = json.loads(path.read_text())
    for entry in document["sides"].values():
        entry["ca_bundle"] = "/b/tls/local-ca.pem"
    path.write_text(json.dumps(document))
    (tmp_path / "tf" / "cn-north-1").mkdir(parents=True)
    (tmp_path / "tf" / "us-east-1").mkdir(parents=True)
    for region in ("cn-north-1", "us-east-1"):
        (tmp_path / "tf" / region / "outputs.json").write_text("{}")
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    apply_local_environment({label: SideOptions(label) for label in ("cn", "us")}, str(path))
    assert os.environ["AWS_CA_BUNDLE"] == "/b/tls/local-ca.pem"
    monkeypatch.setenv("AWS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    apply_local_environment({label: SideOptions(label) for label in ("cn", "us")}, str(path))
    assert os.environ["AWS_CA_BUNDLE"] == "/b/tls/local-ca.pem"


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
    commands = [[name] for name in _subcommands(parser)]
    commands += [["ca", name] for name in _subcommands(_subcommands(parser)["ca"])]
    assert {"credentials", "rotate", "backfill", "verify", "redrive", "status", "plan", "crl"} <= {
        c[0] for c in commands
    }
    for command in commands:
        with pytest.raises(SystemExit) as exited:
            parser.parse_args([*command, "--help"])
        assert exited.value.code == 0
        text = capsys.readouterr().out
        assert f"ddb-replication {command[0]}" in text, command
        assert "exit codes:" in text, command


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def test_bad_arguments_exit_2(run):
    assert run("backfill", "--from", "eu").code == EXIT_BAD_INPUT


def _outputs(
    tmp_path: Path, name: str, region, account: str = "111122223333", tables: dict[str, str] | None = None
) -> Path:
    partition = "aws-cn" if str(region).startswith("cn-") else "aws"
    path = tmp_path / name
    path.write_text(
        json.dumps(
            {
                "region": {"value": region},
                "table_names": {"value": tables or {"profiles": "profiles"}},
                "tombstone_table_name": {"value": "profiles-tombstones"},
                "inbox_stream_arn": {
                    "value": f"arn:{partition}:kinesis:{region}:{account}:stream/ddbrep-inbox"
                },
            }
        )
    )
    return path


def _refused(run, *argv: str) -> str:
    result = run(*argv)
    assert result.code == EXIT_BAD_INPUT, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.err, result.err
    return lines[0]


@pytest.mark.parametrize("region", ["China North", "", 42, {"name": "cn-north-1"}])
def test_the_region_in_an_outputs_file_is_checked_like_the_flag(run, tmp_path, region):
    cn = _outputs(tmp_path, "cn.json", region)
    us = _outputs(tmp_path, "us.json", "us-east-1")
    line = _refused(run, "status", "--cn-outputs", str(cn), "--us-outputs", str(us))
    assert f"{cn}: the output 'region' is {region!r}, not an AWS region code (e.g. cn-north-1)" in line


def test_swapped_outputs_files_are_refused_with_the_flags_to_exchange(run, tmp_path):
    cn = _outputs(tmp_path, "cn.json", "cn-north-1")
    us = _outputs(tmp_path, "us.json", "us-east-1")
    line = _refused(run, "verify", "--cn-outputs", str(us), "--us-outputs", str(cn))
    assert "the sides are swapped" in line
    assert "exchange the values of --cn-outputs and --us-outputs" in line


@pytest.mark.parametrize("name", ["cn.json", "us.json"])
def test_the_same_outputs_file_for_both_sides_is_refused(run, tmp_path, name):
    """verify would compare a table with itself and find it identical."""
    path = _outputs(tmp_path, name, "cn-north-1" if name == "cn.json" else "us-east-1")
    line = _refused(run, "verify", "--cn-outputs", str(path), "--us-outputs", str(path))
    assert "both sides name the same table arn:aws" in line
    assert ":111122223333:table/profiles" in line


def test_the_same_outputs_file_of_a_table_map_names_the_first_shared_table(run, tmp_path):
    path = _outputs(tmp_path, "cn.json", "cn-north-1", tables={"profiles": "p", "orders": "o"})
    line = _refused(run, "backfill", "--from", "cn", "--cn-outputs", str(path), "--us-outputs", str(path))
    assert "both sides name the same table arn:aws-cn:dynamodb:cn-north-1:111122223333:table/o (" in line


def test_one_table_under_two_logical_names_is_still_the_same_table(run, tmp_path):
    """Each table ARN of one map is compared with every one of the other: a backfill would copy the
    table onto itself whatever the two maps call it."""
    cn = _outputs(tmp_path, "cn.json", "cn-north-1", tables={"profiles": "profiles"})
    us = _outputs(tmp_path, "us.json", "cn-north-1", tables={"orders": "o", "people": "profiles"})
    line = _refused(run, "verify", "--cn-outputs", str(cn), "--us-outputs", str(us))
    assert "both sides name the same table arn:aws-cn:dynamodb:cn-north-1:111122223333:table/profiles" in line


@pytest.mark.parametrize(
    ("cn_region", "us_region", "wrong"),
    [("us-west-2", "us-east-1", "cn"), ("cn-north-1", "cn-northwest-1", "us")],
)
def test_a_side_outside_its_partition_is_refused(run, tmp_path, cn_region, us_region, wrong):
    cn = _outputs(tmp_path, "cn.json", cn_region)
    us = _outputs(tmp_path, "us.json", us_region, account="444455556666")
    line = _refused(run, "status", "--cn-outputs", str(cn), "--us-outputs", str(us))
    wanted = {"cn": "aws-cn", "us": "aws"}[wrong]
    assert f"but the {wrong} side is in {wanted}" in line
    assert f"give --{wrong}-outputs the {wrong} side's outputs" in line


def test_a_region_flag_in_the_wrong_partition_names_the_flag(run, tmp_path):
    cn = _outputs(tmp_path, "cn.json", "cn-north-1")
    us = _outputs(tmp_path, "us.json", "us-east-1", account="444455556666")
    line = _refused(
        run, "status", "--cn-outputs", str(cn), "--us-outputs", str(us), "--cn-region", "us-west-2"
    )
    assert "give --cn-region the cn side's region" in line


def test_a_region_in_no_partition_is_refused(run, tmp_path):
    cn = _outputs(tmp_path, "cn.json", "xx-nowhere-1")
    us = _outputs(tmp_path, "us.json", "us-east-1")
    line = _refused(run, "status", "--cn-outputs", str(cn), "--us-outputs", str(us))
    assert "region 'xx-nowhere-1'" in line and "is in no AWS partition" in line


def test_a_side_without_outputs_is_named_before_the_other_sides_root_is_read(run, tmp_path, monkeypatch):
    """`verify --cn-root envs/cn-north-1` alone ran terraform for cn, then said us had no outputs."""
    binary = tmp_path / "bin"
    binary.mkdir()
    marker = tmp_path / "terraform-ran"
    fake = binary / "terraform"
    fake.write_text(f"#!/bin/sh\ntouch {marker}\necho '{{}}'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{binary}{os.pathsep}{os.environ['PATH']}")
    line = _refused(run, "verify", "--cn-root", "envs/cn-north-1")
    assert "say where the us side's Terraform outputs are: --us-root DIR or --us-outputs FILE" in line
    assert "(or --local-env FILE for the local pair)" in line
    assert not marker.exists()


def test_a_folder_without_terraform_files_is_not_a_root(run, tmp_path):
    us = _outputs(tmp_path, "us.json", "us-east-1")
    line = _refused(run, "status", "--cn-root", "docs", "--us-outputs", str(us))
    assert "docs is not a Terraform root (it holds no .tf file): give a root such as envs/cn-north-1" in line


def test_a_json_file_of_something_else_is_not_taken_for_outputs(run, tmp_path):
    """The local environment's own file given as --cn-outputs said only "no region"."""
    other = _local_environment(tmp_path)
    us = _outputs(tmp_path, "us.json", "us-east-1")
    line = _refused(run, "status", "--cn-outputs", str(other), "--us-outputs", str(us))
    assert f"{other} holds no outputs of a replication root (no region or table_names)" in line
    assert "terraform -chdir=envs/cn-north-1 output -json > cn.json" in line


def test_an_outputs_file_that_is_not_json_says_how_to_save_one(run, tmp_path):
    us = _outputs(tmp_path, "us.json", "us-east-1")
    line = _refused(run, "status", "--cn-outputs", "README.md", "--us-outputs", str(us))
    assert "README.md is not JSON (Expecting value, line 1): save them with `terraform" in line


@pytest.mark.parametrize(
    ("field", "value"), [("endpoint_url", "127.0.0.1:4566"), ("region", "China"), ("region", 5)]
)
def test_a_local_environment_value_is_checked_as_its_flag_is(run, tmp_path, field, value):
    path = _local_environment(tmp_path)
    document = json.loads(path.read_text())
    document["sides"]["cn-north-1"][field] = value
    path.write_text(json.dumps(document))
    line = _refused(run, "status", "--local-env", str(path))
    assert f"the cn side's {field} {value!r} is not valid: `make up` writes the file again" in line


def test_a_terraform_failure_is_its_error_line_without_the_box(run, tmp_path, monkeypatch):
    binary = tmp_path / "bin"
    binary.mkdir()
    fake = binary / "terraform"
    fake.write_text(
        "#!/bin/sh\nprintf '╷\\n│ Error: Backend initialization required\\n│ \\n' >&2\n"
        "printf '│ Run terraform init.\\n╵\\n' >&2\nexit 1\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{binary}{os.pathsep}{os.environ['PATH']}")
    us = _outputs(tmp_path, "us.json", "us-east-1")
    line = _refused(run, "status", "--cn-root", "envs/cn-north-1", "--us-outputs", str(us))
    assert line.endswith(
        "terraform -chdir=envs/cn-north-1 output -json failed: Error: Backend initialization required"
    )


def _with_peer(path: Path, **peer) -> Path:
    document = json.loads(path.read_text())
    document["peer_settings"] = {"value": {"credentials_secret": "s", "https_proxy": None, **peer}}
    path.write_text(json.dumps(document))
    return path


def test_outputs_of_two_deployments_are_not_a_pair(run, tmp_path):
    """Each root's peer_settings output names the peer it was deployed with: per logical table, the
    peer's table (peer_settings.table_names against the peer's table_names)."""
    cn = _with_peer(
        _outputs(tmp_path, "cn.json", "cn-north-1"), region="us-east-1", table_names={"profiles": "staging"}
    )
    us = _with_peer(
        _outputs(tmp_path, "us.json", "us-east-1"), region="cn-north-1", table_names={"profiles": "profiles"}
    )
    line = _refused(run, "verify", "--cn-outputs", str(cn), "--us-outputs", str(us))
    assert (
        f"the two sides are not one pair: {cn} expects its peer's table_names[\"profiles\"] to be 'staging'"
        in line
    )
    assert f"but {us} has 'profiles': give the outputs of the two roots deployed together" in line


def test_one_table_of_the_map_deployed_with_another_peer_is_not_a_pair(run, tmp_path):
    tables = {"orders": "orders", "profiles": "profiles"}
    cn = _with_peer(
        _outputs(tmp_path, "cn.json", "cn-north-1", tables=tables),
        region="us-east-1",
        table_names={"orders": "orders", "profiles": "profiles-staging"},
    )
    us = _with_peer(
        _outputs(tmp_path, "us.json", "us-east-1", tables=tables), region="cn-north-1", table_names=tables
    )
    line = _refused(run, "status", "--cn-outputs", str(cn), "--us-outputs", str(us))
    assert "expects its peer's table_names[\"profiles\"] to be 'profiles-staging'" in line


def test_a_table_only_one_map_holds_is_left_to_the_table_selection(tmp_path):
    """peer_settings names the peer's table of each of this side's logical tables; a logical table the
    peer does not serve is no sign of another deployment (verify and backfill refuse it by name unless
    --table leaves it out)."""
    from replication_ops.sides import SideOptions, make_pair

    cn = _with_peer(
        _outputs(tmp_path, "cn.json", "cn-north-1", tables={"orders": "orders", "profiles": "profiles"}),
        region="us-east-1",
        table_names={"orders": "orders", "profiles": "profiles"},
    )
    us = _with_peer(
        _outputs(tmp_path, "us.json", "us-east-1"), region="cn-north-1", table_names={"profiles": "profiles"}
    )
    options = {"cn": SideOptions("cn", outputs_file=str(cn)), "us": SideOptions("us", outputs_file=str(us))}
    pair = make_pair(options)
    assert pair.tables("profiles") == ["profiles"]
    with pytest.raises(ConfigError, match="only on cn: orders; only on us: none"):
        pair.tables()


def test_outputs_deployed_together_are_a_pair(run, tmp_path):
    cn = _with_peer(
        _outputs(tmp_path, "cn.json", "cn-north-1"), region="us-east-1", table_names={"profiles": "profiles"}
    )
    us = _with_peer(
        _outputs(tmp_path, "us.json", "us-east-1"), region="cn-north-1", table_names={"profiles": "profiles"}
    )
    from replication_ops.sides import SideOptions, make_pair

    options = {"cn": SideOptions("cn", outputs_file=str(cn)), "us": SideOptions("us", outputs_file=str(us))}
    pair = make_pair(options)
    assert (pair.cn.region, pair.us.region) == ("cn-north-1", "us-east-1")


def test_version_attributes_other_than_the_replicators_are_refused(deployment, run):
    """A backfill with the wrong --timestamp-attribute would write every item as unversioned."""
    lam = deployment.us.client("lambda")
    name = deployment.us.outputs["replicator_function_name"]
    variables = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    lam.update_function_configuration(
        FunctionName=name, Environment={"Variables": {**variables, "TIMESTAMP_ATTRIBUTE": "v_ts"}}
    )
    deployment.cn.put("a", ts="100")
    line = _refused(run, "backfill", "--from", "cn", *deployment.args())
    assert "us (us-east-1): its replicator versions items with 'v_ts' and 'last_updater_region'" in line
    assert "give --timestamp-attribute v_ts --origin-attribute last_updater_region" in line
    assert deployment.us.get("a") is None
