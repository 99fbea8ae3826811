"""The table map in Parameter Store: one parameter per logical table, checked against a digest.

Why not the environment: Lambda allows a function 4 KB of environment variables in all (Lambda
developer guide, "Lambda quotas"), which held about eight tables. The Terraform module writes each
table's entry (the JSON object ``settings.read_tables`` parses) into one Standard-tier ``String``
parameter named ``<TABLES_PARAMETER_PATH>/<logical name>``; a Standard parameter holds up to 4 KB
(Systems Manager API reference, PutParameter, ``Value``), so the limit is per table, not per endpoint.

The functions read the map once per execution environment, at cold start, with GetParametersByPath
(non-recursive; at most 10 parameters a page: ``MaxResults`` is 1 to 10, Systems Manager API
reference, GetParametersByPath), and check it against ``TABLES_SHA256``, the digest the module put in
their environment: a map that is not the one their configuration was deployed with (a deployment in
progress, a parameter changed, added or removed outside Terraform) is refused, and since the digest is
in the environment, a changed map is a changed function configuration, which Lambda provisions anew
before it processes events with it (Lambda API reference, UpdateFunctionConfiguration): the new map
is read by new execution environments.

The digest is SHA-256, in hex, of the UTF-8 bytes of ``"\\n".join(f"{name}={value}" for name in
sorted(names))``: each parameter's value as stored, never a re-encoded JSON (Terraform's
``jsonencode`` writes ``<``, ``>`` and ``&`` as ``\\u003c``, ``\\u003e``, ``\\u0026``; Python's
``json.dumps`` does not). Terraform computes the same with
``sha256(join("\\n", [for n in sort(keys(m)) : "${n}=${m[n]}"]))``: names are ``[A-Za-z0-9_.-]``
(both sort them by code point) and values single-line JSON.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from replication.errors import ConfigurationError

# GetParametersByPath's MaxResults: 1 to 10 (Systems Manager API reference, GetParametersByPath).
PAGE_SIZE = 10


def tables_digest(values: Mapping[str, str]) -> str:
    """The digest of a table map's parameter values (logical name -> value as stored): hex SHA-256 of
    ``NAME=VALUE`` lines sorted by name, joined by newlines (module docstring)."""
    text = "\n".join(f"{name}={values[name]}" for name in sorted(values))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parameter_values(ssm: Any, path: str) -> dict[str, str]:
    """Every parameter directly under ``path`` (``/a/b``: ``/a/b/NAME``, not ``/a/b/c/NAME``), by the
    last part of its name: GetParametersByPath, non-recursive, page by page (``NextToken``; a page may
    hold fewer than ``MaxResults`` even when more follow, the API reference says). A ClientError (no
    right to ``ssm:GetParametersByPath`` on the path, throttling) is raised as it is."""
    prefix = path.rstrip("/") + "/"
    values: dict[str, str] = {}
    pages = ssm.get_paginator("get_parameters_by_path").paginate(
        Path=path, Recursive=False, PaginationConfig={"PageSize": PAGE_SIZE}
    )
    for page in pages:
        for parameter in page.get("Parameters", []):
            values[parameter["Name"].removeprefix(prefix)] = parameter["Value"]
    return values


def read_table_parameters(ssm: Any, path: str, expected_digest: str) -> dict[str, str]:
    """The table map's parameter values under ``path`` (logical name -> JSON text), when their digest
    is ``expected_digest``. Raises ConfigurationError when there are none or the digest differs; the
    caller keeps nothing then, so the next cold start reads them again."""
    values = parameter_values(ssm, path)
    if not values:
        raise ConfigurationError(
            f"no table parameters under {path} (TABLES_PARAMETER_PATH): apply the Terraform module, "
            "which writes one parameter per table there, or give the path it wrote"
        )
    digest = tables_digest(values)
    if digest != expected_digest.strip().lower():
        raise ConfigurationError(
            f"the table parameters under {path} ({', '.join(sorted(values))}) are not the map this "
            f"function was deployed with: their digest is {digest[:12]}..., TABLES_SHA256 is "
            f"{expected_digest.strip()[:12]}...: a deployment is in progress, or they were changed "
            "outside Terraform (retried until they match; apply the module again if it lasts)"
        )
    return values
