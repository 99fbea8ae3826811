"""credentials and rotate in roles_anywhere mode: the sender's forwarder gets a leaf certificate of the
pair's CA (the operator's --ca-dir) with the CN the receiver's role trusts, in the pair's secret shape
(docs/operations.md), probed end to end the forwarder's way: the engine's PeerSession reads the secret
back and calls CreateSession in the receiver's partition, here the local emulation of IAM Roles
Anywhere (replication_ops/local/rolesanywhere.py, which verifies the chain against the trust anchor's
bundle, the CRLs imported into it and the role's trust conditions).

The sender (cn) is in-process moto; the receiver (us) a moto server process with the emulator, holding
the module's roles_anywhere resources: a trust anchor of the pair's CA, a profile and the peer-writer
role trusting ``peer_writer_certificate_subject``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from cryptography import x509
from iam_rolesanywhere_session import CredentialsRetrievalError, IAMRolesAnywhereSession

from replication_ops import certificates
from replication_ops.errors import EXIT_AWS_ACCESS, EXIT_BAD_INPUT, EXIT_OK
from replication_ops.local import tls
from replication_ops.local.config import BUILD_DIR, SIDES
from replication_ops.local.partitions import LocalPartition
from tests.local.pki import make_profile, make_role, trust_policy

from .fakes import FakeSide, InboxReplicators

RECEIVER_REGION = "us-east-1"
SUBJECT = "ddbrep.forwarder.cn-north-1"  # the cn forwarder's CN, which the us role trusts


@pytest.fixture(scope="module")
def partition(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPartition]:
    started = LocalPartition(SIDES[RECEIVER_REGION], tmp_path_factory.mktemp("us") / "moto.log")
    started.start()
    try:
        yield started
    finally:
        started.stop()


class ServerSide(FakeSide):
    """A side whose resources are in the local partition's moto server."""

    endpoint_url: str = ""

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def _ca(folder: Path) -> Path:
    """A CA made 60 days ago (so that it can issue a leaf dated back into its validity)."""
    made = dt.datetime.now(dt.UTC) - dt.timedelta(days=60)
    certificates.write_authority(certificates.create_authority("pair CA", now=made), folder)
    return folder


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    return _ca(tmp_path / "pair-ca")


