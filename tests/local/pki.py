"""Certificates for the Roles Anywhere tests and the Roles Anywhere resources of a peer writer in a
local partition.

What the product makes is made by the product (``replication_ops.certificates``): the pair's CA,
its forwarder leaves (EC P-256, ECDSA-SHA256), the CRL and the PEM the secret holds. Only what the
product has no business making is made here: intermediate CAs, RSA leaves and leaves with chosen
validity dates (expired, not yet valid) for the emulator's refusals.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from replication_ops import certificates
from replication_ops.local.aws import SideClients
from replication_ops.local.partitions import LocalPartition

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Issued(certificates.IssuedCertificate):
    """The product's issued certificate (an RSA key too), with the PEM strings the secret holds."""

    private_key: PrivateKey  # type: ignore[assignment]

    @property
    def certificate_pem(self) -> str:
        return certificates.certificate_pem(self.certificate)

    @property
    def key_pem(self) -> str:
        return certificates.private_key_pem(self.private_key)  # type: ignore[arg-type]


def _ca_certificate(
    subject: x509.Name,
    issuer: x509.Name,
    key: PrivateKey,
    signing_key: PrivateKey,
    *,
    path_length: int | None,
) -> x509.Certificate:
    now = datetime.now(UTC)
    key_id = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(key_id, critical=False)
        .sign(signing_key, hashes.SHA256())
    )


class CertificateAuthority:
    """A CA that issues end-entity certificates: the product's pair CA, except that a root here may
    sign intermediates (path length unlimited, where the product's CA signs leaves only) and an
    intermediate is one (``parent``)."""

    def __init__(self, name: str = "pair CA", parent: CertificateAuthority | None = None) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        issuer, signing_key = (parent.name, parent.key) if parent else (self.name, self.key)
        self.certificate = _ca_certificate(self.name, issuer, self.key, signing_key, path_length=None)
        self.authority = certificates.Authority(self.certificate, self.key)

    @property
    def pem(self) -> str:
        return certificates.certificate_pem(self.certificate)

    def issue(
        self,
        common_name: str,
        *,
        key_type: str = "ec",
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> Issued:
        """A forwarder's certificate for ``common_name``, valid for a day unless told: the product's
        (``issue_forwarder_certificate``), or built here for an RSA key or chosen dates."""
        if key_type == "ec" and not_before is None and not_after is None:
            leaf = certificates.issue_forwarder_certificate(
                self.authority, common_name, validity=timedelta(days=1)
            )
            return Issued(leaf.certificate, leaf.private_key)
        key: PrivateKey = (
            ec.generate_private_key(ec.SECP256R1())
            if key_type == "ec"
            else rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - timedelta(hours=1))
            .not_valid_after(not_after or now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
            )
            .sign(self.key, hashes.SHA256())
        )
        return Issued(certificate, key)

    def crl(self, *revoked: x509.Certificate) -> str:
        """A CRL (PEM) revoking these certificates, signed by this CA (the product's ``build_crl``)."""
        moment = datetime.now(UTC) - timedelta(minutes=1)
        listed = [certificates.Revocation(c.serial_number, moment) for c in revoked]
        return certificates.crl_pem(certificates.build_crl(self.authority, listed, number=1, now=moment))


# -- the peer writer's Roles Anywhere resources, as the module makes them (issue 12's contract) -------

_names = itertools.count(1)


def trust_policy(anchor_arn: str, common_name: str) -> dict[str, Any]:
    """The peer-writer role's trust: only Roles Anywhere, for this trust anchor and certificate CN."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "rolesanywhere.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
                "Condition": {
                    "ArnEquals": {"aws:SourceArn": anchor_arn},
                    "StringEquals": {"aws:PrincipalTag/x509Subject/CN": common_name},
                },
            }
        ],
    }


def make_role(partition: LocalPartition, region: str, trust: dict[str, Any], stream: str = "inbox") -> str:
    """A peer-writer role that may only put records into ``stream`` of this partition."""
    iam = SideClients(partition.endpoint_url, region).iam
    name = f"peer-writer-{next(_names)}"
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    dns_partition = "aws-cn" if region.startswith("cn-") else "aws"
    statement = {
        "Effect": "Allow",
        "Action": ["kinesis:PutRecord", "kinesis:PutRecords"],
        "Resource": f"arn:{dns_partition}:kinesis:{region}:123456789012:stream/{stream}",
    }
    iam.put_role_policy(
        RoleName=name,
        PolicyName="inbox",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
    )
    return str(role["Arn"])


def make_anchor(partition: LocalPartition, region: str, ca: CertificateAuthority) -> dict[str, Any]:
    return SideClients(partition.endpoint_url, region).rolesanywhere.create_trust_anchor(
        name=f"pair-{next(_names)}",
        enabled=True,
        source={"sourceType": "CERTIFICATE_BUNDLE", "sourceData": {"x509CertificateData": ca.pem}},
    )["trustAnchor"]


def make_profile(
    partition: LocalPartition, region: str, role_arn: str, duration: int = 900
) -> dict[str, Any]:
    return SideClients(partition.endpoint_url, region).rolesanywhere.create_profile(
        name=f"pair-{next(_names)}", enabled=True, roleArns=[role_arn], durationSeconds=duration
    )["profile"]
