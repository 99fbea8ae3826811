"""The local pair's CA for roles_anywhere mode: made once as `ddb-replication ca init` makes it, then
reused; what `credentials` and `rotate` are given for each mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from replication_ops import certificates
from replication_ops.errors import ConfigError
from replication_ops.local.config import LOCAL_PAIR_CA_NAME
from replication_ops.local.credentials import credentials_arguments, ensure_pair_ca


def test_the_pair_ca_is_made_in_the_ca_init_layout_with_its_key_kept_private(tmp_path: Path) -> None:
    folder = tmp_path / "pair-ca"
    pem = ensure_pair_ca(folder)
    authority = certificates.load_authority(folder)  # what `ca issue` and `credentials --ca-dir` read
    assert x509.load_pem_x509_certificate(pem.encode()) == authority.certificate
    assert authority.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    name = authority.certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert name == LOCAL_PAIR_CA_NAME
    assert (folder / certificates.CA_KEY_FILE).stat().st_mode & 0o077 == 0


def test_the_pair_ca_is_reused_by_later_runs(tmp_path: Path) -> None:
    """Both trust anchors and every issued certificate depend on the CA: a second run keeps it."""
    first = ensure_pair_ca(tmp_path)
    key = (tmp_path / certificates.CA_KEY_FILE).read_bytes()
    assert ensure_pair_ca(tmp_path) == first
    assert (tmp_path / certificates.CA_KEY_FILE).read_bytes() == key


def test_half_a_ca_is_not_replaced(tmp_path: Path) -> None:
    ensure_pair_ca(tmp_path)
    (tmp_path / certificates.CA_KEY_FILE).unlink()
    with pytest.raises(ConfigError, match="half a CA"):
        ensure_pair_ca(tmp_path)


def test_roles_anywhere_mode_gives_the_cli_the_ca_folder_and_access_key_mode_nothing(tmp_path: Path) -> None:
    assert credentials_arguments(tmp_path) == ["--ca-dir", str(tmp_path)]
    assert credentials_arguments(None) == []