@pytest.fixture
def pair(deployment, partition: LocalPartition, ca_dir: Path, tmp_path: Path, monkeypatch) -> Any:
    """The deployment with its us side in the partition, in roles_anywhere mode, trusting ``ca_dir``."""
    requests.post(f"{partition.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tls.ca_path(BUILD_DIR / "tls")))
    us = ServerSide("us", "cn")
    us.endpoint_url = partition.endpoint_url
    us.create()
    ca_pem = (ca_dir / certificates.CA_CERTIFICATE_FILE).read_text()
    anchor = us.client("rolesanywhere").create_trust_anchor(
        name="pair",
        enabled=True,
        source={"sourceType": "CERTIFICATE_BUNDLE", "sourceData": {"x509CertificateData": ca_pem}},
    )["trustAnchor"]["trustAnchorArn"]
    role = make_role(
        partition, RECEIVER_REGION, trust_policy(anchor, SUBJECT), us.outputs["inbox_stream_name"]
    )
    del us.outputs["peer_writer_user_name"]
    us.outputs.update(
        roles_anywhere_trust_anchor_arn=anchor,
        roles_anywhere_profile_arn=make_profile(partition, RECEIVER_REGION, role)["profileArn"],
        peer_writer_role_arn=role,
        peer_writer_certificate_subject=SUBJECT,
    )
    deployment.us = us
    deployment.us_outputs = us.write_outputs(tmp_path)
    # The cn forwarder reaches the us partition's Roles Anywhere where the module told it to.
    lam = deployment.cn.client("lambda")
    name = deployment.cn.outputs["forwarder_function_name"]
    variables = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    lam.update_function_configuration(
        FunctionName=name,
        Environment={
            "Variables": {
                **variables,
                "PEER_ROLESANYWHERE_ENDPOINT": partition.rolesanywhere_endpoint,
                "PEER_ENDPOINT_URL": partition.endpoint_url,
            }
        },
    )
    return deployment


def both_sides(pair: Any, *flags: str) -> list[str]:
    """The arguments naming both roots' outputs, the us side through its endpoint."""
    return [
        "--cn-outputs",
        str(pair.cn_outputs),
        "--us-outputs",
        str(pair.us_outputs),
        "--us-endpoint-url",
        pair.us.endpoint_url,
        "--quiet",
        *flags,
    ]


def cn_to_us(pair: Any, *flags: str) -> list[str]:
    """The arguments of a cn-to-us run."""
    return both_sides(pair, "--direction", "cn-to-us", *flags)


def leaf(secret: dict[str, str]) -> x509.Certificate:
    return x509.load_pem_x509_certificate(secret["certificate"].encode())


def test_credentials_installs_a_leaf_the_receivers_role_trusts_and_probes_it(pair, run, ca_dir) -> None:
    with InboxReplicators([pair.us]) as replicators:
        result = run("credentials", *cn_to_us(pair, "--ca-dir", str(ca_dir), "--json"))
    assert result.code == EXIT_OK, result.err
    secret = pair.cn.secret()
    assert secret is not None
    assert secret["auth"] == "roles_anywhere"
    assert {k: secret[k] for k in ("trust_anchor_arn", "profile_arn", "role_arn")} == {
        "trust_anchor_arn": pair.us.outputs["roles_anywhere_trust_anchor_arn"],
        "profile_arn": pair.us.outputs["roles_anywhere_profile_arn"],
        "role_arn": pair.us.outputs["peer_writer_role_arn"],
    }
    certificate = leaf(secret)
    certificate.verify_directly_issued_by(certificates.load_authority(ca_dir).certificate)
    assert certificate.subject.rfc4514_string() == f"CN={SUBJECT}"
    assert replicators.probes == 1
    (link,) = result.json["links"]
    assert link["mode"] == "roles_anywhere" and link["action"] == "issued"


def test_credentials_never_prints_or_writes_the_leafs_private_key(pair, run, ca_dir) -> None:
    with InboxReplicators([pair.us]):
        result = run("credentials", *cn_to_us(pair, "--ca-dir", str(ca_dir)))
    key = pair.cn.secret()["private_key"]
    body = key.splitlines()[1]
    assert body not in result.out + result.err
    assert not any(body in p.read_text() for p in ca_dir.rglob("*") if p.is_file())


def test_credentials_again_only_probes_the_installed_certificate(pair, run, ca_dir) -> None:
    with InboxReplicators([pair.us]) as replicators:
        run("credentials", *cn_to_us(pair, "--ca-dir", str(ca_dir)))
        first = pair.cn.secret()
        again = run("credentials", *cn_to_us(pair, "--ca-dir", str(ca_dir), "--json"))
    assert again.code == EXIT_OK, again.err
    assert pair.cn.secret() == first
    assert again.json["links"][0]["action"] == "already-installed"
    assert replicators.probes == 2


def test_credentials_replaces_a_certificate_within_the_renewal_margin(pair, run, ca_dir) -> None:
    authority = certificates.load_authority(ca_dir)
    old = certificates.issue_forwarder_certificate(
        authority, SUBJECT, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=25)
    )  # five days left: less than the renewal margin
    arns = {
        "trust_anchor_arn": pair.us.outputs["roles_anywhere_trust_anchor_arn"],
        "profile_arn": pair.us.outputs["roles_anywhere_profile_arn"],
        "role_arn": pair.us.outputs["peer_writer_role_arn"],
    }
    pair.cn.client("secretsmanager").put_secret_value(
        SecretId=pair.cn.outputs["peer_credentials_secret_arn"],
        SecretString=json.dumps({"auth": "roles_anywhere", **old.secret_fields(), **arns}),
    )
    with InboxReplicators([pair.us]):
        result = run("credentials", *cn_to_us(pair, "--ca-dir", str(ca_dir), "--json"))
    assert result.code == EXIT_OK, result.err
    assert result.json["links"][0]["action"] == "issued"
    assert leaf(pair.cn.secret()).serial_number != old.certificate.serial_number


