"""Peer credentials: the key a forwarder uses to write into the peer partition's inbox.

A *link* is one direction of replication: the sender's forwarder writes into the receiver's inbox,
as the receiver's peer-writer IAM user, with a key stored in the sender's secret. The key is created
in the receiver's partition, put into the sender's secret and checked end to end with a probe record
that the receiver's replicator recognises, records (``probe#<id>`` in its tombstone table) and
discards. The secret access key only ever lives in memory: it is never printed or written to disk.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from replication.settings import VersionAttributes
from replication.wire import KIND_PROBE, Envelope, encode, now_ms
from replication_ops.errors import (
    ACCESS_CODES,
    AccessError,
    ConfigError,
    OpsError,
    aws_errors,
    describe,
    error_code,
)
from replication_ops.progress import Bar
from replication_ops.sides import CLIENT_CONFIG, Pair, Side

DEFAULT_SECRET_MAX_AGE_SECONDS = 300  # the forwarder's default cache time of the secret
ADOPTION_MARGIN_SECONDS = 15
NEW_KEY_GRACE_SECONDS = 30  # IAM keys can take a few seconds to work after creation


def mask(key_id: str | None) -> str:
    """An access key id fit for a log line: enough to tell keys apart, no more."""
    if not key_id:
        return "-"
    return f"{key_id[:4]}...{key_id[-4:]}" if len(key_id) > 8 else "****"


@dataclass(frozen=True)
class Link:
    """``sender`` forwards into ``receiver``'s inbox."""

    sender: Side
    receiver: Side

    @property
    def name(self) -> str:
        return f"{self.sender.label}-to-{self.receiver.label}"

    @property
    def user(self) -> str:
        return self.receiver.output("peer_writer_user_name")

    @property
    def secret_id(self) -> str:
        outputs = self.sender.outputs
        return str(
            outputs.get("peer_credentials_secret_arn") or self.sender.output("peer_credentials_secret_name")
        )


def links(pair: Pair, direction: str) -> list[Link]:
    every = {"cn-to-us": Link(pair.cn, pair.us), "us-to-cn": Link(pair.us, pair.cn)}
    return list(every.values()) if direction == "both" else [every[direction]]


@dataclass
class LinkReport:
    link: str
    user: str
    secret: str
    action: str = ""
    key_id: str = "-"  # masked
    old_key_id: str | None = None  # masked
    probe_id: str | None = None
    probe_seconds: float | None = None
    ok: bool = False
    notes: list[str] = field(default_factory=list)
    mode: str = "access_key"  # the receiver's peer_writer_authentication (certificate_credentials.mode)


# -- IAM and Secrets Manager -----------------------------------------------------------------


def _keys(link: Link) -> list[dict[str, Any]]:
    with aws_errors(f"{link.receiver.name} IAM"):
        return list(link.receiver.client("iam").list_access_keys(UserName=link.user)["AccessKeyMetadata"])


def check_secret(link: Link) -> None:
    try:
        with aws_errors(f"{link.sender.name} Secrets Manager"):
            link.sender.client("secretsmanager").describe_secret(SecretId=link.secret_id)
    except ConfigError:
        raise ConfigError(
            f"{link.sender.name}: secret {link.secret_id} does not exist (apply the side's Terraform root, "
            "or check --*-outputs)"
        ) from None


def stored_secret(link: Link) -> dict[str, Any] | None:
    """The sender's secret as a JSON object (either mode's shape), or None when it has no value yet or
    its value is not a JSON object."""
    client = link.sender.client("secretsmanager")
    try:
        value = client.get_secret_value(SecretId=link.secret_id)
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return None
        with aws_errors(f"{link.sender.name} Secrets Manager"):
            raise
    try:
        document = json.loads(value.get("SecretString") or "")
    except json.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None


def _stored(link: Link) -> dict[str, str] | None:
    """The key pair in the sender's secret, or None when the secret holds none."""
    document = stored_secret(link)
    if document is not None and document.get("aws_access_key_id") and document.get("aws_secret_access_key"):
        return {name: str(document[name]) for name in ("aws_access_key_id", "aws_secret_access_key")}
    return None


def _store(link: Link, key: dict[str, str]) -> None:
    with aws_errors(f"{link.sender.name} Secrets Manager"):
        link.sender.client("secretsmanager").put_secret_value(
            SecretId=link.secret_id,
            SecretString=json.dumps(
                {
                    "aws_access_key_id": key["aws_access_key_id"],
                    "aws_secret_access_key": key["aws_secret_access_key"],
                }
            ),
        )


def _create_key(link: Link) -> dict[str, str]:
    with aws_errors(f"{link.receiver.name} IAM"):
        created = link.receiver.client("iam").create_access_key(UserName=link.user)["AccessKey"]
    return {"aws_access_key_id": created["AccessKeyId"], "aws_secret_access_key": created["SecretAccessKey"]}


def _delete_key(link: Link, key_id: str) -> None:
    with aws_errors(f"{link.receiver.name} IAM"):
        link.receiver.client("iam").delete_access_key(UserName=link.user, AccessKeyId=key_id)


