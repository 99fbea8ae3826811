"""The pair's certificate authority for IAM Roles Anywhere: create it, issue forwarders' leaf
certificates, revoke them with a CRL, read a certificate's expiry.

The operator holds the CA: its private key is a file in the operator's folder and never goes into
either account. Each side's trust anchor holds only the CA certificate (the module's
``roles_anywhere_ca_certificate``, a CERTIFICATE_BUNDLE: ACM Private CA trust anchors are not
available in the China regions, https://docs.amazonaws.cn/rolesanywhere/latest/APIReference/API_Source.html).
Each forwarder holds a short-lived leaf certificate and its key in its secret, and exchanges them
with CreateSession in the peer partition for credentials of the peer's peer-writer role, which trusts
only the subject CN ``forwarder_common_name(name, region)``.

What Roles Anywhere requires of the certificates (trust model, "Signature validation",
https://docs.aws.amazon.com/rolesanywhere/latest/userguide/trust-model.html): X.509v3; a signature
with SHA-256 or stronger (MD5 and SHA-1 are refused); RSA or EC keys (EC signs with ECDSA); the CA:
basic constraints CA true, key usage keyCertSign (cRLSign allowed); a leaf: basic constraints CA
false, key usage digitalSignature. Both are made here with EC P-256 keys and ECDSA with SHA-256,
which the forwarder's signer sends as AWS4-X509-ECDSA-SHA256. Serial numbers are positive, at most
20 octets and unique per CA (RFC 5280 4.1.2.2): 159 random bits each
(``x509.random_serial_number``). A CRL is imported into a trust anchor in PEM
(https://docs.aws.amazon.com/rolesanywhere/latest/APIReference/API_ImportCrl.html: "a CRL must be in
PEM format"; crlData is at most 300,000 bytes).

Files of a CA folder (``ddb-replication ca init --dir DIR``): ``ca.pem`` (the certificate, for the
trust anchors), ``ca.key`` (PKCS#8 PEM, mode 0600: keep the folder offline), ``crl.pem`` (after the
first revocation) and ``issued/`` (every leaf the CA issued: from ``ca issue`` with its key, 0600;
from ``credentials``/``rotate`` the certificate only, its key being in the forwarder's secret).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from replication_ops.errors import ConfigError

CA_CERTIFICATE_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
CRL_FILE = "crl.pem"
ISSUED_FOLDER = "issued"

# A CA certificate outlives many leaves; replacing it means updating both trust anchors.
CA_VALIDITY = dt.timedelta(days=10 * 365)
# Short-lived: `rotate` re-issues well before this, `status` shows each certificate's expiry.
LEAF_VALIDITY = dt.timedelta(days=30)
MAX_LEAF_VALIDITY = dt.timedelta(days=365)
# A leaf is valid from a few minutes before it is issued, so that a verifier whose clock is a little
# behind the operator's does not refuse it as not yet valid.
BACKDATE = dt.timedelta(minutes=5)
# X.509's upper bound of a common name (RFC 5280, ub-common-name).
MAX_COMMON_NAME = 64
# The same rule as the module's `name` variable.
ENDPOINT_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9-]{0,31}")
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
FORWARDER_COMMON_NAME = re.compile(
    rf"(?P<name>{ENDPOINT_NAME.pattern})\.forwarder\.(?P<region>{REGION.pattern})"
)
# RFC 5280 4.1.2.2: at most 20 octets, positive.
MAX_SERIAL = 2 ** (20 * 8 - 1) - 1

PrivateKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Authority:
    """The pair's CA: its self-signed certificate and its private key (the operator's only)."""

    certificate: x509.Certificate
    private_key: PrivateKey


@dataclass(frozen=True)
class IssuedCertificate:
    """A forwarder's leaf certificate and its private key."""

    certificate: x509.Certificate
    private_key: PrivateKey

    @property
    def serial_hex(self) -> str:
        return serial_hex(self.certificate.serial_number)

    def secret_fields(self) -> dict[str, str]:
        """The forwarder secret's certificate fields (the roles_anywhere secret of the pair's
        contract): ``certificate`` (PEM) and ``private_key`` (PEM, PKCS#8, unencrypted). No
        ``certificate_chain``: the CA signs leaves directly."""
        return {
            "certificate": certificate_pem(self.certificate),
            "private_key": private_key_pem(self.private_key),
        }


