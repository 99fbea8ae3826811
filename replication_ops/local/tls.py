"""The local partitions' TLS: one local certificate authority and a server certificate for loopback.

IAM Roles Anywhere's client library (``iam-rolesanywhere-session``) always calls
``https://<endpoint>/sessions``, so each partition also serves its Roles Anywhere emulation over TLS
(``moto_launcher --tls-dir``). Clients trust the local CA through the standard ``AWS_CA_BUNDLE``
variable (https://docs.aws.amazon.com/sdkref/latest/guide/feature-gtls.html, "ca_bundle"), set to
``ca_path(directory)``. Made once per folder (under an exclusive lock, since both partitions start
at once) with ``cryptography``; the CA's key is not kept (a renewal makes a new CA), so nothing else
can ever be issued by it.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = timedelta(days=30)
RENEW_BEFORE = timedelta(days=1)
CA_FILE, CERT_FILE, KEY_FILE = "local-ca.pem", "server.pem", "server-key.pem"


def ca_path(directory: Path) -> Path:
    """The local CA certificate (PEM): the value of ``AWS_CA_BUNDLE`` for clients of the TLS port."""
    return directory / CA_FILE


def _write(path: Path, data: bytes) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(data)
    temporary.chmod(0o600)
    os.replace(temporary, path)


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _current(directory: Path, now: datetime) -> bool:
    try:
        server = x509.load_pem_x509_certificate((directory / CERT_FILE).read_bytes())
        x509.load_pem_x509_certificate(ca_path(directory).read_bytes())
    except (OSError, ValueError):
        return False
    return (directory / KEY_FILE).exists() and server.not_valid_after_utc - now > RENEW_BEFORE


def server_certificate(directory: Path) -> tuple[Path, Path]:
    """(certificate, key) paths of a server certificate for ``localhost``/``127.0.0.1``/``::1``,
    issued by the folder's local CA; made or renewed when missing or within a day of expiry."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        now = datetime.now(UTC)
        if not _current(directory, now):
            _issue(directory, now)
    return directory / CERT_FILE, directory / KEY_FILE


def _issue(directory: Path, now: datetime) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ddb-replication local CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(
        directory / KEY_FILE,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    _write(directory / CERT_FILE, _pem(server))
    _write(ca_path(directory), _pem(ca))
