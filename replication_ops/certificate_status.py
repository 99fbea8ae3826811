"""The forwarders' certificates in ``status``: for each link in roles_anywhere mode, the certificate the
sender's forwarder presents to the receiver's IAM Roles Anywhere, its expiry and the receiver's alarm
threshold, read without the private key.

Where it is read: IAM Roles Anywhere's subjects in the receiver's account. A subject "associates a
certificate identity with authentication attempts" and stores "the certificate data used in the
attempt" (ListSubjects, GetSubject:
https://docs.aws.amazon.com/rolesanywhere/latest/APIReference/API_GetSubject.html; in the China
regions too, https://docs.amazonaws.cn/rolesanywhere/latest/APIReference/API_GetSubject.html): its
``credentials`` are the certificates presented, each with ``x509CertificateData`` (PEM), ``seenAt``
and ``failed``. That answers both things an operator needs: which certificate is in use (the newest
one presented without failure; every certificate ``credentials``/``rotate`` installs is presented at
once by their probe, so it is the installed one unless the secret was edited by hand) and that the
receiver has seen it (``seenAt``). It is also what AWS's own expiry notification evaluates
("end-entity certificate used to vend temporary security credentials", customize-notification-settings).
The alternatives were weaker: GetSecretValue would bring the private key to the operator's machine;
tags on the secret recording the serial would be a second record to keep in step, and Terraform owns
the secret's tags (an apply would remove them).

The threshold is the receiver's trust anchor's END_ENTITY_CERTIFICATE_EXPIRY notification setting
(GetTrustAnchor ``notificationSettings``; the module's ``roles_anywhere_certificate_expiry_days``),
IAM Roles Anywhere's default of 45 days when the anchor has none, and ``RENEWAL_MARGIN`` when it is
disabled. A certificate is flagged when its days until expiry are at most the threshold: the day the
alarm starts (notification evaluation criteria, "Number of days until certificate expiry <=
threshold", https://docs.aws.amazon.com/rolesanywhere/latest/userguide/customize-notification-settings.html).
Its fix is ``ddb-replication rotate --ca-dir DIR`` (``credentials`` keeps a certificate with more than
``RENEWAL_MARGIN`` left).

Permissions (the operator's, in the receiver's account): ``rolesanywhere:GetTrustAnchor``,
``rolesanywhere:ListSubjects``, ``rolesanywhere:GetSubject``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from replication_ops import certificates
from replication_ops.certificate_credentials import RENEWAL_MARGIN, mode
from replication_ops.credentials import Link, links
from replication_ops.errors import OpsError, aws_errors
from replication_ops.sides import Pair

END_ENTITY_EXPIRY = "END_ENTITY_CERTIFICATE_EXPIRY"
# IAM Roles Anywhere's default notification settings: "45 days before expiry", enabled.
AWS_DEFAULT_THRESHOLD_DAYS = 45


@dataclass
class CertificateStatus:
    """One link's forwarder certificate as the receiver's IAM Roles Anywhere last saw it."""

    link: str  # "cn-to-us": the sender's forwarder, the receiver's trust anchor
    trust_anchor_arn: str
    common_name: str  # the CN the receiver's role trusts
    serial: str | None = None  # hex, as `ca issue` and `ca revoke` print it
    not_after: str | None = None  # ISO 8601, UTC
    days_left: int | None = None  # whole days until not_after
    last_presented: str | None = None  # the subject's seenAt of this certificate (ISO 8601)
    threshold_days: int | None = None  # the receiver's alarm threshold (see the module docstring)
    problems: list[str] = field(default_factory=list)


def threshold_days(settings: list[dict[str, Any]]) -> int:
    """The END_ENTITY_CERTIFICATE_EXPIRY threshold of a trust anchor's ``notificationSettings``:
    its ``threshold`` when enabled, AWS's default 45 days when there is no such setting, and
    ``RENEWAL_MARGIN`` when it is disabled (no alarm: status still warns when ``credentials`` would)."""
    found = [s for s in settings if s.get("event") == END_ENTITY_EXPIRY]
    if not found:
        return AWS_DEFAULT_THRESHOLD_DAYS
    if not found[0].get("enabled", True):
        return RENEWAL_MARGIN.days
    return int(found[0].get("threshold") or AWS_DEFAULT_THRESHOLD_DAYS)


def _names_common_name(x509_subject: str, common_name: str) -> bool:
    """Whether a subject's ``x509Subject`` (RFC 4514-like, ``CN=...,O=...``) has this CN."""
    return any(part.strip() == f"CN={common_name}" for part in x509_subject.split(","))


def _iso(moment: Any) -> str | None:
    if isinstance(moment, dt.datetime):
        return moment.astimezone(dt.UTC).isoformat()
    return str(moment) if moment else None


def _presented(subjects: list[dict[str, Any]], common_name: str) -> tuple[x509.Certificate, Any] | None:
    """The newest certificate with this CN presented without failure, with its seenAt."""
    found: list[tuple[Any, x509.Certificate]] = []
    for subject in subjects:
        for credential in subject.get("credentials", []):
            if credential.get("failed"):
                continue
            try:
                certificate = certificates.load_certificate(str(credential.get("x509CertificateData") or ""))
            except OpsError:
                continue
            names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            if names and names[0].value == common_name:
                found.append((credential.get("seenAt"), certificate))
    if not found:
        return None
    seen, certificate = max(found, key=lambda pair: (_iso(pair[0]) or "", pair[1].not_valid_after_utc))
    return certificate, seen


