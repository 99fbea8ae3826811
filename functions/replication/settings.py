"""Settings read from the function's environment (set by the Terraform module).

One endpoint serves a map of tables: ``TABLES``, per logical table name, what the functions need to
know about that table (docs/architecture.md, "Lambda contract"), is one Parameter Store parameter per
table, found by the environment's ``TABLES_PARAMETER_PATH`` and checked against its ``TABLES_SHA256``
(replication/table_parameters.py); the rest of the environment is shared by every table. Everything
is validated at cold start: a wrong value is a ConfigurationError naming the variable, the table and
the fix, before any record is read.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3

from replication.errors import ConfigurationError
from replication.residency import ResidencyRules
from replication.table_parameters import read_table_parameters

DEFAULT_TIMESTAMP_ATTRIBUTE = "last_update_timestamp"
DEFAULT_ORIGIN_ATTRIBUTE = "last_updater_region"
DEFAULT_TOMBSTONE_TTL_SECONDS = 30 * 24 * 3600
# How far ahead of the engine's own clock a version may be (docs/conflict-rules.md, "Clock skew").
# Clocks synchronised to AWS's time are milliseconds apart, and AWS refuses most signed requests
# whose time is more than five minutes off (IAM user guide, "AWS Signature Version 4 for API
# requests"); a version further ahead is a wrong unit (milliseconds), a clock years fast, or a
# hostile writer, and would otherwise win against every real write until its time comes.
DEFAULT_MAX_CLOCK_SKEW_SECONDS = 300
MAX_CLOCK_SKEW_SECONDS_LIMIT = 86_400
KINESIS_DEFAULT_MAX_RECORD_BYTES = 1024 * 1024
# Lambda sets AWS_LAMBDA_FUNCTION_MEMORY_SIZE (MB) in every function; elsewhere (an operator's
# redrive), the module's default replicator memory.
DEFAULT_FUNCTION_MEMORY_MB = 512
KEY_TYPES = ("S", "N", "B")
# A logical table name: DynamoDB's own table-name characters ("Naming rules", DynamoDB developer guide:
# a-z, A-Z, 0-9, _, -, .), at most 64 long (a CloudWatch dimension value takes 1,024; a tombstone id
# adds it to a 64-character digest). It never holds "/" or "#", so the tombstone table's ids
# ("NAME/DIGEST", "removed#NAME/DIGEST", "probe#ID") cannot collide.
TABLE_NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# The keys every entry of TABLES has, and those it may have (``residency``: absent or null, no rules).
TABLE_ENTRY_KEYS = frozenset(
    {"table_name", "table_arn", "peer_table_name", "key_schema", "replicate_ttl_deletes"}
)
OPTIONAL_TABLE_ENTRY_KEYS = frozenset({"residency"})
NO_RULES = ResidencyRules()


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is required but not set")
    return value


def _integer(
    env: Mapping[str, str], name: str, default: int, minimum: int = 1, maximum: int | None = None
) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigurationError(f"{name} must be at most {maximum}, got {value}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "false").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("", "0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True)
class VersionAttributes:
    """Names of the two attributes that carry an item's version."""

    timestamp: str = DEFAULT_TIMESTAMP_ATTRIBUTE
    origin: str = DEFAULT_ORIGIN_ATTRIBUTE

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> VersionAttributes:
        return cls(
            timestamp=env.get("TIMESTAMP_ATTRIBUTE", "").strip() or DEFAULT_TIMESTAMP_ATTRIBUTE,
            origin=env.get("ORIGIN_ATTRIBUTE", "").strip() or DEFAULT_ORIGIN_ATTRIBUTE,
        )


