"""Terraform working copies, the demo's variables against the real roots, and the CLI configuration."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from replication_ops.local.config import REPO_ROOT, SIDES, SetupError
from replication_ops.local.terraform import (
    RolesAnywhereSettings,
    TerraformError,
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
    # The same logical tables on both sides, each side's peer table the other's table.
    assert cn["tables"].keys() == us["tables"].keys() == {"accounts", "events", "profiles"}
    for logical, table in cn["tables"].items():
        assert table["peer_table_name"] == us["tables"][logical]["table_name"]
        assert us["tables"][logical]["peer_table_name"] == table["table_name"]
        assert table["key_schema"] == us["tables"][logical]["key_schema"]
    assert cn["peer_endpoint_url"] == "http://127.0.0.1:2"
    assert Path(cn["forwarder_zip_path"]).is_absolute()
    assert side_name_prefix("cn-north-1") == "ddbrep-cn"


def test_the_demo_tables_have_a_number_key_a_binary_range_key_and_a_composite_string_key() -> None:
    tables = demo_variables(SIDES["cn-north-1"], peer_endpoint_url="http://127.0.0.1:2")["tables"]
    assert tables["accounts"]["key_schema"] == {"hash_key": "account_id", "hash_key_type": "N"}
    assert tables["events"]["key_schema"] == {
        "hash_key": "stream_id",
        "hash_key_type": "S",
        "range_key": "event_id",
        "range_key_type": "B",
    }
    assert tables["profiles"]["key_schema"] == {
        "hash_key": "pk",
        "hash_key_type": "S",
        "range_key": "sk",
        "range_key_type": "S",
    }


@pytest.mark.parametrize("deployed", [True, False])
def test_the_residency_rules_are_cn_north_1s_entry_of_profiles_behind_the_switch(deployed: bool) -> None:
    sides = {
        region: demo_variables(
            SIDES[region], peer_endpoint_url="http://127.0.0.1:2", residency_rules=deployed
        )
        for region in SIDES
    }
    with_rules = {
        (region, name)
        for region, values in sides.items()
        for name, entry in values["tables"].items()
        if "residency" in entry
    }
    assert with_rules == ({("cn-north-1", "profiles")} if deployed else set())
    if deployed:
        assert sides["cn-north-1"]["tables"]["profiles"]["residency"] == {
            "export_filter": "residency == 'GLOBAL'",
            "excluded_attributes": ["national_id"],
        }


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


def _root(tmp_path: Path) -> TerraformRoot:
    return TerraformRoot(SIDES["us-east-1"], tmp_path / "us", "http://127.0.0.1:9", tmp_path / "tf.log")


def _mirror(root: Path) -> Path:
    """A filesystem mirror holding the AWS provider for this machine's platform."""
    import platform

    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    (root / "registry.terraform.io/hashicorp/aws/5.100.0" / f"linux_{arch}").mkdir(parents=True)
    return root


def test_a_mirror_named_in_tf_provider_mirror_is_used(tmp_path: Path, monkeypatch) -> None:
    mirror = _mirror(tmp_path / "mirror")
    monkeypatch.setenv("TF_PROVIDER_MIRROR", str(mirror))
    monkeypatch.delenv("TF_CLI_CONFIG_FILE", raising=False)
    path, note = cli_config_file(tmp_path / "tf")
    assert f'path = "{mirror}"' in Path(path).read_text()
    assert note == f"terraform: providers from the mirror {mirror} (TF_PROVIDER_MIRROR)"


def test_the_registry_folder_itself_is_taken_as_its_mirror(tmp_path: Path, monkeypatch) -> None:
    mirror = _mirror(tmp_path / "mirror")
    monkeypatch.setenv("TF_PROVIDER_MIRROR", str(mirror / "registry.terraform.io"))
    path, note = cli_config_file(tmp_path / "tf")
    assert f'path = "{mirror}"' in Path(path).read_text()
    assert "taken as its parent" in note


def test_a_changed_mirror_is_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = _mirror(tmp_path / "one"), _mirror(tmp_path / "two")
    monkeypatch.delenv("TF_CLI_CONFIG_FILE", raising=False)
    monkeypatch.setenv("TF_PROVIDER_MIRROR", str(first))
    cli_config_file(tmp_path / "tf")
    monkeypatch.setenv("TF_PROVIDER_MIRROR", str(second))
    path, _ = cli_config_file(tmp_path / "tf")
    assert f'path = "{second}"' in Path(path).read_text()


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_a_wrong_mirror_is_a_setup_error_naming_the_fix(tmp_path: Path, monkeypatch, kind: str) -> None:
    wrong = tmp_path / "nowhere"
    if kind == "empty":
        wrong.mkdir()
    monkeypatch.setenv("TF_PROVIDER_MIRROR", str(wrong))
    with pytest.raises(SetupError) as refused:
        cli_config_file(tmp_path / "tf")
    message = str(refused.value)
    assert message.startswith(f"TF_PROVIDER_MIRROR={wrong}")
    assert "set it to the folder that holds registry.terraform.io/" in message
    assert "\n" not in message


