"""Peer credentials in roles_anywhere mode: a leaf certificate of the pair's CA in the sender's secret.

A link's mode is the receiver's: its Terraform output ``roles_anywhere_profile_arn`` is set when
its module has ``peer_writer_authentication = "roles_anywhere"`` (a trust anchor, a profile and the
peer-writer role, no IAM user), null in access_key mode. In roles_anywhere mode the operator's CA
folder (``ddb-replication ca init --dir DIR``, given as ``--ca-dir``) issues the sender's forwarder a
leaf whose subject CN is the receiver's output ``peer_writer_certificate_subject`` (the CN its role
trusts), and the sender's secret gets the pair's contract shape
(docs/operations.md): ``{"auth": "roles_anywhere", "certificate", "private_key", "trust_anchor_arn",
"profile_arn", "role_arn"}`` with the receiver's three ARNs.

The probe proves the forwarder's own path: the secret is read back from Secrets Manager and turned
into a Kinesis client by the engine's ``PeerSession`` (the same parsing, the same
``iam-rolesanywhere-session`` CreateSession call in the receiver's partition, the same TLS trust:
``AWS_CA_BUNDLE`` when set), which then PutRecords a probe record into the receiver's inbox; the
command waits for the receiver's replicator to record it, as in access_key mode. The Roles Anywhere
endpoint is the one the sender's forwarder uses (its ``PEER_ROLESANYWHERE_ENDPOINT``, read with
GetFunctionConfiguration) unless ``--cn-rolesanywhere-endpoint``/``--us-rolesanywhere-endpoint``
says otherwise; neither: the public endpoint of the receiver's region.

The leaf's private key exists only in memory and in the secret: it is never printed, logged or
written to disk (the CA's key stays in the operator's folder). A replaced certificate is not
revoked: it stays valid until its notAfter (``ddb-replication ca revoke`` and ``crl`` revoke it).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from replication.errors import PeerCredentialsError
from replication.peer_session import CertificateRefused, PeerSession
from replication.settings import ForwarderSettings, SideSettings, VersionAttributes
from replication_ops import certificates
from replication_ops.credentials import (
    DEFAULT_SECRET_MAX_AGE_SECONDS,
    Link,
    LinkReport,
    check_secret,
    put_probe,
    stored_secret,
    wait_for_receipt,
)
from replication_ops.errors import AccessError, ConfigError, OpsError, aws_errors
from replication_ops.sides import function_environment

ROLES_ANYWHERE = "roles_anywhere"
ACCESS_KEY = "access_key"
# A certificate with less than this left is re-issued by `credentials` (and `status` warns). Well
# inside the default 30-day validity, well before the module's expiry alarm (7 days).
RENEWAL_MARGIN = dt.timedelta(days=10)
# The receiver's outputs that make the secret (outputs.tf of the module).
TARGET_OUTPUTS = {
    "trust_anchor_arn": "roles_anywhere_trust_anchor_arn",
    "profile_arn": "roles_anywhere_profile_arn",
    "role_arn": "peer_writer_role_arn",
}


def mode(link: Link) -> str:
    """The link's mode, the receiver's: roles_anywhere when its output roles_anywhere_profile_arn is
    set (the module's peer_writer_authentication), else access_key."""
    return ROLES_ANYWHERE if link.receiver.outputs.get("roles_anywhere_profile_arn") else ACCESS_KEY


@dataclass(frozen=True)
class Target:
    """What the receiver trusts: its three ARNs and the CN its peer-writer role trusts."""

    arns: dict[str, str]
    common_name: str

    @classmethod
    def of(cls, link: Link) -> Target:
        receiver = link.receiver
        arns = {field: receiver.output(output) for field, output in TARGET_OUTPUTS.items()}
        return cls(arns, receiver.output("peer_writer_certificate_subject"))


def _store(link: Link, document: dict[str, Any]) -> None:
    with aws_errors(f"{link.sender.name} Secrets Manager"):
        link.sender.client("secretsmanager").put_secret_value(
            SecretId=link.secret_id, SecretString=json.dumps(document)
        )


def _common_name(certificate: x509.Certificate) -> str | None:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def _revoked_serials(folder: Path, authority: certificates.Authority) -> set[int]:
    path = folder / certificates.CRL_FILE
    if not path.exists():
        return set()
    return {r.serial_number for r in certificates.revocations(certificates.read_crl(path, authority))}


def installed_certificate(
    document: dict[str, Any] | None,
    authority: certificates.Authority,
    target: Target,
    revoked: set[int],
    now: dt.datetime,
) -> x509.Certificate | None:
    """The secret's certificate when it can stay: roles_anywhere shape with the receiver's ARNs, issued
    by this CA (its signature verifies with the CA's key), the CN the receiver's role trusts, not
    revoked in the folder's CRL, and more than ``RENEWAL_MARGIN`` left. Else None (issue a new one)."""
    if not document or document.get("auth") != ROLES_ANYWHERE:
        return None
    if any(document.get(field) != arn for field, arn in target.arns.items()):
        return None
    try:
        certificate = certificates.load_certificate(str(document.get("certificate") or ""))
        certificate.verify_directly_issued_by(authority.certificate)
    except (ConfigError, ValueError, TypeError, InvalidSignature):
        return None
    if _common_name(certificate) != target.common_name or certificate.serial_number in revoked:
        return None
    if certificate.not_valid_after_utc - now <= RENEWAL_MARGIN:
        return None
    return certificate


def secret_document(issued: certificates.IssuedCertificate, target: Target) -> dict[str, str]:
    """The roles_anywhere secret of the pair's contract (no certificate_chain: the CA signs leaves)."""
    return {"auth": ROLES_ANYWHERE, **issued.secret_fields(), **target.arns}


def rolesanywhere_endpoint(link: Link, given: str | None) -> str | None:
    """host[:port] of Roles Anywhere in the receiver's partition for the probe: ``given`` (the
    --RECEIVER-rolesanywhere-endpoint flag), else the sender's forwarder's PEER_ROLESANYWHERE_ENDPOINT
    (the module's peer_rolesanywhere_endpoint), else None (the public endpoint of the region)."""
    if given:
        return given
    try:
        variables = function_environment(link.sender, "forwarder_function_name")
    except OpsError:
        return None
    return variables.get("PEER_ROLESANYWHERE_ENDPOINT", "").strip() or None


def peer_kinesis(link: Link, endpoint: str | None) -> Any:
    """The receiver's Kinesis client made the forwarder's way: the engine's PeerSession reads the
    sender's secret back from Secrets Manager and calls CreateSession in the receiver's partition.
    AccessError (exit 3) when Roles Anywhere refuses the certificate; OpsError when the secret does
    not parse."""
    receiver = link.receiver
    settings = ForwarderSettings(
        side=SideSettings("-", link.sender.region, VersionAttributes(), 1),
        tables={},
        peer_region=receiver.region,
        peer_stream_name=receiver.output("inbox_stream_name"),
        peer_secret_id=link.secret_id,
        peer_endpoint_url=receiver.endpoint_url,
        peer_https_proxy=None,
        max_record_bytes=1024 * 1024,
        secret_max_age_seconds=0,
        peer_rolesanywhere_endpoint=endpoint,
    )
    session = PeerSession(settings, link.sender.client("secretsmanager"))
    with session_errors(link, endpoint):
        return session.kinesis(refresh=True)


@contextmanager
def session_errors(link: Link, endpoint: str | None) -> Iterator[None]:
    """The errors of the certificate's role session as OpsErrors. botocore calls CreateSession when
    the credentials are first used, so this covers the probe's first call too: AccessError (exit 3)
    when Roles Anywhere refuses the certificate or cannot be reached, OpsError when the secret does
    not parse."""
    receiver = link.receiver
    try:
        yield
    except OpsError:
        raise
    except CertificateRefused as error:
        raise AccessError(
            f"{link.name}: {error}: is {link.receiver.name}'s trust anchor the pair's CA (ca.pem of "
            "--ca-dir), its role trusting this CN, the certificate not revoked?"
        ) from None
    except PeerCredentialsError as error:
        raise OpsError(f"{link.name}: {error}") from None
    except Exception as error:  # the transport's errors: unreachable endpoint, TLS, a bad address
        module = error.__class__.__module__
        if isinstance(error, BotoCoreError) or module.startswith(
            ("iam_rolesanywhere_session", "requests", "urllib3")
        ):
            where = endpoint or f"the public endpoint of {receiver.region}"
            raise AccessError(
                f"{link.name}: CreateSession at {where} failed ({error.__class__.__name__}: "
                f"{str(error)[:200]}): is the endpoint reachable and trusted (AWS_CA_BUNDLE)? Give "
                f"--{receiver.label}-rolesanywhere-endpoint HOST[:PORT] for a private or local one"
            ) from None
        raise


def probe(
    link: Link, names: VersionAttributes, report: LinkReport, timeout: float, endpoint: str | None
) -> None:
    """Probe end to end with the secret as it is now stored (see ``peer_kinesis``)."""
    kinesis = peer_kinesis(link, endpoint)
    with session_errors(link, endpoint):
        report.probe_id = put_probe(
            link, kinesis, names, grace_seconds=0, what="the certificate's role session"
        )
    report.probe_seconds = wait_for_receipt(link, report.probe_id, timeout)
    if report.probe_seconds is None:
        raise OpsError(
            f"{link.name}: the inbox {link.receiver.output('inbox_stream_name')} accepted the probe with the "
            f"certificate's role session, but no replicator recorded it within {timeout:g} s: is "
            f"{link.receiver.name}'s replicator running (event source mapping enabled)? Check "
            "`ddb-replication status`."
        )


def _describe(certificate: x509.Certificate) -> str:
    return (
        f"certificate {certificates.serial_hex(certificate.serial_number)} "
        f"(CN {_common_name(certificate)}, until {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC)"
    )


def _issue(authority: certificates.Authority, target: Target, ca_dir: Path) -> certificates.IssuedCertificate:
    """A new leaf for the receiver's CN, recorded (its certificate only) in the CA folder's issued/."""
    issued = certificates.issue_forwarder_certificate(authority, target.common_name)
    certificates.record_issued(issued.certificate, ca_dir)
    return issued


def install(
    link: Link,
    names: VersionAttributes,
    ca_dir: Path,
    *,
    probe_timeout: float,
    endpoint: str | None,
    now: dt.datetime | None = None,
) -> LinkReport:
    """Give the sender's forwarder a certificate the receiver trusts, then probe it. A secret that
    already holds a good one (``installed_certificate``) is only probed. When a new certificate is
    refused (AccessError, exit 3) the secret's previous value is put back, as ``rotate`` does: a link
    moving from access_key to roles_anywhere keeps its working key until the certificate works."""
    target = Target.of(link)
    report = LinkReport(link.name, target.arns["role_arn"], link.secret_id)
    authority = certificates.load_authority(ca_dir)
    check_secret(link)
    moment = now or dt.datetime.now(dt.UTC)
    old = stored_secret(link)
    current = installed_certificate(old, authority, target, _revoked_serials(ca_dir, authority), moment)
    if current is not None:
        report.action = "already-installed"
        report.key_id = _describe(current)
        report.notes.append("the secret already holds a certificate of this CA; `rotate` replaces it")
        probe(link, names, report, probe_timeout, endpoint)
        report.ok = True
        return report
    issued = _issue(authority, target, ca_dir)
    _store(link, secret_document(issued, target))
    report.action = "issued"
    report.key_id = _describe(issued.certificate)
    try:
        probe(link, names, report, probe_timeout, endpoint)
    except AccessError as error:
        if old is None:
            raise
        _store(link, old)  # what worked before (an access key, an older certificate) keeps working
        report.notes.append("the new certificate did not work: the old secret was put back")
        raise AccessError(f"{error} (the secret's previous value was put back)") from None
    if old is not None and old.get("aws_access_key_id"):
        report.notes.append(
            "the secret held an access key: the forwarder now uses the certificate; delete that key of "
            "the peer-writer user once the forwarder has re-read the secret"
        )
    report.ok = True
    return report


def rotate(
    link: Link,
    names: VersionAttributes,
    ca_dir: Path,
    *,
    probe_timeout: float,
    endpoint: str | None,
) -> LinkReport:
    """Replace the sender's certificate with a new one of the CA and probe it; when the probe is
    refused the old secret is put back (the old certificate keeps working until it expires)."""
    target = Target.of(link)
    report = LinkReport(link.name, target.arns["role_arn"], link.secret_id, action="rotated")
    authority = certificates.load_authority(ca_dir)
    check_secret(link)
    old = stored_secret(link)
    if old is None:
        raise ConfigError(
            f"{link.name}: the secret {link.secret_id} holds nothing yet: "
            "run `credentials --ca-dir DIR` first"
        )
    issued = _issue(authority, target, ca_dir)
    report.key_id = _describe(issued.certificate)
    if old.get("auth") == ROLES_ANYWHERE:
        try:
            previous = certificates.load_certificate(str(old.get("certificate") or ""))
            report.old_key_id = certificates.serial_hex(previous.serial_number)
        except ConfigError:
            report.old_key_id = None
    _store(link, secret_document(issued, target))
    try:
        probe(link, names, report, probe_timeout, endpoint)
    except AccessError as error:
        _store(link, old)  # the old credentials keep working: put them back
        report.notes.append("the new certificate did not work: the old secret was put back")
        raise AccessError(f"{error} (the secret's previous value was put back)") from None
    if report.old_key_id:
        report.notes.append(
            f"the old certificate {report.old_key_id} stays valid until it expires (the forwarder re-reads "
            f"the secret within SECRET_MAX_AGE_SECONDS, {DEFAULT_SECRET_MAX_AGE_SECONDS} s by default); to "
            "end it sooner: `ca revoke --serial` it, then `crl`"
        )
    elif old.get("aws_access_key_id"):
        report.notes.append(
            "the secret held an access key: the forwarder now uses the certificate; delete that key of "
            "the peer-writer user once the forwarder has re-read the secret"
        )
    report.ok = True
    return report


def render(reports: list[LinkReport]) -> str:
    lines = []
    for r in reports:
        probe_text = f"probe received in {r.probe_seconds:g} s" if r.probe_seconds is not None else "no probe"
        lines.append(f"{r.link}: {r.action} {r.key_id} for {r.user} in {r.secret}; {probe_text}")
        lines.extend(f"  {note}" for note in r.notes)
    return "\n".join(lines)
