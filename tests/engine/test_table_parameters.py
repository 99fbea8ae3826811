"""The table map read from Parameter Store at cold start (replication/table_parameters.py): every
parameter under TABLES_PARAMETER_PATH, page by page, checked against TABLES_SHA256.

GetParametersByPath returns at most MaxResults (1 to 10) parameters a page and a NextToken while more
follow (Systems Manager API reference, GetParametersByPath); moto's SSM runs in-process.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from replication.errors import ConfigurationError
from replication.settings import SideSettings, read_tables
from replication.table_parameters import tables_digest
from tests.table_map import PATH, put_table_map

from .harness import NAMES, TOMBSTONES, served_table, tables_entry

REGION = "us-east-1"


@pytest.fixture
def ssm() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ssm", region_name=REGION)


def side() -> SideSettings:
    return SideSettings(TOMBSTONES, REGION, NAMES, 86400)


def entry(number: int) -> dict[str, Any]:
    """The entry of a table ``table-<number>`` with its own table and peer table."""
    table = f"table-{number}"
    return tables_entry(served_table(REGION, name=f"t{number}", table=table, peer_table=f"peer-{table}"))


def test_a_map_of_forty_tables_is_read_across_pages_of_at_most_ten(ssm: Any) -> None:
    variables = put_table_map(ssm, {f"t{n}": entry(n) for n in range(40)})
    requests: list[dict[str, Any]] = []
    ssm.meta.events.register(
        "provide-client-params.ssm.GetParametersByPath", lambda params, **_: requests.append(dict(params))
    )

    tables = read_tables(variables, side(), ssm)

    assert sorted(tables) == sorted(f"t{n}" for n in range(40))
    assert tables["t39"].table.table_name == "table-39" and tables["t39"].peer_table_name == "peer-table-39"
    assert len(requests) >= 4 and all(r["MaxResults"] <= 10 and not r["Recursive"] for r in requests)


def test_a_map_whose_digest_is_not_the_deployed_one_is_refused_as_a_deployment_in_progress(ssm: Any) -> None:
    variables = put_table_map(ssm, {"t1": entry(1)})
    put_table_map(ssm, {"t1": {**entry(1), "replicate_ttl_deletes": True}})  # the map changed since

    with pytest.raises(ConfigurationError, match="a deployment is in progress, or they were changed outside"):
        read_tables(variables, side(), ssm)


def test_a_parameter_added_outside_terraform_changes_the_digest_and_is_refused(ssm: Any) -> None:
    variables = put_table_map(ssm, {"t1": entry(1)})
    ssm.put_parameter(Name=f"{PATH}/t2", Value=json.dumps(entry(2)), Type="String")

    with pytest.raises(
        ConfigurationError, match=r"under /ddb-replication/test/tables \(t1, t2\) are not the map"
    ):
        read_tables(variables, side(), ssm)


def test_no_parameters_under_the_path_is_a_configuration_error_naming_the_path(ssm: Any) -> None:
    variables = {"TABLES_PARAMETER_PATH": "/ddb-replication/other/tables", "TABLES_SHA256": tables_digest({})}

    with pytest.raises(ConfigurationError, match="no table parameters under /ddb-replication/other/tables"):
        read_tables(variables, side(), ssm)


def test_parameters_below_the_maps_level_are_not_part_of_it(ssm: Any) -> None:
    # Non-recursive: /path/t1 is a table, /path/archive/t9 is not.
    variables = put_table_map(ssm, {"t1": entry(1)})
    ssm.put_parameter(Name=f"{PATH}/archive/t9", Value=json.dumps(entry(9)), Type="String")

    assert sorted(read_tables(variables, side(), ssm)) == ["t1"]


@pytest.mark.parametrize("missing", ["TABLES_PARAMETER_PATH", "TABLES_SHA256"])
def test_each_of_the_two_variables_is_required(ssm: Any, missing: str) -> None:
    variables = put_table_map(ssm, {"t1": entry(1)})
    del variables[missing]

    with pytest.raises(ConfigurationError, match=f"{missing} is required"):
        read_tables(variables, side(), ssm)


# The value the Terraform module writes for this table (jsonencode escapes <, > and & as \u003c,
# \u003e, \u0026), and the digest modules/replication_endpoint/tests/table_map.tftest.hcl asserts its
# TABLES_SHA256 is ("the_digest_is_the_one_the_functions_compute").
TERRAFORM_VALUE = (
    '{"key_schema":[{"AttributeName":"pk","AttributeType":"S","KeyType":"HASH"}],'
    '"peer_table_name":"ddbrep-table","replicate_ttl_deletes":false,'
    '"residency":{"excluded_attributes":["national_id"],'
    '"export_filter":"tier \\u003c `3` \\u0026\\u0026 region != \'\\u003cCN\\u003e\'"},'
    '"table_arn":"arn:aws:dynamodb:us-east-1:111122223333:table/ddbrep-table","table_name":"ddbrep-table"}'
)
TERRAFORM_DIGEST = "a481c8e6d8fab7c212f8a3b3f961c731b0956ffc9b12fe6f24b4e120d599fa20"


def test_the_digest_is_over_the_values_as_terraform_stored_them() -> None:
    assert tables_digest({"table": TERRAFORM_VALUE}) == TERRAFORM_DIGEST
    reencoded = json.dumps(json.loads(TERRAFORM_VALUE), separators=(",", ":"), sort_keys=True)
    assert "<CN>" in reencoded and tables_digest({"table": reencoded}) != TERRAFORM_DIGEST


def test_the_digest_is_of_name_value_lines_sorted_by_name() -> None:
    expected = hashlib.sha256(b'a={"x":1}\nb={"y":2}').hexdigest()
    assert tables_digest({"b": '{"y":2}', "a": '{"x":1}'}) == expected