def test_credentials_without_ca_dir_for_a_roles_anywhere_receiver_is_bad_input(pair, run) -> None:
    result = run("credentials", *cn_to_us(pair))
    assert result.code == EXIT_BAD_INPUT
    (line,) = result.err.strip().splitlines()
    assert "roles_anywhere mode" in line and "--ca-dir DIR" in line
    assert pair.cn.secret() is None


def test_a_certificate_of_another_ca_is_refused_by_create_session(pair, run, tmp_path) -> None:
    other = _ca(tmp_path / "other-ca")
    result = run("credentials", *cn_to_us(pair, "--ca-dir", str(other)))
    assert result.code == EXIT_AWS_ACCESS
    assert "refused the certificate" in result.err and "Traceback" not in result.err


def test_rotate_issues_a_new_certificate_and_probes_it(pair, run, ca_dir) -> None:
    with InboxReplicators([pair.us]) as replicators:
        run("credentials", *cn_to_us(pair, "--ca-dir", str(ca_dir)))
        old = leaf(pair.cn.secret())
        result = run("rotate", *cn_to_us(pair, "--ca-dir", str(ca_dir), "--json"))
    assert result.code == EXIT_OK, result.err
    new = leaf(pair.cn.secret())
    assert new.serial_number != old.serial_number
    (link,) = result.json["links"]
    assert link["old_key_id"] == certificates.serial_hex(old.serial_number)
    assert replicators.probes == 2


def test_rotate_puts_the_old_secret_back_when_the_new_certificate_is_refused(
    pair, run, ca_dir, tmp_path
) -> None:
    with InboxReplicators([pair.us]):
        run("credentials", *cn_to_us(pair, "--ca-dir", str(ca_dir)))
    before = pair.cn.secret()
    other = _ca(tmp_path / "other-ca")  # a CA the us trust anchor does not hold
    result = run("rotate", *cn_to_us(pair, "--ca-dir", str(other)))
    assert result.code == EXIT_AWS_ACCESS
    assert pair.cn.secret() == before


@pytest.mark.parametrize("command", ["credentials", "rotate"])
def test_an_unreachable_roles_anywhere_endpoint_is_an_access_error_and_the_old_secret_stays(
    pair, run, ca_dir, command
) -> None:
    """botocore calls CreateSession when the probe first uses the credentials: its transport error
    is the probe's, in one line (exit 3), and the secret is put back."""
    with InboxReplicators([pair.us]):
        run("credentials", *cn_to_us(pair, "--ca-dir", str(ca_dir)))
    before = pair.cn.secret()
    result = run(
        command, *cn_to_us(pair, "--ca-dir", str(ca_dir), "--us-rolesanywhere-endpoint", "localhost:1")
    )
    assert result.code == EXIT_AWS_ACCESS, result.err
    assert "Traceback" not in result.err
    assert "CreateSession at localhost:1 failed" in result.err.strip().splitlines()[-1]
    assert pair.cn.secret() == before


# -- revocation: ddb-replication crl ---------------------------------------------------------------


def crls_of(pair: Any) -> list[dict[str, Any]]:
    """The us trust anchor's CRLs (the emulator keeps earlier tests' anchors; moto's reset spares them)."""
    anchor = pair.us.outputs["roles_anywhere_trust_anchor_arn"]
    return [c for c in pair.us.client("rolesanywhere").list_crls()["crls"] if c["trustAnchorArn"] == anchor]


def _crl_args(pair: Any, ca_dir: Path) -> list[str]:
    return [
        "crl",
        "--ca-dir",
        str(ca_dir),
        *both_sides(pair, "--json"),
    ]


def _create_session(secret: dict[str, str], partition: LocalPartition) -> None:
    """CreateSession as the forwarder calls it (the library, AWS_CA_BUNDLE), for the secret's leaf."""
    IAMRolesAnywhereSession(
        profile_arn=secret["profile_arn"],
        role_arn=secret["role_arn"],
        trust_anchor_arn=secret["trust_anchor_arn"],
        certificate=secret["certificate"].encode(),
        private_key=secret["private_key"].encode(),
        region=RECEIVER_REGION,
        endpoint=partition.rolesanywhere_endpoint,
        verify=os.environ["AWS_CA_BUNDLE"],
    ).get_session().get_credentials().get_frozen_credentials()