@dataclass(frozen=True)
class Revocation:
    serial_number: int
    revoked_at: dt.datetime


# -- names -------------------------------------------------------------------------------------


def forwarder_common_name(name: str, region: str) -> str:
    """The subject CN of the forwarder of endpoint ``name`` in ``region``:
    ``"<name>.forwarder.<region>"``, the CN the peer's peer-writer role trusts
    (``aws:PrincipalTag/x509Subject/CN``; the module's ``peer_writer_certificate_subject``).
    Raises ConfigError for a name or region the module would not take."""
    if not ENDPOINT_NAME.fullmatch(name):
        raise ConfigError(
            f"{name!r} is not an endpoint name: it starts with a letter and holds at most 32 letters, "
            "digits and hyphens (the module's name)"
        )
    if not REGION.fullmatch(region):
        raise ConfigError(f"{region!r} is not an AWS region code (e.g. cn-north-1, us-east-1)")
    return f"{name}.forwarder.{region}"


def check_forwarder_common_name(common_name: str) -> str:
    """``common_name`` if it is a forwarder's (``<name>.forwarder.<region>``), else ConfigError."""
    found = FORWARDER_COMMON_NAME.fullmatch(common_name)
    if not found:
        raise ConfigError(
            f"{common_name!r} is not a forwarder's certificate name: give NAME.forwarder.REGION, the "
            "forwarder's endpoint name and its region (e.g. ddbrep-cn.forwarder.cn-north-1; the peer's "
            "output peer_writer_certificate_subject says which one its role trusts)"
        )
    return forwarder_common_name(found["name"], found["region"])


def serial_hex(serial_number: int) -> str:
    """A serial number as OpenSSL prints it (``openssl x509 -serial``): upper-case hex, no colons.
    Roles Anywhere names a session by the hex serial of its certificate (trust-model.html)."""
    return f"{serial_number:X}"


def parse_serial(text: str) -> int:
    """A serial number in hex as ``serial_hex`` or OpenSSL print it (colons and ``0x`` allowed).
    Raises ConfigError unless it is a serial RFC 5280 allows: positive, at most 20 octets."""
    digits = text.strip().replace(":", "")
    digits = digits[2:] if digits.lower().startswith("0x") else digits
    if not digits or not re.fullmatch(r"[0-9A-Fa-f]+", digits):
        raise ConfigError(
            f"{text!r} is not a serial number: give it in hex as `ca issue` prints it "
            "(or `openssl x509 -noout -serial -in CERT`)"
        )
    value = int(digits, 16)
    if not 0 < value <= MAX_SERIAL:
        raise ConfigError(f"{text!r} is not a serial number: one is positive and at most 20 octets")
    return value


# -- PEM ---------------------------------------------------------------------------------------


def certificate_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def private_key_pem(private_key: PrivateKey) -> str:
    """PKCS#8, unencrypted: what the forwarder's secret holds and its signer loads."""
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def crl_pem(crl: x509.CertificateRevocationList) -> str:
    return crl.public_bytes(serialization.Encoding.PEM).decode("ascii")


def load_certificate(pem: str | bytes, where: str = "the certificate") -> x509.Certificate:
    """One PEM certificate (the first of a bundle); ConfigError when there is none."""
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise ConfigError(f"{where} is not a PEM certificate (-----BEGIN CERTIFICATE-----)") from None


def certificate_expiry(pem: str | bytes) -> dt.datetime:
    """When a PEM certificate stops being valid (its notAfter, an aware UTC datetime): for
    ``status`` and the alarm that fires well before a forwarder's certificate expires."""
    return load_certificate(pem).not_valid_after_utc