def test_a_users_own_configuration_is_used_as_it_is(tmp_path: Path, monkeypatch) -> None:
    existing = tmp_path / "given.rc"
    existing.write_text('credentials "app.terraform.io" {}\n')
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(existing))
    monkeypatch.delenv("TF_PROVIDER_MIRROR", raising=False)
    assert cli_config_file(tmp_path / "tf") == (
        str(existing),
        f"terraform: providers as TF_CLI_CONFIG_FILE={existing} says",
    )


def test_the_public_registry_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_PROVIDER_MIRROR", "registry")
    path, note = cli_config_file(tmp_path / "tf")
    assert "provider_installation" not in Path(path).read_text()
    assert "public registry" in note


def test_an_init_that_cannot_install_providers_says_tf_provider_mirror(tmp_path: Path, monkeypatch) -> None:
    """terraform init against an unreachable registry: the real Terraform, an address that cannot
    resolve, no mirror (TF_PROVIDER_MIRROR=registry keeps the machine's mirror out of it)."""
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not on PATH")
    monkeypatch.setenv("TF_PROVIDER_MIRROR", "registry")
    monkeypatch.setenv("TF_REGISTRY_DISCOVERY_RETRY", "0")
    root = _root(tmp_path)
    root.directory.mkdir(parents=True)
    (root.directory / "versions.tf").write_text(
        "terraform {\n  required_providers {\n"
        '    aws = {\n      source  = "unreachable.invalid/hashicorp/aws"\n    }\n'
        "  }\n}\n"
    )
    root.cli_config, _ = cli_config_file(tmp_path / "tf")
    with pytest.raises(SetupError) as refused:
        root.init()
    assert "TF_PROVIDER_MIRROR" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_failed_command_names_terraforms_error_line_and_the_log(tmp_path: Path) -> None:
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not on PATH")
    root = _root(tmp_path)
    root.directory.mkdir(parents=True)
    (root.directory / "main.tf").write_text('resource "nonsense {\n')
    with pytest.raises(TerraformError) as failed:
        root.run("validate", "-no-color")
    message = str(failed.value)
    assert message.startswith("terraform validate failed for us-east-1: ")
    assert message.endswith(f"(log: {tmp_path / 'tf.log'})")
    cause = message.removeprefix("terraform validate failed for us-east-1: ").split(" (log: ")[0]
    assert cause and not cause.startswith("exit")  # Terraform's own Error: line, not an empty tail
    assert "\n" not in message


# -- peer_writer_authentication ---------------------------------------------------------------------

ROLES_ANYWHERE = RolesAnywhereSettings("-----BEGIN CERTIFICATE-----\n...", "localhost:4443")


@pytest.mark.parametrize("region", list(SIDES))
def test_every_roles_anywhere_variable_is_declared_by_the_root(region: str) -> None:
    side = SIDES[region]
    wanted = demo_variables(side, peer_endpoint_url="http://127.0.0.1:1", roles_anywhere=ROLES_ANYWHERE)
    missing = set(wanted) - declared_variables(side.root)
    assert not missing, f"envs/{region} lacks the variables {sorted(missing)} the local environment sets"


def test_roles_anywhere_gives_each_side_the_pairs_ca_and_the_peers_endpoint_and_name() -> None:
    """The role of a side trusts the PEER forwarder's CN "<peer name>.forwarder.<peer region>"
    (certificates.forwarder_common_name), so each side names its peer as the peer names itself."""
    cn = demo_variables(
        SIDES["cn-north-1"], peer_endpoint_url="http://127.0.0.1:2", roles_anywhere=ROLES_ANYWHERE
    )
    us = demo_variables(
        SIDES["us-east-1"], peer_endpoint_url="http://127.0.0.1:1", roles_anywhere=ROLES_ANYWHERE
    )
    assert cn["peer_writer_authentication"] == us["peer_writer_authentication"] == "roles_anywhere"
    assert cn["roles_anywhere_ca_certificate"] == ROLES_ANYWHERE.ca_certificate
    assert cn["peer_rolesanywhere_endpoint"] == "localhost:4443"
    assert cn["peer_name"] == us["name"] and us["peer_name"] == cn["name"]


def test_without_roles_anywhere_settings_the_sides_use_access_keys() -> None:
    values = demo_variables(SIDES["cn-north-1"], peer_endpoint_url="http://127.0.0.1:2")
    assert values["peer_writer_authentication"] == "access_key"
    assert not {"roles_anywhere_ca_certificate", "peer_rolesanywhere_endpoint"} & set(values)
