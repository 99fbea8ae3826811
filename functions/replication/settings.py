"""Settings read from the function's environment (set by the Terraform module)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from replication.errors import ConfigurationError

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
    """What both functions need to know about their own side."""

    table_name: str
    tombstone_table_name: str
    local_region: str
    version_attributes: VersionAttributes
    tombstone_ttl_seconds: int
    # A version more than this ahead of the engine's clock is no version (MAX_CLOCK_SKEW_SECONDS).
    max_clock_skew_seconds: int = DEFAULT_MAX_CLOCK_SKEW_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TableSettings:
        local_region = env.get("LOCAL_REGION", "").strip() or env.get("AWS_REGION", "").strip()
        if not local_region:
            raise ConfigurationError("LOCAL_REGION (or AWS_REGION) is required but not set")
        return cls(
            table_name=_required(env, "TABLE_NAME"),
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
    def from_json(cls, text: str, name: str = "TABLE_KEY_SCHEMA") -> KeySchema:
        problem = f"{name} must be a JSON list of one HASH and at most one RANGE key element, each with "
        problem += f"AttributeName, KeyType and AttributeType (S, N or B), got {text[:200]!r}"
        try:
            elements = json.loads(text)
        except json.JSONDecodeError:
            raise ConfigurationError(problem) from None
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
class ForwarderSettings:
    table: TableSettings
    peer_region: str
    peer_stream_name: str
    peer_secret_id: str
    peer_endpoint_url: str | None
    peer_https_proxy: str | None
    replicate_ttl_deletes: bool
    max_record_bytes: int
    secret_max_age_seconds: int
    # FAILURE_QUEUE_URL: stream records the engine can never replicate (an item that cannot carry a
    # version) or whose local write DynamoDB refuses for good go here. None: the first are only
    # logged and counted, the others retried as configuration errors.
    failure_queue_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ForwarderSettings:
        env = os.environ if env is None else env
        return cls(
            table=TableSettings.from_env(env),
            peer_region=_required(env, "PEER_REGION"),
            peer_stream_name=_required(env, "PEER_STREAM_NAME"),
            peer_secret_id=_required(env, "PEER_SECRET_ID"),
            peer_endpoint_url=env.get("PEER_ENDPOINT_URL", "").strip() or None,
            peer_https_proxy=env.get("PEER_HTTPS_PROXY", "").strip() or None,
            replicate_ttl_deletes=_flag(env, "REPLICATE_TTL_DELETES"),
            max_record_bytes=_integer(env, "MAX_RECORD_BYTES", KINESIS_DEFAULT_MAX_RECORD_BYTES, 1024),
            secret_max_age_seconds=_integer(env, "SECRET_MAX_AGE_SECONDS", 300, 0),
            failure_queue_url=env.get("FAILURE_QUEUE_URL", "").strip() or None,
        )


@dataclass(frozen=True)
class ReplicatorSettings:
    table: TableSettings
    peer_table_name: str
    failure_queue_url: str
    apply_concurrency: int
    key_schema: KeySchema  # of this side's table: every change's key is checked against it
    function_memory_mb: int = DEFAULT_FUNCTION_MEMORY_MB  # bounds what one batch may decode to

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ReplicatorSettings:
        env = os.environ if env is None else env
        return cls(
            table=TableSettings.from_env(env),
            peer_table_name=_required(env, "PEER_TABLE_NAME"),
            failure_queue_url=_required(env, "FAILURE_QUEUE_URL"),
            apply_concurrency=_integer(env, "APPLY_CONCURRENCY", 16),
            key_schema=KeySchema.from_json(_required(env, "TABLE_KEY_SCHEMA")),
            function_memory_mb=_integer(
                env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", DEFAULT_FUNCTION_MEMORY_MB, 128
            ),
        )
