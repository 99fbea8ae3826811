"""``ddb-replication ca init|issue|revoke``: the operator's CA folder from the command line. Bad input
is exit 2 with one line naming the cause and the fix, no traceback, and nothing written."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from replication_ops import certificates
from replication_ops.errors import EXIT_BAD_INPUT, EXIT_OK

CN = "ddbrep-us.forwarder.us-east-1"


def _one_error_line(result, action: str) -> str:
    assert result.code == EXIT_BAD_INPUT, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith(f"ddb-replication ca {action}: error: ")
    assert "Traceback" not in result.err
    return lines[0]


@pytest.fixture
def ca_dir(run, tmp_path: Path) -> Path:
    folder = tmp_path / "pair-ca"
    assert run("ca", "init", "--dir", str(folder)).code == EXIT_OK
    return folder


def test_init_creates_the_ca_certificate_and_a_private_key_for_the_owner_only(run, tmp_path) -> None:
    folder = tmp_path / "pair-ca"
    result = run("ca", "init", "--dir", str(folder), "--name", "example-pair-ca")
    assert result.code == EXIT_OK
    assert "roles_anywhere_ca_certificate of both roots" in result.out
    assert stat.S_IMODE((folder / "ca.key").stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "example-pair-ca"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_init_refuses_a_folder_that_holds_a_ca(run, ca_dir) -> None:
    key = (ca_dir / "ca.key").read_bytes()
    line = _one_error_line(run("ca", "init", "--dir", str(ca_dir)), "init")
    assert "already holds a CA" in line and "give another --dir" in line
    assert (ca_dir / "ca.key").read_bytes() == key


def test_issue_writes_a_certificate_of_the_ca_for_the_forwarder(run, ca_dir) -> None:
    result = run("ca", "issue", "--dir", str(ca_dir), "--cn", CN, "--days", "7", "--json")
    assert result.code == EXIT_OK
    document = json.loads(result.out)
    certificate = x509.load_pem_x509_certificate(Path(document["certificate"]).read_bytes())
    ca = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    certificate.verify_directly_issued_by(ca)
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == CN
    assert document["serial"] == certificates.serial_hex(certificate.serial_number)
    assert document["not_after"] == certificate.not_valid_after_utc.isoformat()
    assert stat.S_IMODE(Path(document["private_key"]).stat().st_mode) == 0o600


@pytest.mark.parametrize("cn", ["ddbrep-us.forwardr.us-east-1", "ddbrep-us", "ddbrep-us.forwarder.US"])
def test_issue_refuses_a_name_that_is_not_a_forwarders(run, ca_dir, cn) -> None:
    line = _one_error_line(run("ca", "issue", "--dir", str(ca_dir), "--cn", cn), "issue")
    assert f"argument --cn: {cn!r} is not a forwarder's certificate name: give NAME.forwarder.REGION" in line
    assert not (ca_dir / "issued").exists()


@pytest.mark.parametrize("days", ["0", "366", "-inf", "a week"])
def test_issue_refuses_a_validity_outside_one_day_to_a_year(run, ca_dir, days) -> None:
    line = _one_error_line(run("ca", "issue", "--dir", str(ca_dir), "--cn", CN, "--days", days), "issue")
    assert f"argument --days: {days!r}" in line


def test_issue_without_a_ca_says_how_to_create_one(run, tmp_path) -> None:
    line = _one_error_line(run("ca", "issue", "--dir", str(tmp_path), "--cn", CN), "issue")
    assert f"{tmp_path} holds no CA" in line and "ddb-replication ca init --dir" in line


def test_revoke_writes_a_crl_listing_the_serial(run, ca_dir) -> None:
    issued = json.loads(run("ca", "issue", "--dir", str(ca_dir), "--cn", CN, "--json").out)
    result = run("ca", "revoke", "--dir", str(ca_dir), "--serial", issued["serial"])
    assert result.code == EXIT_OK
    assert (
        "put it into both trust anchors" in result.out
        and f"ddb-replication crl --ca-dir {ca_dir}" in result.out
    )
    crl = x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    assert crl.is_signature_valid(ca.public_key())
    assert [certificates.serial_hex(entry.serial_number) for entry in crl] == [issued["serial"]]


def _issue(run, ca_dir) -> str:
    return json.loads(run("ca", "issue", "--dir", str(ca_dir), "--cn", CN, "--json").out)["serial"]


def test_a_later_revocation_says_to_put_the_new_crl_into_the_trust_anchors(run, ca_dir) -> None:
    run("ca", "revoke", "--dir", str(ca_dir), "--serial", _issue(run, ca_dir))
    result = run("ca", "revoke", "--dir", str(ca_dir), "--serial", _issue(run, ca_dir))
    assert result.code == EXIT_OK
    assert "CRL number 2" in result.out and f"ddb-replication crl --ca-dir {ca_dir}" in result.out


def test_revoke_of_a_revoked_serial_says_so_and_succeeds(run, ca_dir) -> None:
    serial = _issue(run, ca_dir)
    run("ca", "revoke", "--dir", str(ca_dir), "--serial", serial)
    result = run(
        "ca",
        "revoke",
        "--dir",
        str(ca_dir),
        "--serial",
        ":".join(serial[i : i + 2] for i in range(0, len(serial), 2)).lower(),
    )
    assert result.code == EXIT_OK
    assert "is revoked already" in result.out


def test_revoke_refuses_a_serial_this_ca_never_issued_naming_those_it_did(run, ca_dir) -> None:
    issued = _issue(run, ca_dir)
    line = _one_error_line(run("ca", "revoke", "--dir", str(ca_dir), "--serial", "3A0F"), "revoke")
    assert f"serial 3A0F was not issued by the CA in {ca_dir}: it issued {issued}" in line
    assert not (ca_dir / "crl.pem").exists()


def test_revoke_of_a_ca_that_issued_nothing_says_where_it_records_what_it_issues(run, ca_dir) -> None:
    line = _one_error_line(run("ca", "revoke", "--dir", str(ca_dir), "--serial", "3A0F"), "revoke")
    assert "it has issued none" in line and str(ca_dir / "issued") in line


def test_init_in_a_virtual_file_system_says_why_in_one_line(run) -> None:
    line = _one_error_line(run("ca", "init", "--dir", "/proc/ddb-replication-ca"), "init")
    assert "no file can be created in /proc: it is on a virtual file system" in line


@pytest.mark.parametrize("serial", ["0", "not-hex", ""])
def test_revoke_refuses_what_is_not_a_serial(run, ca_dir, serial) -> None:
    line = _one_error_line(run("ca", "revoke", "--dir", str(ca_dir), "--serial", serial), "revoke")
    assert "is not a serial number" in line
    assert not (ca_dir / "crl.pem").exists()


def test_a_ca_folder_that_does_not_exist_is_named_with_how_to_make_one(run, tmp_path) -> None:
    folder = tmp_path / "nope"
    line = _one_error_line(run("ca", "revoke", "--dir", str(folder), "--serial", "1"), "revoke")
    assert f"{folder} holds no CA (ca.pem and ca.key missing): create one with" in line
    assert not folder.exists()


def test_a_file_given_as_the_ca_folder_is_refused(run, tmp_path) -> None:
    file = tmp_path / "ca.pem"
    file.write_text("x")
    line = _one_error_line(run("ca", "issue", "--dir", str(file), "--cn", CN), "issue")
    assert f"argument --dir: {file} is a file, not a folder" in line


def test_ca_takes_no_side_flags(run, tmp_path) -> None:
    """The CA is the operator's, in no account: no --cn-*/--us-* flag means anything to it."""
    result = run("ca", "init", "--dir", str(tmp_path / "ca"), "--cn-profile", "china")
    assert result.code == EXIT_BAD_INPUT
    assert "unrecognized argument" in result.err
    assert not (tmp_path / "ca").exists()