# -- the probe -------------------------------------------------------------------------------


def send_probe(link: Link, key: dict[str, str], names: VersionAttributes, *, grace_seconds: float) -> str:
    """PutRecord a probe into the receiver's inbox with ``key`` (as the sender's forwarder would)."""
    receiver = link.receiver
    session = boto3.session.Session(
        aws_access_key_id=key["aws_access_key_id"],
        aws_secret_access_key=key["aws_secret_access_key"],
        region_name=receiver.region,
    )
    kinesis = session.client("kinesis", endpoint_url=receiver.endpoint_url, config=CLIENT_CONFIG)
    return put_probe(link, kinesis, names, grace_seconds=grace_seconds, what="the new key")


def put_probe(link: Link, kinesis: Any, names: VersionAttributes, *, grace_seconds: float, what: str) -> str:
    """PutRecord a probe record into the receiver's inbox with ``kinesis`` (a client on the
    forwarder's credentials: ``what`` names them in messages); its probe id. Access refusals are
    retried for ``grace_seconds`` (a new IAM key takes a few seconds), then AccessError."""
    receiver = link.receiver
    probe_id = str(uuid.uuid4())
    # A probe is about the endpoint's key, not a table: the replicator checks no table of it; it names
    # the sender's first table as the format asks for one.
    first = min(link.sender.tables())
    data = encode(
        Envelope(
            KIND_PROBE,
            origin=link.sender.region,
            table=link.sender.tables()[first],
            name=first,
            version_attributes=names,
            sent_at_ms=now_ms(),
            probe_id=probe_id,
        )
    )
    stream = receiver.output("inbox_stream_name")
    deadline = time.monotonic() + grace_seconds
    while True:
        try:
            kinesis.put_record(
                StreamName=stream, Data=data, PartitionKey=hashlib.sha256(probe_id.encode()).hexdigest()
            )
            return probe_id
        except ClientError as error:
            if error_code(error) in ACCESS_CODES and time.monotonic() < deadline:
                time.sleep(2)  # a new IAM key takes a few seconds to be accepted everywhere
                continue
            if error_code(error) in ACCESS_CODES:
                raise AccessError(
                    f"{link.name}: {what} cannot write to {receiver.name}'s inbox {stream} "
                    f"({describe(error)}): check the peer writer's policy and source-IP allowlist"
                ) from None
            with aws_errors(f"{receiver.name} Kinesis"):
                raise


def wait_for_receipt(link: Link, probe_id: str, timeout: float, poll: float = 0.5) -> float | None:
    """Seconds until the receiver's replicator recorded the probe, or None after ``timeout``."""
    receiver = link.receiver
    table = receiver.output("tombstone_table_name")
    dynamodb = receiver.client("dynamodb")
    began = time.monotonic()
    while True:
        with aws_errors(f"{receiver.name} DynamoDB"):
            item = dynamodb.get_item(
                TableName=table, Key={"k": {"S": f"probe#{probe_id}"}}, ConsistentRead=True
            ).get("Item")
        elapsed = time.monotonic() - began
        if item:
            return round(elapsed, 2)
        if elapsed >= timeout:
            return None
        time.sleep(poll)


def probe(
    link: Link, key: dict[str, str], names: VersionAttributes, report: LinkReport, timeout: float
) -> None:
    report.probe_id = send_probe(link, key, names, grace_seconds=NEW_KEY_GRACE_SECONDS)
    report.probe_seconds = wait_for_receipt(link, report.probe_id, timeout)
    if report.probe_seconds is None:
        raise OpsError(
            f"{link.name}: the inbox {link.receiver.output('inbox_stream_name')} accepted the probe with the "
            f"key, but no replicator recorded it within {timeout:g} s: is {link.receiver.name}'s replicator "
            "running (event source mapping enabled)? Check `ddb-replication status`."
        )


# -- commands --------------------------------------------------------------------------------


def install(link: Link, names: VersionAttributes, *, probe_timeout: float) -> LinkReport:
    """Give the sender's forwarder a key of the receiver's peer-writer user, then probe it."""
    report = LinkReport(link.name, link.user, link.secret_id)
    check_secret(link)
    keys = _keys(link)
    stored = _stored(link)
    if stored and stored["aws_access_key_id"] in {k["AccessKeyId"] for k in keys}:
        report.action = "already-installed"
        report.key_id = mask(stored["aws_access_key_id"])
        report.notes.append("the secret already holds a key of this user; `rotate` replaces it")
        probe(link, stored, names, report, probe_timeout)
        report.ok = True
        return report
    if len(keys) >= 2:
        raise ConfigError(
            f"{link.name}: user {link.user} already has 2 access keys and the secret holds neither: "
            "delete the stray one in IAM first"
        )
    key = _create_key(link)
    report.action = "created"
    report.key_id = mask(key["aws_access_key_id"])
    try:
        _store(link, key)
    except OpsError:
        _delete_key(link, key["aws_access_key_id"])
        raise
    probe(link, key, names, report, probe_timeout)
    report.ok = True
    return report