@dataclass(frozen=True)
class TableSettings:
    """What the engine's writers need to know about one local table: its logical name (which
    qualifies its rows in the shared tombstone table), its DynamoDB table and this side's shared
    settings."""

    name: str
    table_name: str
    tombstone_table_name: str
    local_region: str
    version_attributes: VersionAttributes
    tombstone_ttl_seconds: int
    # A version more than this ahead of the engine's clock is no version (MAX_CLOCK_SKEW_SECONDS).
    max_clock_skew_seconds: int = DEFAULT_MAX_CLOCK_SKEW_SECONDS
    # This side's excluded attributes (its residency rules, TABLES[name].residency): never sent, so a
    # replicated upsert that lacks one keeps this side's value (TableWriter.apply merges).
    excluded_attributes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SideSettings:
    """What every table of this side shares: the tombstone table, the region written as origin, the
    version attribute names, how long deletes are remembered and the allowed clock skew."""

    tombstone_table_name: str
    local_region: str
    version_attributes: VersionAttributes
    tombstone_ttl_seconds: int
    max_clock_skew_seconds: int = DEFAULT_MAX_CLOCK_SKEW_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SideSettings:
        local_region = env.get("LOCAL_REGION", "").strip() or env.get("AWS_REGION", "").strip()
        if not local_region:
            raise ConfigurationError("LOCAL_REGION (or AWS_REGION) is required but not set")
        return cls(
            tombstone_table_name=_required(env, "TOMBSTONE_TABLE_NAME"),
            local_region=local_region,
            version_attributes=VersionAttributes.from_env(env),
            tombstone_ttl_seconds=_integer(env, "TOMBSTONE_TTL_SECONDS", DEFAULT_TOMBSTONE_TTL_SECONDS),
            max_clock_skew_seconds=_integer(
                env,
                "MAX_CLOCK_SKEW_SECONDS",
                DEFAULT_MAX_CLOCK_SKEW_SECONDS,
                minimum=1,
                maximum=MAX_CLOCK_SKEW_SECONDS_LIMIT,
            ),
        )

    def table(
        self, name: str, table_name: str, excluded_attributes: frozenset[str] = frozenset()
    ) -> TableSettings:
        """The writers' settings for the local table ``table_name``, served as ``name``, with this
        side's ``excluded_attributes`` of it (residency)."""
        return TableSettings(
            name=name,
            table_name=table_name,
            tombstone_table_name=self.tombstone_table_name,
            local_region=self.local_region,
            version_attributes=self.version_attributes,
            tombstone_ttl_seconds=self.tombstone_ttl_seconds,
            max_clock_skew_seconds=self.max_clock_skew_seconds,
            excluded_attributes=excluded_attributes,
        )


@dataclass(frozen=True)
class KeyAttribute:
    """One key attribute of a table: its name and type (``S``, ``N`` or ``B``)."""

    name: str
    type: str


@dataclass(frozen=True)
class KeySchema:
    """A table's key schema: the partition (HASH) key and, for a composite key, the sort (RANGE) key.

    Read from ``TABLE_KEY_SCHEMA``, which the Terraform module sets from the table it creates or the
    existing table it reads: a JSON list in DynamoDB's own terms, KeySchema elements with their
    attribute types, for example
    ``[{"AttributeName": "pk", "KeyType": "HASH", "AttributeType": "S"},
    {"AttributeName": "sk", "KeyType": "RANGE", "AttributeType": "N"}]``.
    """

    hash_key: KeyAttribute
    range_key: KeyAttribute | None = None

    @property
    def attributes(self) -> tuple[KeyAttribute, ...]:
        return (self.hash_key,) if self.range_key is None else (self.hash_key, self.range_key)

    def describe(self) -> str:
        """``pk (S), sk (N)``: for messages."""
        return ", ".join(f"{a.name} ({a.type})" for a in self.attributes)

    @classmethod
    def from_json(cls, text: str, name: str = "key_schema") -> KeySchema:
        try:
            elements = json.loads(text)
        except json.JSONDecodeError:
            elements = text
        return cls.from_elements(elements, name)

    @classmethod
    def from_elements(cls, elements: Any, name: str = "key_schema") -> KeySchema:
        problem = f"{name} must be a list of one HASH and at most one RANGE key element, each with "
        problem += f"AttributeName, KeyType and AttributeType (S, N or B), got {json.dumps(elements)[:200]!r}"
        found: dict[str, KeyAttribute] = {}
        if not isinstance(elements, list):
            raise ConfigurationError(problem)
        for element in elements:
            if not isinstance(element, dict):
                raise ConfigurationError(problem)
            key_type, attribute, attribute_type = (
                element.get(f) for f in ("KeyType", "AttributeName", "AttributeType")
            )
            if (
                key_type not in ("HASH", "RANGE")
                or key_type in found
                or not isinstance(attribute, str)
                or not attribute
                or attribute_type not in KEY_TYPES
            ):
                raise ConfigurationError(problem)
            found[key_type] = KeyAttribute(attribute, attribute_type)
        if "HASH" not in found or (found.get("RANGE") and found["RANGE"].name == found["HASH"].name):
            raise ConfigurationError(problem)
        return cls(found["HASH"], found.get("RANGE"))