@pytest.mark.parametrize("action", ["init", "issue", "revoke"])
def test_every_action_has_help_with_examples(run, action) -> None:
    result = run("ca", action, "--help")
    assert result.code == EXIT_OK
    assert "ddb-replication ca init --dir" in result.out


@pytest.mark.parametrize("lost", ["ca.key", "ca.pem"])
def test_half_a_ca_is_not_offered_a_new_one_in_its_folder(run, ca_dir, lost) -> None:
    (ca_dir / lost).unlink()
    line = _one_error_line(run("ca", "issue", "--dir", str(ca_dir), "--cn", CN), "issue")
    assert f"{ca_dir} holds only half a CA ({lost} missing): restore {lost}" in line
    assert "ca init" not in line


def test_a_mistyped_flag_of_a_ca_action_gets_the_nearest_one(run, ca_dir) -> None:
    line = _one_error_line(run("ca", "issue", "--dir", str(ca_dir), "--cn", CN, "--dayz", "3"), "issue")
    assert "unrecognized arguments --dayz 3 (did you mean --days?)" in line
    assert "(see `ddb-replication ca issue --help`)" in line


def test_ca_takes_quiet_as_every_subcommand_does(run, ca_dir) -> None:
    assert run("ca", "issue", "--dir", str(ca_dir), "--cn", CN, "--quiet").code == EXIT_OK


@pytest.mark.parametrize("action", ["init", "issue", "revoke"])
def test_every_action_lists_only_the_exit_codes_a_folder_operation_can_end_with(run, action) -> None:
    """No side and no AWS call: not 1 (differences), not 3 (AWS access)."""
    help_text = run("ca", action, "--help").out
    listed = help_text.split("exit codes:", 1)[1].splitlines()
    codes = {line.split()[0] for line in listed if line[:3].strip().isdigit()}
    assert codes == {"0", "2", "130", "141"}


def test_an_interrupted_action_exits_130_in_one_line(run, ca_dir, monkeypatch) -> None:
    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(certificates, "issue_forwarder_certificate", interrupted)
    result = run("ca", "issue", "--dir", str(ca_dir), "--cn", CN)
    assert result.code == 130
    assert result.err.strip() == "ddb-replication ca issue: interrupted"
    assert not (ca_dir / "issued").exists() or not any((ca_dir / "issued").iterdir())