def test_after_crl_create_session_refuses_the_revoked_certificate(pair, run, ca_dir, partition) -> None:
    with InboxReplicators([pair.us]):
        run("credentials", *cn_to_us(pair, "--ca-dir", str(ca_dir)))
    secret = pair.cn.secret()
    _create_session(secret, partition)  # accepted before the revocation
    serial = certificates.serial_hex(leaf(secret).serial_number)
    assert run("ca", "revoke", "--dir", str(ca_dir), "--serial", serial).code == EXIT_OK
    result = run(*_crl_args(pair, ca_dir))
    assert result.code == EXIT_OK, result.err
    assert [side["action"] for side in result.json["sides"]] == ["skipped", "imported"]  # cn: access_key
    (crl,) = crls_of(pair)
    assert crl["enabled"]
    with pytest.raises(CredentialsRetrievalError) as refused:
        _create_session(secret, partition)
    assert refused.value.status_code == 403


def test_credentials_replaces_a_certificate_the_ca_folder_revoked(pair, run, ca_dir) -> None:
    with InboxReplicators([pair.us]):
        run("credentials", *cn_to_us(pair, "--ca-dir", str(ca_dir)))
        revoked = leaf(pair.cn.secret()).serial_number
        run("ca", "revoke", "--dir", str(ca_dir), "--serial", certificates.serial_hex(revoked))
        run(*_crl_args(pair, ca_dir))
        result = run("credentials", *cn_to_us(pair, "--ca-dir", str(ca_dir), "--json"))
    assert result.code == EXIT_OK, result.err
    assert result.json["links"][0]["action"] == "issued"
    assert leaf(pair.cn.secret()).serial_number != revoked


def _issued_serial(run: Any, ca_dir: Path) -> str:
    return run("ca", "issue", "--dir", str(ca_dir), "--cn", SUBJECT, "--json").json["serial"]


def test_crl_again_changes_nothing_and_a_new_revocation_updates_it(pair, run, ca_dir) -> None:
    run("ca", "revoke", "--dir", str(ca_dir), "--serial", _issued_serial(run, ca_dir))
    first = run(*_crl_args(pair, ca_dir))
    again = run(*_crl_args(pair, ca_dir))
    run("ca", "revoke", "--dir", str(ca_dir), "--serial", _issued_serial(run, ca_dir))
    later = run(*_crl_args(pair, ca_dir))
    assert [s["action"] for s in first.json["sides"]] == ["skipped", "imported"]
    assert [s["action"] for s in again.json["sides"]] == ["skipped", "unchanged"]
    assert [s["action"] for s in later.json["sides"]] == ["skipped", "updated"]
    (crl,) = crls_of(pair)
    assert crl["crlData"] == (ca_dir / certificates.CRL_FILE).read_bytes()


def test_credentials_puts_the_access_key_back_when_the_certificate_is_refused(pair, run, tmp_path) -> None:
    """A link moving from access_key to roles_anywhere: until the certificate works, the key does."""
    key = {"aws_access_key_id": "AKIAEXAMPLEKEY000001", "aws_secret_access_key": "s" * 40}
    pair.cn.client("secretsmanager").put_secret_value(
        SecretId=pair.cn.outputs["peer_credentials_secret_arn"], SecretString=json.dumps(key)
    )
    other = _ca(tmp_path / "other-ca")  # a CA the us trust anchor does not hold
    result = run("credentials", *cn_to_us(pair, "--ca-dir", str(other)))
    assert result.code == EXIT_AWS_ACCESS
    assert pair.cn.secret() == key
    (line,) = result.err.strip().splitlines()
    assert "previous value was put back" in line


# -- status: the forwarder's certificate as the receiver's Roles Anywhere saw it ------------------


def _status(pair: Any, run: Any) -> dict[str, Any]:
    """status --json; each side's forwarder certificates by side label."""
    result = run("status", *both_sides(pair, "--json"))
    assert "Traceback" not in result.err
    return {side["side"]: side for side in result.json["sides"]}