def forwarder_secret_max_age(link: Link) -> int:
    """SECRET_MAX_AGE_SECONDS of the sender's forwarder (its default when unset or unreadable)."""
    name = link.sender.outputs.get("forwarder_function_name")
    if not name:
        return DEFAULT_SECRET_MAX_AGE_SECONDS
    try:
        config = link.sender.client("lambda").get_function_configuration(FunctionName=str(name))
    except ClientError:
        return DEFAULT_SECRET_MAX_AGE_SECONDS
    raw = config.get("Environment", {}).get("Variables", {}).get("SECRET_MAX_AGE_SECONDS", "")
    return int(raw) if str(raw).isdigit() else DEFAULT_SECRET_MAX_AGE_SECONDS


def _last_used(link: Link, key_id: str) -> str | None:
    try:
        used = link.receiver.client("iam").get_access_key_last_used(AccessKeyId=key_id)["AccessKeyLastUsed"]
    except ClientError:
        return None
    date = used.get("LastUsedDate")
    return date.isoformat() if date else None


def _adoption_wait(link: Link, adoption_wait: float | None) -> tuple[int, float]:
    """(the forwarder's secret cache time, the seconds to wait before deleting the old key)."""
    max_age = forwarder_secret_max_age(link)
    wait = adoption_wait if adoption_wait is not None else max_age + ADOPTION_MARGIN_SECONDS
    if not (math.isfinite(wait) and wait >= 0):
        raise ConfigError(f"{link.name}: adoption wait {wait!r} s is not a finite number of seconds")
    return max_age, wait


def rotate(
    link: Link,
    names: VersionAttributes,
    *,
    probe_timeout: float,
    adoption_wait: float | None,
    delete_unused: bool,
    show_progress: bool,
    sleep: Callable[[float], None] = time.sleep,
) -> LinkReport:
    """Replace the sender's key with a new one, without a moment without a working key."""
    report = LinkReport(link.name, link.user, link.secret_id, action="rotated")
    check_secret(link)
    stored = _stored(link)
    if stored is None:
        raise ConfigError(
            f"{link.name}: the secret {link.secret_id} holds no key yet: run `credentials` first"
        )
    current = stored["aws_access_key_id"]
    keys = [k["AccessKeyId"] for k in _keys(link)]
    others = [k for k in keys if k != current]
    if len(keys) >= 2:
        if current not in keys:
            raise ConfigError(
                f"{link.name}: user {link.user} has 2 keys ({', '.join(mask(k) for k in keys)}) and the "
                "secret holds neither: refusing to guess which one is in use"
            )
        if not delete_unused:
            raise ConfigError(
                f"{link.name}: user {link.user} already has a second key {mask(others[0])} that the secret "
                "does not hold (an unfinished rotation?): rerun with --delete-unused to delete it first"
            )
        _delete_key(link, others[0])
        report.notes.append(f"deleted the unused key {mask(others[0])}")
    old = current if current in keys else None
    report.old_key_id = mask(old) if old else None
    max_age, wait = _adoption_wait(link, adoption_wait)  # decided before the new key exists
    key = _create_key(link)
    report.key_id = mask(key["aws_access_key_id"])
    try:
        _store(link, key)
    except OpsError:
        _delete_key(link, key["aws_access_key_id"])
        raise
    try:
        probe(link, key, names, report, probe_timeout)
    except AccessError:
        _store(link, stored)  # the old key keeps working: put it back and drop the new one
        _delete_key(link, key["aws_access_key_id"])
        report.notes.append("the new key did not work: the old key was put back")
        raise
    if old is None:
        report.notes.append("the secret held a key this user does not have: nothing to delete")
        report.ok = True
        return report
    report.notes.append(
        f"waited {wait:g} s for the forwarder to re-read the secret (it caches it up to {max_age} s, and "
        "re-reads it at once if the peer rejects the old key)"
    )
    with Bar(
        f"{link.name}: forwarder adopting the new key", total=round(wait), enabled=show_progress, unit="s"
    ) as bar:
        remaining = wait
        while remaining > 0:
            step = min(1.0, remaining)
            sleep(step)
            remaining -= step
            bar.update(1)
    if link.receiver.endpoint_url is None:
        report.notes.append(
            f"IAM last use: new key {_last_used(link, key['aws_access_key_id']) or 'never'}, "
            f"old key {_last_used(link, old) or 'never'}"
        )
    _delete_key(link, old)
    report.ok = True
    return report


def render(reports: list[LinkReport]) -> str:
    lines = []
    for r in reports:
        probe_text = f"probe received in {r.probe_seconds:g} s" if r.probe_seconds is not None else "no probe"
        old = f" (old {r.old_key_id} deleted)" if r.old_key_id and r.ok and r.action == "rotated" else ""
        lines.append(f"{r.link}: {r.action} key {r.key_id}{old} for {r.user} in {r.secret}; {probe_text}")
        lines.extend(f"  {note}" for note in r.notes)
    return "\n".join(lines)