# -- creating and issuing ----------------------------------------------------------------------


def _now(now: dt.datetime | None) -> dt.datetime:
    moment = now or dt.datetime.now(dt.UTC)
    if moment.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    return moment.astimezone(dt.UTC).replace(microsecond=0)


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not signs_certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _authority_key_id(issuer_key_id: x509.SubjectKeyIdentifier) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_key_id)


def create_authority(
    common_name: str, *, now: dt.datetime | None = None, validity: dt.timedelta = CA_VALIDITY
) -> Authority:
    """A new self-signed CA for one replication pair: EC P-256, ECDSA with SHA-256, basic
    constraints CA true with path length 0 (it signs leaves only), key usage keyCertSign and
    cRLSign, both critical, and its key identifiers. ``common_name``: 1 to 64 characters."""
    if not 1 <= len(common_name) <= MAX_COMMON_NAME:
        raise ConfigError(f"a CA name is 1 to {MAX_COMMON_NAME} characters, not {len(common_name)}")
    start = _now(now)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    key_id = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(key_id, critical=False)
        .add_extension(_authority_key_id(key_id), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(certificate, key)


def issue_forwarder_certificate(
    authority: Authority,
    common_name: str,
    *,
    now: dt.datetime | None = None,
    validity: dt.timedelta = LEAF_VALIDITY,
) -> IssuedCertificate:
    """A forwarder's leaf certificate, signed by ``authority``, with a new EC P-256 key: subject CN
    ``common_name`` (see ``forwarder_common_name``), basic constraints CA false and key usage
    digitalSignature (both critical), a random serial. Valid from ``BACKDATE`` before ``now`` for
    ``validity`` (at most ``MAX_LEAF_VALIDITY``). ConfigError when the CA expires before the leaf
    would, or is not valid yet."""
    start = _now(now)
    if not dt.timedelta(0) < validity <= MAX_LEAF_VALIDITY:
        raise ConfigError(f"a forwarder's certificate is valid for up to {MAX_LEAF_VALIDITY.days} days")
    if not 1 <= len(common_name) <= MAX_COMMON_NAME:
        raise ConfigError(f"a certificate name is 1 to {MAX_COMMON_NAME} characters, not {len(common_name)}")
    ca = authority.certificate
    end = start + validity
    if end > ca.not_valid_after_utc:
        raise ConfigError(
            f"the CA expires on {ca.not_valid_after_utc:%Y-%m-%d}, before this certificate would "
            f"({end:%Y-%m-%d}): issue a shorter one, or create a new CA and install it in both trust anchors"
        )
    if start < ca.not_valid_before_utc:
        raise ConfigError(f"the CA is valid only from {ca.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    key = ec.generate_private_key(ec.SECP256R1())
    ca_key_id = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(max(start - BACKDATE, ca.not_valid_before_utc))
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id), critical=False
        )
        .sign(authority.private_key, hashes.SHA256())
    )
    return IssuedCertificate(certificate, key)


def build_crl(
    authority: Authority, revocations: Iterable[Revocation], *, number: int, now: dt.datetime | None = None
) -> x509.CertificateRevocationList:
    """A CRL of ``revocations`` signed by the CA (ECDSA with SHA-256), with CRL number ``number``
    (which must grow with each CRL of the CA, RFC 5280 5.2.3) and the CA's key identifier. Its
    nextUpdate is the CA's own end: the CRL is pushed into the trust anchors (ImportCrl/UpdateCrl),
    not fetched, so a verifier has no later one to wait for."""
    moment = _now(now)
    ca = authority.certificate
    ca_key_id = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(moment)
        .next_update(max(ca.not_valid_after_utc, moment))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id), critical=False
        )
    )
    for revocation in sorted(revocations, key=lambda r: r.serial_number):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(revocation.serial_number)
            .revocation_date(revocation.revoked_at)
            .build()
        )
    return builder.sign(authority.private_key, hashes.SHA256())