def _alarm_days(pair: Any, days: int) -> None:
    """The receiver's trust anchor notifies `days` before an end-entity certificate expires (the
    module's roles_anywhere_certificate_expiry_days)."""
    pair.us.client("rolesanywhere").put_notification_settings(
        trustAnchorId=pair.us.outputs["roles_anywhere_trust_anchor_arn"].rsplit("/", 1)[-1],
        notificationSettings=[{"event": "END_ENTITY_CERTIFICATE_EXPIRY", "enabled": True, "threshold": days}],
    )


def test_status_shows_the_certificate_the_receiver_saw_without_reading_the_key(pair, run, ca_dir) -> None:
    _alarm_days(pair, 7)
    with InboxReplicators([pair.us]):
        run("credentials", *cn_to_us(pair, "--ca-dir", str(ca_dir)))
    certificate = leaf(pair.cn.secret())
    sides = _status(pair, run)
    (shown,) = sides["cn"]["certificates"]
    assert shown["link"] == "cn-to-us" and shown["common_name"] == SUBJECT
    assert shown["serial"] == certificates.serial_hex(certificate.serial_number)
    assert shown["not_after"] == certificate.not_valid_after_utc.isoformat()
    assert shown["days_left"] == 29 and shown["threshold_days"] == 7
    assert shown["problems"] == [] and shown["last_presented"]
    assert sides["us"]["certificates"] == []  # us-to-cn is an access_key link


def test_status_flags_a_certificate_within_the_alarm_threshold_and_names_the_fix(
    pair, run, ca_dir, partition
) -> None:
    _alarm_days(pair, 7)
    authority = certificates.load_authority(ca_dir)
    ending = certificates.issue_forwarder_certificate(
        authority, SUBJECT, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=25, hours=1)
    )  # 4 days and 23 hours left
    arns = {
        k: pair.us.outputs[o]
        for k, o in (
            ("trust_anchor_arn", "roles_anywhere_trust_anchor_arn"),
            ("profile_arn", "roles_anywhere_profile_arn"),
            ("role_arn", "peer_writer_role_arn"),
        )
    }
    _create_session({**ending.secret_fields(), **arns}, partition)  # the forwarder presents it
    sides = _status(pair, run)
    (shown,) = sides["cn"]["certificates"]
    assert shown["serial"] == ending.serial_hex and shown["days_left"] == 4
    (problem,) = shown["problems"]
    assert "within the alarm threshold of 7" in problem
    assert "`ddb-replication rotate --ca-dir DIR --direction cn-to-us`" in problem
    assert problem in sides["cn"]["problems"]


def test_without_notification_settings_awss_45_days_flag_a_30_day_certificate(pair, run, ca_dir) -> None:
    """The reason the module sets the threshold: AWS's default (45 days) exceeds a leaf's 30 days."""
    with InboxReplicators([pair.us]):
        run("credentials", *cn_to_us(pair, "--ca-dir", str(ca_dir)))
    (shown,) = _status(pair, run)["cn"]["certificates"]
    assert shown["threshold_days"] == 45 and len(shown["problems"]) == 1


def test_status_flags_the_certificate_in_use_once_a_crl_of_the_trust_anchor_revokes_it(
    pair, run, ca_dir
) -> None:
    _alarm_days(pair, 7)
    with InboxReplicators([pair.us]):
        run("credentials", *cn_to_us(pair, "--ca-dir", str(ca_dir)))
    serial = certificates.serial_hex(leaf(pair.cn.secret()).serial_number)
    assert _status(pair, run)["cn"]["certificates"][0]["problems"] == []
    run("ca", "revoke", "--dir", str(ca_dir), "--serial", serial)
    assert run(*_crl_args(pair, ca_dir)).code == EXIT_OK

    sides = _status(pair, run)

    (shown,) = sides["cn"]["certificates"]
    (problem,) = shown["problems"]
    assert f"the forwarder certificate {serial} is revoked by a CRL in the trust anchor of us" in problem
    assert "`ddb-replication credentials --ca-dir DIR --direction cn-to-us`" in problem
    assert problem in sides["cn"]["problems"]
