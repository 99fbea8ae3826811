"""credentials and rotate: keys of the receiver's peer-writer user in the sender's secret, probed
end to end through the receiver's inbox and replicator; never printed."""

from __future__ import annotations

from replication_ops.errors import EXIT_BAD_INPUT, EXIT_DIFFERENCES, EXIT_OK

from .fakes import InboxReplicators


def test_credentials_puts_each_peer_writer_key_into_the_other_sides_secret(deployment, run):
    with InboxReplicators([deployment.cn, deployment.us]) as replicators:
        result = run("credentials", *deployment.args(), "--json")
    assert result.code == EXIT_OK, result.err
    # cn's forwarder writes into the us inbox: it holds a key of the us peer-writer user.
    assert deployment.cn.secret()["aws_access_key_id"] in deployment.us.peer_writer_keys()
    assert deployment.us.secret()["aws_access_key_id"] in deployment.cn.peer_writer_keys()
    assert replicators.probes == 2
    assert [link["link"] for link in result.json["links"]] == ["cn-to-us", "us-to-cn"]
    assert all(link["probe_seconds"] is not None for link in result.json["links"])


def test_credentials_never_prints_the_key(deployment, run):
    with InboxReplicators([deployment.cn, deployment.us]):
        result = run("credentials", *deployment.args())
    for side in (deployment.cn, deployment.us):
        secret = side.secret()
        assert secret["aws_secret_access_key"] not in result.out + result.err
        assert secret["aws_access_key_id"] not in result.out + result.err


def test_credentials_one_direction_leaves_the_other_alone(deployment, run):
    with InboxReplicators([deployment.us]):
        result = run("credentials", *deployment.args(), "--direction", "cn-to-us")
    assert result.code == EXIT_OK, result.err
    assert deployment.cn.secret() is not None
    assert deployment.us.secret() is None
    assert deployment.cn.peer_writer_keys() == []


def test_credentials_again_keeps_the_installed_key(deployment, run):
    with InboxReplicators([deployment.cn, deployment.us]):
        run("credentials", *deployment.args())
        first = deployment.cn.secret()
        again = run("credentials", *deployment.args(), "--json")
    assert again.code == EXIT_OK
    assert deployment.cn.secret() == first
    assert len(deployment.us.peer_writer_keys()) == 1
    assert {link["action"] for link in again.json["links"]} == {"already-installed"}


def test_a_probe_no_replicator_records_fails_with_advice(deployment, run):
    result = run("credentials", *deployment.args(), "--direction", "cn-to-us", "--probe-timeout", "0.5")
    assert result.code == EXIT_DIFFERENCES
    assert "no replicator recorded it" in result.err
    assert "status" in result.err


def test_a_missing_secret_is_bad_input_and_creates_no_key(deployment, run):
    deployment.cn.client("secretsmanager").delete_secret(
        SecretId=deployment.cn.outputs["peer_credentials_secret_arn"], ForceDeleteWithoutRecovery=True
    )
    result = run("credentials", *deployment.args(), "--direction", "cn-to-us")
    assert result.code == EXIT_BAD_INPUT
    assert "does not exist" in result.err
    assert deployment.us.peer_writer_keys() == []


def test_rotate_replaces_the_key_and_deletes_the_old_one(deployment, run):
    with InboxReplicators([deployment.cn, deployment.us]):
        run("credentials", *deployment.args(), "--direction", "cn-to-us")
        old = deployment.cn.secret()["aws_access_key_id"]
        result = run(
            "rotate", *deployment.args(), "--direction", "cn-to-us", "--adoption-wait", "0", "--json"
        )
    assert result.code == EXIT_OK, result.err
    new = deployment.cn.secret()["aws_access_key_id"]
    assert new != old
    assert deployment.us.peer_writer_keys() == [new]
    assert result.json["links"][0]["probe_seconds"] is not None


def test_rotate_refuses_two_keys_when_the_secret_holds_neither(deployment, run):
    iam = deployment.us.client("iam")
    user = deployment.us.outputs["peer_writer_user_name"]
    iam.create_access_key(UserName=user)
    iam.create_access_key(UserName=user)
    deployment.cn.client("secretsmanager").put_secret_value(
        SecretId=deployment.cn.outputs["peer_credentials_secret_arn"],
        SecretString='{"aws_access_key_id": "AKIAOTHER0000000", "aws_secret_access_key": "x"}',
    )
    result = run("rotate", *deployment.args(), "--direction", "cn-to-us", "--adoption-wait", "0")
    assert result.code == EXIT_BAD_INPUT
    assert "secret holds neither" in result.err
    assert len(deployment.us.peer_writer_keys()) == 2


def test_rotate_refuses_a_stray_second_key_unless_asked_to_delete_it(deployment, run):
    with InboxReplicators([deployment.us]):
        run("credentials", *deployment.args(), "--direction", "cn-to-us")
        deployment.us.client("iam").create_access_key(UserName=deployment.us.outputs["peer_writer_user_name"])
        refused = run("rotate", *deployment.args(), "--direction", "cn-to-us", "--adoption-wait", "0")
        done = run(
            "rotate", *deployment.args(), "--direction", "cn-to-us", "--adoption-wait", "0", "--delete-unused"
        )
    assert refused.code == EXIT_BAD_INPUT
    assert "--delete-unused" in refused.err
    assert done.code == EXIT_OK, done.err
    assert deployment.us.peer_writer_keys() == [deployment.cn.secret()["aws_access_key_id"]]


def test_rotate_without_an_installed_key_says_to_run_credentials(deployment, run):
    result = run("rotate", *deployment.args(), "--direction", "us-to-cn", "--adoption-wait", "0")
    assert result.code == EXIT_BAD_INPUT
    assert "run `credentials` first" in result.err


def test_ca_dir_is_not_used_for_an_access_key_receiver_and_the_report_says_so(deployment, run, tmp_path):
    with InboxReplicators([deployment.us]):
        result = run(
            "credentials", *deployment.args(), "--direction", "cn-to-us", "--ca-dir", str(tmp_path / "ca")
        )
    assert result.code == EXIT_OK, result.err
    assert "aws_access_key_id" in deployment.cn.secret()
    assert "--ca-dir not used: the receiver is in access_key mode" in result.out