def revocations(crl: x509.CertificateRevocationList) -> list[Revocation]:
    """The serials a CRL revokes, with when."""
    return [Revocation(entry.serial_number, entry.revocation_date_utc) for entry in crl]


def crl_number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


# -- the operator's folder ---------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedFiles:
    certificate: Path
    private_key: Path


@dataclass(frozen=True)
class RevocationResult:
    """What ``revoke`` did: the CRL file, its number, the serials it lists, and whether the serial
    was newly added (False: it was revoked already and nothing changed)."""

    path: Path
    number: int
    serials: list[int]
    added: bool


def _write_new(path: Path, text: str, mode: int) -> None:
    """Create ``path`` with ``mode`` (never overwriting: O_EXCL) and write ``text``."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(text)
    os.chmod(path, mode)  # the umask may have taken bits off


def _replace(path: Path, text: str, mode: int) -> None:
    """Write ``path`` whole or not at all (a temporary file beside it, then os.replace)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    _write_new(temporary, text, mode)
    os.replace(temporary, path)


def write_authority(authority: Authority, folder: Path) -> tuple[Path, Path]:
    """Write the CA into ``folder`` (made if missing): ``ca.pem`` (0644) and ``ca.key`` (0600).
    ConfigError when the folder already holds a CA: a CA is never overwritten, since every
    certificate it issued and both trust anchors depend on it."""
    folder.mkdir(parents=True, exist_ok=True)
    certificate, key = folder / CA_CERTIFICATE_FILE, folder / CA_KEY_FILE
    existing = [p.name for p in (certificate, key) if p.exists()]
    if existing:
        raise ConfigError(
            f"{folder} already holds a CA ({', '.join(existing)}): a CA is never overwritten; give "
            "another --dir for a new one"
        )
    try:
        _write_new(key, private_key_pem(authority.private_key), 0o600)
        _write_new(certificate, certificate_pem(authority.certificate), 0o644)
    except FileExistsError:
        raise ConfigError(f"{folder} already holds a CA: a CA is never overwritten") from None
    return certificate, key


def load_authority(folder: Path) -> Authority:
    """The CA of ``folder`` (``ca.pem`` and ``ca.key``); ConfigError when either is missing or
    unreadable, or the key is not the certificate's."""
    certificate_path, key_path = folder / CA_CERTIFICATE_FILE, folder / CA_KEY_FILE
    missing = [p.name for p in (certificate_path, key_path) if not p.is_file()]
    if len(missing) == 2:
        raise ConfigError(
            f"{folder} holds no CA (ca.pem and ca.key missing): create one with "
            f"`ddb-replication ca init --dir {folder}`"
        )
    if missing:
        # Half a CA: never offer `ca init` here (it refuses a folder with either file, rightly).
        raise ConfigError(
            f"{folder} holds only half a CA ({missing[0]} missing): restore {missing[0]} from where the "
            "operator keeps it; a new CA needs a new folder and both roots applied with its ca.pem"
        )
    certificate = load_certificate(certificate_path.read_bytes(), str(certificate_path))
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{key_path} is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != certificate.public_key():
        raise ConfigError(f"{key_path} is not the private key of {certificate_path}")
    return Authority(certificate, key)


def _issued_path(certificate: x509.Certificate, folder: Path) -> Path:
    common_name = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    return folder / ISSUED_FOLDER / f"{common_name}.{serial_hex(certificate.serial_number)}.pem"


def write_issued(issued: IssuedCertificate, folder: Path) -> IssuedFiles:
    """Write a leaf and its key into ``folder/issued/`` as ``<CN>.<serial>.pem`` (0644) and
    ``<CN>.<serial>.key`` (0600), never overwriting."""
    (folder / ISSUED_FOLDER).mkdir(exist_ok=True)
    path = _issued_path(issued.certificate, folder)
    files = IssuedFiles(path, path.with_suffix(".key"))
    _write_new(files.private_key, private_key_pem(issued.private_key), 0o600)
    _write_new(files.certificate, certificate_pem(issued.certificate), 0o644)
    return files


