"""Settings read from the function's environment (set by the Terraform module)."""

from __future__ import annotations

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
    # Where an item that cannot carry a version is reported (FAILURE_QUEUE_URL; unset: logged only).
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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ReplicatorSettings:
        env = os.environ if env is None else env
        return cls(
            table=TableSettings.from_env(env),
            peer_table_name=_required(env, "PEER_TABLE_NAME"),
            failure_queue_url=_required(env, "FAILURE_QUEUE_URL"),
            apply_concurrency=_integer(env, "APPLY_CONCURRENCY", 16),
        )
