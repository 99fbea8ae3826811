"""The two environment roots are mirror images: each one's peer is the other one.

Parses envs/*/variables.tf defaults and terraform.tfvars.example (no Terraform needed); the
module's `terraform test` (tests/roots.tftest.hcl) plans both roots with mock providers as well.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from hcl_blocks import attributes, read_blocks, string_value, without_comments

REPO = Path(__file__).resolve().parents[2]
ROOTS = {"cn-north-1": REPO / "envs" / "cn-north-1", "us-east-1": REPO / "envs" / "us-east-1"}
PEER = {"cn-north-1": "us-east-1", "us-east-1": "cn-north-1"}
MODULE = REPO / "modules" / "replication_endpoint"


def _defaults(root: Path) -> dict[str, str]:
    found = {}
    for variable in read_blocks(root, "variable"):
        raw = variable.attributes().get("default", "null")
        found[variable.name] = string_value(raw) if raw.startswith('"') else raw
    return found


def _example(root: Path) -> dict[str, str]:
    raw = attributes(without_comments((root / "terraform.tfvars.example").read_text()))
    return {k: string_value(v) if v.startswith('"') else v for k, v in raw.items()}


def _tables(values: dict[str, str]) -> dict[str, dict[str, str]]:
    """The ``tables`` map (one attribute per line) as {logical name: {table_name, peer_table_name}}:
    each name as the module resolves it (table_name null: "<name>-<logical name>"; peer_table_name
    null: the table's own name)."""
    found = {}
    for logical, raw in attributes(values["tables"].strip()[1:-1]).items():
        entry = {k: string_value(v) for k, v in attributes(raw.strip()[1:-1]).items() if v.startswith('"')}
        table = entry.get("table_name", f"{values['name']}-{logical}")
        found[logical] = {"table_name": table, "peer_table_name": entry.get("peer_table_name", table)}
    return found


@pytest.mark.parametrize("source", [_defaults, _example], ids=["variable defaults", "tfvars example"])
@pytest.mark.parametrize("side", sorted(ROOTS))
def test_peer_is_the_other_root(side: str, source) -> None:
    mine, theirs = source(ROOTS[side]), source(ROOTS[PEER[side]])
    if source is _example:
        # The example leaves unset values to the defaults.
        mine = {**_defaults(ROOTS[side]), **mine}
        theirs = {**_defaults(ROOTS[PEER[side]]), **theirs}
    assert mine["region"] == side
    assert mine["peer_region"] == theirs["region"] == PEER[side]
    assert mine["peer_inbox_stream_name"] == f"{theirs['name']}-inbox"
    # The peer-writer role trusts the certificate CN "<peer_name>.forwarder.<peer_region>"
    # (roles_anywhere): the peer's name, or its forwarder would be refused.
    assert mine["peer_name"] == theirs["name"]
    my_tables, their_tables = _tables(mine), _tables(theirs)
    assert set(my_tables) == set(their_tables), "the same logical tables on both sides"
    for logical, table in my_tables.items():
        assert table["peer_table_name"] == their_tables[logical]["table_name"], logical
    assert mine["name"] != theirs["name"], (
        "distinct prefixes, so both sides fit one account or one test server"
    )


@pytest.mark.parametrize("side", sorted(ROOTS))
def test_the_example_replicates_two_tables_through_one_endpoint(side: str) -> None:
    assert len(_tables(_example(ROOTS[side]))) == 2


def test_roots_declare_the_same_variables_and_outputs() -> None:
    for kind in ("variable", "output"):
        names = [sorted(b.name for b in read_blocks(root, kind)) for root in ROOTS.values()]
        assert names[0] == names[1], f"the roots' {kind}s differ"


@pytest.mark.parametrize("side", sorted(ROOTS))
def test_every_root_variable_is_used_and_every_example_value_declared(side: str) -> None:
    root = ROOTS[side]
    code = "\n".join(without_comments(p.read_text()) for p in root.glob("*.tf") if p.name != "variables.tf")
    declared = {v.name for v in read_blocks(root, "variable")}
    unused = {name for name in declared if f"var.{name}" not in code}
    assert not unused, f"{side}: variables never used: {sorted(unused)}"
    assert set(_example(root)) <= declared, f"{side}: example sets undeclared variables"


@pytest.mark.parametrize("side", sorted(ROOTS))
def test_root_passes_only_module_inputs(side: str) -> None:
    module_inputs = {v.name for v in read_blocks(MODULE, "variable")}
    (call,) = [b for b in read_blocks(ROOTS[side], "module") if b.name == "replication"]
    assert set(call.attributes()) - {"source"} <= module_inputs


@pytest.mark.parametrize("side", sorted(ROOTS))
def test_provider_is_plain(side: str) -> None:
    """Region from a variable, default tags, and no endpoint: AWS_ENDPOINT_URL must work unchanged."""
    (provider,) = read_blocks(ROOTS[side], "provider")
    body = provider.body
    assert re.search(r"^\s*region\s*=\s*var\.region\s*$", body, re.MULTILINE)
    assert "default_tags" in body
    for forbidden in ("endpoints", "skip_credentials_validation", "access_key", "secret_key", "127.0.0.1"):
        assert forbidden not in body, f"{side}: provider block sets {forbidden}"


def test_no_literal_aws_partition_in_arns() -> None:
    for path in [*MODULE.glob("*.tf"), *(p for root in ROOTS.values() for p in root.glob("*.tf"))]:
        code = without_comments(path.read_text())
        assert "arn:aws:" not in code, f"{path.relative_to(REPO)}: build ARNs from data.aws_partition"


def test_no_lock_file_committed() -> None:
    try:
        tracked = subprocess.run(
            ["git", "ls-files", "envs", "modules"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    assert not [p for p in tracked if p.endswith(".terraform.lock.hcl")]


@pytest.mark.parametrize("side", sorted(ROOTS))
def test_root_tables_take_the_modules_table_entries(side: str) -> None:
    """A root passes ``tables`` through as it is: its entries, residency rules included, have the
    module's type, so nothing a table may set is lost or retyped on the way."""

    def tables_type(folder: Path) -> str:
        (variable,) = [v for v in read_blocks(folder, "variable") if v.name == "tables"]
        return re.sub(r"\s+", " ", without_comments(variable.attributes()["type"]))

    assert tables_type(ROOTS[side]) == tables_type(MODULE)


def test_the_cn_example_keeps_national_ids_and_non_global_profiles_in_china() -> None:
    """The worked example of docs/residency.md: cn-north-1's profiles exports GLOBAL items only,
    never their national_id; the us-east-1 side has no rules (the rules are the sending side's)."""
    cn = attributes(_example(ROOTS["cn-north-1"])["tables"].strip()[1:-1])
    profiles = attributes(cn["profiles"].strip()[1:-1])
    rules = attributes(profiles["residency"].strip()[1:-1])
    assert string_value(rules["export_filter"]) == "residency == 'GLOBAL'"
    assert rules["excluded_attributes"].strip() == '["national_id"]'
    assert "residency" not in _example(ROOTS["us-east-1"])["tables"]