@dataclass(frozen=True)
class ServedTable:
    """One entry of ``TABLES``: a local table this endpoint replicates, under its logical name.

    ``table_arn`` is the local table's ARN: the forwarder finds a stream record's table by it (a stream
    record's ``eventSourceARN`` is the stream's ARN, ``<table ARN>/stream/<label>``; see
    ``table_arn_of_stream``). ``peer_table_name`` is the peer's DynamoDB table for the same logical
    table: the replicator refuses a message for this table that names another sender table.
    ``key_schema`` is this side's key, checked before every write. ``replicate_ttl_deletes``: whether
    this table's TTL expiries are sent to the peer. ``residency``: what of its items may leave this
    side (docs/residency.md)."""

    table: TableSettings
    table_arn: str
    peer_table_name: str
    key_schema: KeySchema
    replicate_ttl_deletes: bool = False
    # What of this table may leave this side (replication/residency.py); no rules by default.
    residency: ResidencyRules = NO_RULES

    @property
    def name(self) -> str:
        return self.table.name


def table_arn_of_stream(event_source_arn: str) -> str:
    """The table ARN of a DynamoDB stream ARN: ``arn:PARTITION:dynamodb:REGION:ACCOUNT:table/NAME`` of
    ``...:table/NAME/stream/LABEL``, as in the DynamoDB Streams API reference, DescribeStream's
    example ``arn:aws:dynamodb:us-west-2:111122223333:table/Forum/stream/2015-05-20T20:51:10.252``.
    The table ARN, unlike the stream's, stays the same when the stream is disabled and enabled again.
    Anything else is returned as it is."""
    table_arn, found, _ = event_source_arn.partition("/stream/")
    return table_arn if found else event_source_arn


def read_tables(env: Mapping[str, str], side: SideSettings, ssm: Any = None) -> dict[str, ServedTable]:
    """The table map as deployed: the parameters under ``TABLES_PARAMETER_PATH`` in Parameter Store,
    checked against ``TABLES_SHA256`` (replication/table_parameters.py), parsed by ``parse_tables``.
    ``ssm``: a Systems Manager client (None: one for ``AWS_REGION``). Raises ConfigurationError for a
    variable not set, no parameters, a digest that differs or an entry that does not parse; a
    ClientError of GetParametersByPath as it is."""
    path = _required(env, "TABLES_PARAMETER_PATH")
    digest = _required(env, "TABLES_SHA256")
    if ssm is None:
        ssm = boto3.client("ssm", region_name=env.get("AWS_REGION", "").strip() or None)
    return parse_tables(read_table_parameters(ssm, path, digest), side)


def parse_tables(values: Mapping[str, str], side: SideSettings) -> dict[str, ServedTable]:
    """``TABLES``, the table map: logical table name -> its entry, a JSON object (one parameter's
    value)::

        {"table_name": "profiles-cn", "table_arn": "arn:aws-cn:dynamodb:...:table/profiles-cn",
         "peer_table_name": "profiles-us", "replicate_ttl_deletes": false,
         "key_schema": [{"AttributeName": "pk", "KeyType": "HASH", "AttributeType": "S"}]}

    Every key of an entry is required (the Terraform module writes them all) except ``residency``
    (``{"export_filter": ..., "excluded_attributes": [...]}``, replication/residency.py; absent or
    null: no rules). Raises ConfigurationError, naming the table and the key, for anything else: no
    table, a name DynamoDB would not take, an entry that is no JSON object, an unknown key, rules that
    do not parse or exclude a key or version attribute, two logical tables on one local table or one
    peer table."""
    if not values:
        raise ConfigurationError("TABLES must hold at least one table")
    document: dict[str, Any] = {}
    for name, text in values.items():
        try:
            document[name] = json.loads(text)
        except json.JSONDecodeError:
            raise ConfigurationError(
                f"TABLES[{name[:100]!r}] must be a JSON object, got {text[:200]!r}"
            ) from None
    tables: dict[str, ServedTable] = {}
    for name, entry in document.items():
        tables[name] = _served_table(name, entry, side)
    for field_name in ("table_name", "peer_table_name", "table_arn"):
        seen: dict[str, str] = {}
        for table in tables.values():
            value = table.table.table_name if field_name == "table_name" else getattr(table, field_name)
            if value in seen:
                raise ConfigurationError(
                    f"TABLES: tables {seen[value]!r} and {table.name!r} have the same {field_name} "
                    f"{value!r}; each logical table needs its own"
                )
            seen[value] = table.name
    return tables


