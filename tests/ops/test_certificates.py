"""The pair's certificate authority (replication_ops.certificates) makes what IAM Roles Anywhere takes.

The requirements are AWS's (trust model, "Signature validation",
https://docs.aws.amazon.com/rolesanywhere/latest/userguide/trust-model.html): X.509v3, SHA-256 or
stronger, RSA or EC keys; a trust anchor's certificate: basic constraints CA true, key usage
keyCertSign (cRLSign allowed); an end-entity certificate: basic constraints CA false, key usage
digitalSignature. Chains are checked with cryptography's own path validation
(``cryptography.x509.verification``) under an extension policy that states exactly those
end-entity requirements (its web PKI default would also demand a subject alternative name, which
Roles Anywhere does not). A CRL is imported in PEM (API_ImportCrl).
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)
from hypothesis import given
from hypothesis import strategies as st

from replication_ops import certificates
from replication_ops.certificates import Revocation
from replication_ops.errors import ConfigError

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
CN = "ddbrep-cn.forwarder.cn-north-1"
MODULE_FIXTURE = Path(__file__).parents[2] / "modules/replication_endpoint/tests/fixtures/pair-ca.pem"


@pytest.fixture(scope="module")
def authority() -> certificates.Authority:
    return certificates.create_authority("pair CA", now=NOW)


@pytest.fixture(scope="module")
def leaf(authority: certificates.Authority) -> certificates.IssuedCertificate:
    return certificates.issue_forwarder_certificate(authority, CN, now=NOW)


def _end_entity_is_not_a_ca(_policy, _certificate, extension: x509.BasicConstraints) -> None:
    if extension.ca:
        raise ValueError("an end-entity certificate must have basic constraints CA false")


def _end_entity_signs(_policy, _certificate, extension: x509.KeyUsage) -> None:
    if not extension.digital_signature:
        raise ValueError("an end-entity certificate's key usage must include digitalSignature")


ROLES_ANYWHERE_END_ENTITY = (
    ExtensionPolicy.permit_all()
    .require_present(x509.BasicConstraints, Criticality.AGNOSTIC, _end_entity_is_not_a_ca)
    .require_present(x509.KeyUsage, Criticality.AGNOSTIC, _end_entity_signs)
)


def verify_chain(leaf: x509.Certificate, ca: x509.Certificate, at: dt.datetime) -> list[x509.Certificate]:
    """The chain from ``leaf`` to the trust anchor ``ca`` at time ``at``, or VerificationError."""
    verifier = (
        PolicyBuilder()
        .store(Store([ca]))
        .time(at)
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ROLES_ANYWHERE_END_ENTITY
        )
        .build_client_verifier()
    )
    return verifier.verify(leaf, []).chain


# -- the CA ------------------------------------------------------------------------------------


def test_the_ca_is_a_v3_self_signed_ca_that_may_sign_certificates_and_crls(authority) -> None:
    ca = authority.certificate
    assert ca.version == x509.Version.v3
    ca.verify_directly_issued_by(ca)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign


def test_the_ca_signs_with_ecdsa_and_sha256(authority) -> None:
    assert isinstance(authority.certificate.signature_hash_algorithm, hashes.SHA256)
    assert isinstance(authority.certificate.public_key(), ec.EllipticCurvePublicKey)


def test_the_modules_test_ca_is_such_a_ca() -> None:
    """The trust anchor the module's terraform tests plan with was made by create_authority."""
    ca = x509.load_pem_x509_certificate(MODULE_FIXTURE.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign


# -- a forwarder's certificate -----------------------------------------------------------------


def test_a_forwarder_certificate_chains_to_the_pair_ca(authority, leaf) -> None:
    chain = verify_chain(leaf.certificate, authority.certificate, NOW)
    assert chain == [leaf.certificate, authority.certificate]


def test_a_forwarder_certificate_is_an_end_entity_that_signs(leaf) -> None:
    certificate = leaf.certificate
    assert certificate.version == x509.Version.v3
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    assert isinstance(certificate.signature_hash_algorithm, hashes.SHA256)


def test_a_forwarder_certificate_names_the_forwarder(leaf) -> None:
    names = leaf.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert [n.value for n in names] == [CN]


def test_a_certificate_of_another_ca_does_not_chain_to_the_pair_ca(authority) -> None:
    other = certificates.create_authority("another CA", now=NOW)
    stranger = certificates.issue_forwarder_certificate(other, CN, now=NOW)
    with pytest.raises(VerificationError):
        verify_chain(stranger.certificate, authority.certificate, NOW)


def test_a_forwarder_certificate_stops_verifying_when_it_expires(authority) -> None:
    issued = certificates.issue_forwarder_certificate(authority, CN, now=NOW, validity=dt.timedelta(days=1))
    verify_chain(issued.certificate, authority.certificate, NOW + dt.timedelta(hours=23))
    with pytest.raises(VerificationError):
        verify_chain(issued.certificate, authority.certificate, NOW + dt.timedelta(days=1, seconds=1))


def test_a_forwarder_certificate_is_valid_from_a_few_minutes_before_it_is_issued(authority) -> None:
    later = NOW + dt.timedelta(hours=1)
    issued = certificates.issue_forwarder_certificate(authority, CN, now=later)
    assert issued.certificate.not_valid_before_utc == later - certificates.BACKDATE
    verify_chain(issued.certificate, authority.certificate, later - dt.timedelta(minutes=4))


def test_a_certificate_that_would_outlive_the_ca_is_refused(authority) -> None:
    near_the_end = authority.certificate.not_valid_after_utc - dt.timedelta(days=10)
    with pytest.raises(ConfigError, match=r"the CA expires on .*, before this certificate would"):
        certificates.issue_forwarder_certificate(authority, CN, now=near_the_end)


def test_a_certificate_longer_than_a_year_is_refused(authority) -> None:
    with pytest.raises(ConfigError, match="valid for up to 365 days"):
        certificates.issue_forwarder_certificate(authority, CN, now=NOW, validity=dt.timedelta(days=366))


def test_serial_numbers_are_positive_at_most_20_octets_and_distinct(authority) -> None:
    """RFC 5280 4.1.2.2; Roles Anywhere names each session by its certificate's serial."""
    serials = [
        certificates.issue_forwarder_certificate(authority, CN, now=NOW).certificate.serial_number
        for _ in range(20)
    ]
    assert len(set(serials)) == len(serials)
    assert all(0 < s <= certificates.MAX_SERIAL and s.bit_length() <= 159 for s in serials)


def test_the_secret_fields_are_the_certificate_and_an_unencrypted_pkcs8_key(leaf) -> None:
    fields = leaf.secret_fields()
    assert set(fields) == {"certificate", "private_key"}
    assert fields["private_key"].startswith("-----BEGIN PRIVATE KEY-----\n")  # PKCS#8, not SEC1
    key = serialization.load_pem_private_key(fields["private_key"].encode(), password=None)
    certificate = x509.load_pem_x509_certificate(fields["certificate"].encode())
    assert certificate == leaf.certificate
    assert key.public_key() == certificate.public_key()


def test_expiry_is_read_back_from_the_pem(authority) -> None:
    issued = certificates.issue_forwarder_certificate(authority, CN, now=NOW, validity=dt.timedelta(days=7))
    expiry = certificates.certificate_expiry(certificates.certificate_pem(issued.certificate))
    assert expiry == NOW + dt.timedelta(days=7)
    assert expiry.tzinfo is not None


def test_expiry_of_text_that_is_not_a_certificate_is_bad_input() -> None:
    with pytest.raises(ConfigError, match="is not a PEM certificate"):
        certificates.certificate_expiry("-----BEGIN PRIVATE KEY-----\n")


# -- names and serials -------------------------------------------------------------------------


def test_a_forwarder_is_named_after_its_endpoint_and_region() -> None:
    """The module's role trusts "<peer_name>.forwarder.<peer_region>" (roles_anywhere.tftest.hcl)."""
    assert certificates.forwarder_common_name("ddbrep-us", "us-east-1") == "ddbrep-us.forwarder.us-east-1"


@pytest.mark.parametrize(
    ("name", "region"), [("9ddbrep", "us-east-1"), ("a" * 33, "us-east-1"), ("ddbrep", "US-EAST-1")]
)
def test_a_name_or_region_the_module_would_not_take_is_refused(name, region) -> None:
    with pytest.raises(ConfigError):
        certificates.forwarder_common_name(name, region)


def test_the_longest_forwarder_name_fits_a_common_name() -> None:
    name = certificates.forwarder_common_name("a" * 32, "ap-southeast-7")
    assert len(name) <= certificates.MAX_COMMON_NAME


@given(st.integers(min_value=1, max_value=certificates.MAX_SERIAL))
def test_a_serial_printed_in_hex_reads_back(serial: int) -> None:
    assert certificates.parse_serial(certificates.serial_hex(serial)) == serial


def test_a_serial_as_openssl_prints_it_with_colons_is_read() -> None:
    assert certificates.parse_serial("3a:0f") == 0x3A0F
    assert certificates.parse_serial("0x3A0F") == 0x3A0F


@pytest.mark.parametrize("text", ["0", "", "xyz", "-1", "1" + "0" * 40])
def test_what_is_not_a_serial_is_refused(text) -> None:
    with pytest.raises(ConfigError, match="is not a serial number"):
        certificates.parse_serial(text)


# -- the CRL -----------------------------------------------------------------------------------


def test_a_crl_lists_the_revoked_serials_and_verifies_with_the_ca_key(authority) -> None:
    revoked = [Revocation(0x3A0F, NOW), Revocation(0x1234, NOW - dt.timedelta(days=1))]
    crl = certificates.build_crl(authority, revoked, number=7, now=NOW)
    assert crl.is_signature_valid(authority.certificate.public_key())
    assert crl.issuer == authority.certificate.subject
    assert {entry.serial_number for entry in crl} == {0x3A0F, 0x1234}
    assert crl.get_revoked_certificate_by_serial_number(0x1234).revocation_date_utc == NOW - dt.timedelta(
        days=1
    )
    assert certificates.crl_number(crl) == 7
    assert isinstance(crl.signature_hash_algorithm, hashes.SHA256)


def test_a_crl_does_not_verify_with_another_cas_key(authority) -> None:
    other = certificates.create_authority("another CA", now=NOW)
    crl = certificates.build_crl(other, [Revocation(1, NOW)], number=1, now=NOW)
    assert not crl.is_signature_valid(authority.certificate.public_key())


def test_a_crl_is_written_in_pem(authority) -> None:
    """ImportCrl: "In order to be properly imported, a CRL must be in PEM format"."""
    text = certificates.crl_pem(certificates.build_crl(authority, [], number=1, now=NOW))
    assert text.startswith("-----BEGIN X509 CRL-----\n")
    assert x509.load_pem_x509_crl(text.encode()).next_update_utc == authority.certificate.not_valid_after_utc


# -- the operator's folder ---------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_ca_key_is_written_for_its_owner_only(tmp_path, authority) -> None:
    certificate, key = certificates.write_authority(authority, tmp_path / "ca")
    assert _mode(key) == 0o600
    assert _mode(certificate) == 0o644
    loaded = certificates.load_authority(tmp_path / "ca")
    assert loaded.certificate == authority.certificate


def test_the_ca_key_is_its_owners_only_whatever_the_umask(tmp_path, authority) -> None:
    previous = os.umask(0)
    try:
        _, key = certificates.write_authority(authority, tmp_path / "ca")
    finally:
        os.umask(previous)
    assert _mode(key) == 0o600


def test_an_existing_ca_is_never_overwritten(tmp_path, authority) -> None:
    certificates.write_authority(authority, tmp_path)
    before = (tmp_path / "ca.key").read_bytes()
    with pytest.raises(ConfigError, match="already holds a CA"):
        certificates.write_authority(certificates.create_authority("new", now=NOW), tmp_path)
    assert (tmp_path / "ca.key").read_bytes() == before


def test_a_ca_key_that_is_not_the_certificates_is_refused(tmp_path, authority) -> None:
    certificates.write_authority(authority, tmp_path)
    other = certificates.create_authority("other", now=NOW)
    (tmp_path / "ca.key").write_text(certificates.private_key_pem(other.private_key))
    with pytest.raises(ConfigError, match="is not the private key of"):
        certificates.load_authority(tmp_path)


def test_an_issued_key_is_written_for_its_owner_only(tmp_path, authority, leaf) -> None:
    certificates.write_authority(authority, tmp_path)
    files = certificates.write_issued(leaf, tmp_path)
    assert files.certificate.name == f"{CN}.{leaf.serial_hex}.pem"
    assert _mode(files.private_key) == 0o600
    assert x509.load_pem_x509_certificate(files.certificate.read_bytes()) == leaf.certificate


def test_revoking_adds_the_serial_to_the_crl_and_keeps_earlier_ones(tmp_path, authority) -> None:
    certificates.write_authority(authority, tmp_path)
    first = certificates.revoke(tmp_path, 0x3A0F, now=NOW)
    second = certificates.revoke(tmp_path, 0x1234, now=NOW + dt.timedelta(hours=1))
    assert (first.number, second.number) == (1, 2)
    crl = certificates.read_crl(tmp_path / "crl.pem", authority)
    assert {entry.serial_number: entry.revocation_date_utc for entry in crl} == {
        0x3A0F: NOW,
        0x1234: NOW + dt.timedelta(hours=1),
    }
    assert certificates.crl_number(crl) == 2


def test_revoking_a_revoked_serial_changes_nothing(tmp_path, authority) -> None:
    certificates.write_authority(authority, tmp_path)
    certificates.revoke(tmp_path, 0x3A0F, now=NOW)
    before = (tmp_path / "crl.pem").read_bytes()
    again = certificates.revoke(tmp_path, 0x3A0F, now=NOW + dt.timedelta(days=1))
    assert not again.added and again.number == 1
    assert (tmp_path / "crl.pem").read_bytes() == before


def test_a_crl_file_of_another_ca_is_refused(tmp_path, authority) -> None:
    certificates.write_authority(authority, tmp_path)
    other = certificates.create_authority("other", now=NOW)
    (tmp_path / "crl.pem").write_text(
        certificates.crl_pem(certificates.build_crl(other, [], number=1, now=NOW))
    )
    with pytest.raises(ConfigError, match="is not a CRL of this CA"):
        certificates.revoke(tmp_path, 1, now=NOW)
