"""The table map as the Terraform module deploys it, for tests that run the functions or the CLI: one
Standard ``String`` parameter per logical table under a path, its value the table's entry as compact
JSON (modules/replication_endpoint/parameters.tf), and the two environment variables the functions
find and check it by (docs/architecture.md, Lambda contract)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from replication.table_parameters import tables_digest

PATH = "/ddb-replication/test/tables"


def parameter_value(entry: Mapping[str, Any]) -> str:
    """A table's entry as one line of JSON without spaces, as Terraform's ``jsonencode`` writes it."""
    return json.dumps(entry, separators=(",", ":"), sort_keys=True)


def put_table_map(ssm: Any, entries: Mapping[str, Mapping[str, Any]], path: str = PATH) -> dict[str, str]:
    """Write ``entries`` (logical name -> entry) as the module's parameters with ``ssm`` (a Systems
    Manager client: moto in-process or a moto server) and return ``TABLES_PARAMETER_PATH`` and
    ``TABLES_SHA256`` for the functions' environment."""
    values = {name: parameter_value(entry) for name, entry in entries.items()}
    for name, value in values.items():
        ssm.put_parameter(Name=f"{path}/{name}", Value=value, Type="String", Tier="Standard", Overwrite=True)
    return {"TABLES_PARAMETER_PATH": path, "TABLES_SHA256": tables_digest(values)}