def record_issued(certificate: x509.Certificate, folder: Path) -> Path:
    """Record a leaf issued for a secret (``credentials``, ``rotate``) in ``folder/issued/`` as
    ``<CN>.<serial>.pem`` (0644), its certificate only: its key stays in the secret. The folder is the
    CA's record of what it issued, which ``check_issued`` reads."""
    (folder / ISSUED_FOLDER).mkdir(exist_ok=True)
    path = _issued_path(certificate, folder)
    _write_new(path, certificate_pem(certificate), 0o644)
    return path


def issued_serials(folder: Path, authority: Authority) -> list[int]:
    """The serials of the certificates in ``folder/issued/`` that this CA signed, sorted."""
    serials = set()
    for path in sorted((folder / ISSUED_FOLDER).glob("*.pem")):
        try:
            certificate = x509.load_pem_x509_certificate(path.read_bytes())
            certificate.verify_directly_issued_by(authority.certificate)
        except (ValueError, TypeError, InvalidSignature):
            continue
        serials.add(certificate.serial_number)
    return sorted(serials)


def check_issued(folder: Path, serial_number: int) -> None:
    """ConfigError unless ``folder``'s CA issued ``serial_number`` (``issued_serials``) or its CRL
    lists it already: a CRL of serials the CA never issued revokes nothing, and a mistyped serial
    would leave the certificate meant valid."""
    authority = load_authority(folder)
    known = issued_serials(folder, authority)
    path = folder / CRL_FILE
    listed = {r.serial_number for r in revocations(read_crl(path, authority))} if path.exists() else set()
    if serial_number in known or serial_number in listed:
        return
    given = serial_hex(serial_number)
    if not known:
        raise ConfigError(
            f"serial {given} was not issued by the CA in {folder}: it has issued none "
            f"({folder / ISSUED_FOLDER} records what `ca issue`, `credentials` and `rotate` issue)"
        )
    if len(known) > 5:
        issued = f"{len(known)} certificates, listed by `ls {folder / ISSUED_FOLDER}`"
    else:
        issued = ", ".join(serial_hex(s) for s in known)
    raise ConfigError(f"serial {given} was not issued by the CA in {folder}: it issued {issued}")


def read_crl(path: Path, authority: Authority) -> x509.CertificateRevocationList:
    """The CA's CRL at ``path``; ConfigError when it is not a PEM CRL signed by this CA."""
    try:
        crl = x509.load_pem_x509_crl(path.read_bytes())
    except ValueError:
        raise ConfigError(f"{path} is not a PEM certificate revocation list") from None
    valid = crl.is_signature_valid(authority.private_key.public_key())
    if not valid or crl.issuer != authority.certificate.subject:
        raise ConfigError(f"{path} is not a CRL of this CA (its signature does not verify)")
    return crl


def revoke(folder: Path, serial_number: int, *, now: dt.datetime | None = None) -> RevocationResult:
    """Add ``serial_number`` to the CA's CRL (``folder/crl.pem``, made at the first revocation) and
    sign it again with the next CRL number. The CRL is the record of what is revoked: the earlier
    entries are kept with their dates. A serial already listed changes nothing. Import the file into
    both trust anchors (ImportCrl, then UpdateCrl for later versions)."""
    authority = load_authority(folder)
    path = folder / CRL_FILE
    listed: list[Revocation] = []
    number = 1
    if path.exists():
        crl = read_crl(path, authority)
        listed = revocations(crl)
        number = crl_number(crl) + 1
    if any(r.serial_number == serial_number for r in listed):
        return RevocationResult(path, number - 1, sorted(r.serial_number for r in listed), added=False)
    moment = _now(now)
    listed.append(Revocation(serial_number, moment))
    crl = build_crl(authority, listed, number=number, now=moment)
    _replace(path, crl_pem(crl), 0o644)
    return RevocationResult(path, number, sorted(r.serial_number for r in listed), added=True)