def _revoked(crls: list[dict[str, Any]], serial: int) -> bool:
    """Whether an enabled CRL of the trust anchor (ListCrls' ``crlData``, PEM or DER) lists ``serial``:
    IAM Roles Anywhere then refuses the certificate at its next CreateSession. A CRL that does not
    parse is passed over."""
    for crl in crls:
        data = bytes(crl.get("crlData") or b"")
        try:
            pem = data.lstrip().startswith(b"-----")
            parsed = x509.load_pem_x509_crl(data) if pem else x509.load_der_x509_crl(data)
        except ValueError:
            continue
        if parsed.get_revoked_certificate_by_serial_number(serial) is not None:
            return True
    return False


def link_status(link: Link, now: dt.datetime) -> CertificateStatus:
    """The receiver's view of the sender's forwarder certificate (the module docstring)."""
    receiver = link.receiver
    anchor = receiver.output("roles_anywhere_trust_anchor_arn")
    common_name = receiver.output("peer_writer_certificate_subject")
    result = CertificateStatus(link.name, anchor, common_name)
    client = receiver.client("rolesanywhere")
    with aws_errors(f"{receiver.name} IAM Roles Anywhere"):
        detail = client.get_trust_anchor(trustAnchorId=anchor.rsplit("/", 1)[-1])["trustAnchor"]
        result.threshold_days = threshold_days(list(detail.get("notificationSettings") or []))
        summaries = [
            s
            for page in client.get_paginator("list_subjects").paginate()
            for s in page.get("subjects", [])
            if _names_common_name(str(s.get("x509Subject", "")), common_name)
        ]
        subjects = [client.get_subject(subjectId=s["subjectId"])["subject"] for s in summaries]
        crls = [
            crl
            for page in client.get_paginator("list_crls").paginate()
            for crl in page.get("crls", [])
            if crl.get("trustAnchorArn") == anchor and crl.get("enabled", True)
        ]
    presented = _presented(subjects, common_name)
    fix = f"`ddb-replication rotate --ca-dir DIR --direction {link.name}`"
    if presented is None:
        result.problems.append(
            f"{link.name}: {receiver.name}'s IAM Roles Anywhere has seen no certificate of CN {common_name}: "
            f"install one with `ddb-replication credentials --ca-dir DIR --direction {link.name}`"
        )
        return result
    certificate, seen = presented
    not_after = certificate.not_valid_after_utc
    result.serial = certificates.serial_hex(certificate.serial_number)
    result.not_after = not_after.isoformat()
    result.days_left = (not_after - now) // dt.timedelta(days=1)
    result.last_presented = _iso(seen)
    if _revoked(crls, certificate.serial_number):
        result.problems.append(
            f"{link.name}: the forwarder certificate {result.serial} is revoked by a CRL in the trust "
            f"anchor of {receiver.name}: issue a new one with "
            f"`ddb-replication credentials --ca-dir DIR --direction {link.name}`"
        )
    if not_after <= now:
        result.problems.append(f"{link.name}: the forwarder certificate {result.serial} has expired: {fix}")
    elif result.days_left <= result.threshold_days:
        result.problems.append(
            f"{link.name}: the forwarder certificate {result.serial} expires in {result.days_left} day(s), "
            f"within the alarm threshold of {result.threshold_days}: {fix}"
        )
    return result


def run(pair: Pair, now: dt.datetime) -> dict[str, list[CertificateStatus]]:
    """Sender side label -> its forwarder's certificate (links in roles_anywhere mode only). A link
    whose receiver cannot be read (no permission, no endpoint) is reported as a problem, not raised:
    status shows everything else."""
    found: dict[str, list[CertificateStatus]] = {}
    for link in links(pair, "both"):
        if mode(link) != "roles_anywhere":
            continue
        try:
            entry = link_status(link, now)
        except OpsError as error:
            entry = CertificateStatus(
                link.name,
                str(link.receiver.outputs.get("roles_anywhere_trust_anchor_arn")),
                str(link.receiver.outputs.get("peer_writer_certificate_subject")),
                problems=[f"{link.name}: forwarder certificate unknown: {error}"],
            )
        found.setdefault(link.sender.label, []).append(entry)
    return found


def attach(pair: Pair, statuses: list[Any], now: dt.datetime) -> None:
    """Put each sender's certificates and their problems on its side's ``status.SideStatus``
    (matched by ``side``, the label): the hook ``status.run`` calls."""
    found = run(pair, now)
    for side in statuses:
        side.certificates = found.get(side.side, [])
        side.problems.extend(problem for entry in side.certificates for problem in entry.problems)


def render_lines(entries: list[CertificateStatus]) -> list[str]:
    """status's lines for a side's forwarder certificates (none in access_key mode)."""
    lines = []
    for c in entries:
        if c.serial is None:
            lines.append(f"  forwarder certificate ({c.link}): none seen by the peer")
            continue
        lines.append(
            f"  forwarder certificate ({c.link}): serial {c.serial}, CN {c.common_name}, until "
            f"{c.not_after}, {c.days_left} day(s) left (alarm at {c.threshold_days}), last presented "
            f"{c.last_presented or '-'}"
        )
    return lines