def _served_table(name: str, entry: Any, side: SideSettings) -> ServedTable:
    where = f"TABLES[{name!r}]"
    if not isinstance(name, str) or not TABLE_NAME_PATTERN.fullmatch(name):
        raise ConfigurationError(
            f"TABLES: table name {name[:100]!r} must be 1 to 64 of a-z, A-Z, 0-9, '_', '-' and '.'"
        )
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{where} must be an object")
    allowed = TABLE_ENTRY_KEYS | OPTIONAL_TABLE_ENTRY_KEYS
    unknown = sorted(entry.keys() - allowed)
    missing = sorted(TABLE_ENTRY_KEYS - entry.keys())
    if unknown or missing:
        problem = f"unknown key {unknown[0]!r}" if unknown else f"{missing[0]!r} is required"
        raise ConfigurationError(f"{where}: {problem} (keys: {', '.join(sorted(allowed))})")
    for key in ("table_name", "table_arn", "peer_table_name"):
        if not isinstance(entry[key], str) or not entry[key].strip():
            raise ConfigurationError(f"{where}.{key} must be a non-empty string")
    if not isinstance(entry["replicate_ttl_deletes"], bool):
        raise ConfigurationError(f"{where}.replicate_ttl_deletes must be true or false")
    if table_arn_of_stream(entry["table_arn"]) != entry["table_arn"] or ":table/" not in entry["table_arn"]:
        raise ConfigurationError(
            f"{where}.table_arn must be a table's ARN (arn:PARTITION:dynamodb:REGION:ACCOUNT:table/NAME), "
            f"got {entry['table_arn'][:200]!r}"
        )
    key_schema = KeySchema.from_elements(entry["key_schema"], f"{where}.key_schema")
    versions = side.version_attributes
    residency = ResidencyRules.from_entry(
        entry.get("residency"),
        f"{where}.residency",
        protected=[a.name for a in key_schema.attributes] + [versions.timestamp, versions.origin],
    )
    return ServedTable(
        table=side.table(name, entry["table_name"].strip(), residency.excluded_attributes),
        table_arn=entry["table_arn"],
        peer_table_name=entry["peer_table_name"].strip(),
        key_schema=key_schema,
        replicate_ttl_deletes=entry["replicate_ttl_deletes"],
        residency=residency,
    )


@dataclass(frozen=True)
class ForwarderSettings:
    side: SideSettings
    tables: Mapping[str, ServedTable]
    peer_region: str
    peer_stream_name: str
    peer_secret_id: str
    peer_endpoint_url: str | None
    peer_https_proxy: str | None
    max_record_bytes: int
    secret_max_age_seconds: int
    # FAILURE_QUEUE_URL: stream records the engine can never replicate (an item that cannot carry a
    # version) or whose local write DynamoDB refuses for good go here. None: the first are only
    # logged and counted, the others retried as configuration errors.
    failure_queue_url: str | None = None
    # PEER_ROLESANYWHERE_ENDPOINT: host[:port] of IAM Roles Anywhere in the peer partition (roles_anywhere
    # mode); None: the public endpoint botocore resolves for PEER_REGION.
    peer_rolesanywhere_endpoint: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, ssm: Any = None) -> ForwarderSettings:
        """From the function's environment and, for its tables, Parameter Store (``read_tables``)."""
        env = os.environ if env is None else env
        side = SideSettings.from_env(env)
        return cls(
            side=side,
            tables=read_tables(env, side, ssm),
            peer_region=_required(env, "PEER_REGION"),
            peer_stream_name=_required(env, "PEER_STREAM_NAME"),
            peer_secret_id=_required(env, "PEER_SECRET_ID"),
            peer_endpoint_url=env.get("PEER_ENDPOINT_URL", "").strip() or None,
            peer_https_proxy=env.get("PEER_HTTPS_PROXY", "").strip() or None,
            max_record_bytes=_integer(env, "MAX_RECORD_BYTES", KINESIS_DEFAULT_MAX_RECORD_BYTES, 1024),
            secret_max_age_seconds=_integer(env, "SECRET_MAX_AGE_SECONDS", 300, 0),
            failure_queue_url=env.get("FAILURE_QUEUE_URL", "").strip() or None,
            peer_rolesanywhere_endpoint=env.get("PEER_ROLESANYWHERE_ENDPOINT", "").strip() or None,
        )

    def table_for_stream(self, event_source_arn: str) -> ServedTable | None:
        """The served table whose stream a record's ``eventSourceARN`` is, or None."""
        table_arn = table_arn_of_stream(event_source_arn)
        return next((t for t in self.tables.values() if t.table_arn == table_arn), None)


