"""Certificates for the Roles Anywhere tests (a CA, leaves it issues, a CRL: ``cryptography``) and the
Roles Anywhere resources of a peer writer in a local partition."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from replication_ops.local.aws import SideClients
from replication_ops.local.partitions import LocalPartition

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key (PEM strings, as the forwarder's secret holds them)."""

    certificate: x509.Certificate
    key: PrivateKey

    @property
    def certificate_pem(self) -> str:
        return _pem(self.certificate)

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ddb-replication tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


class CertificateAuthority:
    """A CA (or an intermediate, when ``parent`` is given) that issues end-entity certificates."""

    def __init__(self, name: str = "pair CA", parent: CertificateAuthority | None = None) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        issuer_name, signing_key = (parent.name, parent.key) if parent else (_name(name), self.key)
        self.name = _name(name)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(issuer_name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(signing_key, hashes.SHA256())
        )

    @property
    def pem(self) -> str:
        return _pem(self.certificate)

    def issue(
        self,
        common_name: str,
        *,
        key_type: str = "ec",
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> Issued:
        """An end-entity certificate for ``common_name``, valid from an hour ago for a day unless told."""
        key: PrivateKey = (
            ec.generate_private_key(ec.SECP256R1())
            if key_type == "ec"
            else rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
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
        """A CRL (PEM) revoking these certificates, signed by this CA."""
        now = datetime.now(UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.name)
            .last_update(now - timedelta(minutes=1))
            .next_update(now + timedelta(days=1))
        )
        for certificate in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(certificate.serial_number)
                .revocation_date(now - timedelta(minutes=1))
                .build()
            )
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


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
