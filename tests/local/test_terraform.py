"""Terraform working copies, the demo's variables against the real roots, and the CLI configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from replication_ops.local.config import REPO_ROOT, SIDES
from replication_ops.local.terraform import (
    TerraformRoot,
    cli_config_file,
    declared_variables,
    demo_variables,
    side_name_prefix,
)


@pytest.mark.parametrize("region", list(SIDES))
def test_every_demo_variable_is_declared_by_the_root(region: str) -> None:
    side = SIDES[region]
    wanted = demo_variables(side, peer_endpoint_url="http://127.0.0.1:1")
    missing = set(wanted) - declared_variables(side.root)
    assert not missing, f"envs/{region} lacks the variables {sorted(missing)} the local environment sets"


def test_the_sides_point_at_each_other() -> None:
    cn = demo_variables(SIDES["cn-north-1"], peer_endpoint_url="http://127.0.0.1:2")
    us = demo_variables(SIDES["us-east-1"], peer_endpoint_url="http://127.0.0.1:1")
    assert cn["peer_region"] == "us-east-1" and us["peer_region"] == "cn-north-1"
    assert cn["peer_inbox_stream_name"] == f"{us['name']}-inbox"
    assert us["peer_inbox_stream_name"] == f"{cn['name']}-inbox"
    assert cn["peer_table_name"] == us["table_name"] and us["peer_table_name"] == cn["table_name"]
    assert cn["table_key_schema"]["range_key"] == "sk"  # a composite key
    assert cn["peer_endpoint_url"] == "http://127.0.0.1:2"
    assert Path(cn["forwarder_zip_path"]).is_absolute()
    assert side_name_prefix("cn-north-1") == "ddbrep-cn"


def test_the_working_copy_keeps_the_repository_clean(tmp_path: Path) -> None:
    root = TerraformRoot(
        SIDES["cn-north-1"], tmp_path / "cn-north-1", "http://127.0.0.1:9", tmp_path / "tf.log"
    )
    (root.directory).mkdir(parents=True)
    (root.directory / "terraform.tfstate").write_text("{}")  # a previous run's state
    (root.directory / "gone.tf").write_text("# removed from the root since")
    missing = root.prepare({"region": "cn-north-1", "not_a_variable": 1})
    assert missing == ["not_a_variable"]
    assert json.loads((root.directory / "local.auto.tfvars.json").read_text()) == {"region": "cn-north-1"}
    assert not (root.directory / "terraform.tfstate").exists()
    assert not (root.directory / "gone.tf").exists()
    copied = sorted(p.name for p in root.directory.glob("*.tf"))
    assert copied == sorted(p.name for p in SIDES["cn-north-1"].root.glob("*.tf"))
    # the root's relative module source resolves in the copy
    assert (root.directory / "../../modules/replication_endpoint").resolve() == (
        REPO_ROOT / "modules" / "replication_endpoint"
    ).resolve()
    env = root.environment()
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9" and env["AWS_REGION"] == "cn-north-1"
    assert not [k for k in env if k.startswith("TF_VAR_")]


def test_cli_configuration_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    existing = tmp_path / "given.rc"
    existing.write_text("")
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(existing))
    monkeypatch.setenv("TF_PROVIDER_MIRROR", "/opt/mirror")
    assert cli_config_file(tmp_path / "tf") == str(existing)
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(tmp_path / "missing.rc"))
    made = cli_config_file(tmp_path / "tf")
    assert made is not None and '"/opt/mirror"' in Path(made).read_text()
    monkeypatch.delenv("TF_PROVIDER_MIRROR")
    assert cli_config_file(tmp_path / "tf") is None