@dataclass(frozen=True)
class ReplicatorSettings:
    side: SideSettings
    tables: Mapping[str, ServedTable]
    failure_queue_url: str
    apply_concurrency: int
    function_memory_mb: int = DEFAULT_FUNCTION_MEMORY_MB  # bounds what one batch may decode to

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, ssm: Any = None) -> ReplicatorSettings:
        """From the function's environment and, for its tables, Parameter Store (``read_tables``)."""
        env = os.environ if env is None else env
        side = SideSettings.from_env(env)
        return cls(
            side=side,
            tables=read_tables(env, side, ssm),
            failure_queue_url=_required(env, "FAILURE_QUEUE_URL"),
            apply_concurrency=_integer(env, "APPLY_CONCURRENCY", 16),
            function_memory_mb=_integer(
                env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", DEFAULT_FUNCTION_MEMORY_MB, 128
            ),
        )

    def table_for_peer_table(self, peer_table_name: str) -> ServedTable | None:
        """The served table whose peer table is ``peer_table_name`` (a record without a logical name)."""
        return next((t for t in self.tables.values() if t.peer_table_name == peer_table_name), None)


# The record of conflicts (replication.conflicts): every resolved conflict is counted; at most this
# many are logged per invocation, each with this probability, so a burst of conflicts costs a bounded
# number of log lines (Terraform: conflict_log_sample_rate, conflict_log_max_lines).
DEFAULT_CONFLICT_LOG_SAMPLE_RATE = 1.0
DEFAULT_CONFLICT_LOG_MAX_LINES = 20
MAX_CONFLICT_LOG_LINES = 1000


@dataclass(frozen=True)
class ConflictLogSettings:
    """How the functions log the conflicts they resolve (docs/conflict-rules.md, "Conflicts on
    record"). ``sample_rate``: the probability (0 to 1) that a conflict is logged; ``max_lines``: at
    most this many lines per invocation (0: none); ``log_keys``: the line carries the item's key
    itself, not only its digest (the key may be personal data: false unless configured)."""

    sample_rate: float = DEFAULT_CONFLICT_LOG_SAMPLE_RATE
    max_lines: int = DEFAULT_CONFLICT_LOG_MAX_LINES
    log_keys: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ConflictLogSettings:
        """``CONFLICT_LOG_SAMPLE_RATE``, ``CONFLICT_LOG_MAX_LINES``, ``CONFLICT_LOG_KEYS``; unset: the
        defaults. Raises ConfigurationError naming the variable for a value out of range."""
        env = os.environ if env is None else env
        raw = env.get("CONFLICT_LOG_SAMPLE_RATE", "").strip()
        rate = DEFAULT_CONFLICT_LOG_SAMPLE_RATE
        if raw:
            try:
                rate = float(raw)
            except ValueError:
                rate = -1.0
            if not 0.0 <= rate <= 1.0:  # also refuses nan
                raise ConfigurationError(
                    f"CONFLICT_LOG_SAMPLE_RATE must be a number from 0 to 1, got {raw!r}"
                )
        return cls(
            sample_rate=rate,
            max_lines=_integer(
                env, "CONFLICT_LOG_MAX_LINES", DEFAULT_CONFLICT_LOG_MAX_LINES, 0, MAX_CONFLICT_LOG_LINES
            ),
            log_keys=_flag(env, "CONFLICT_LOG_KEYS"),
        )
