"""The forwarder's peer session in roles_anywhere mode (``replication.peer_session``), against IAM
Roles Anywhere as a local partition emulates it (``rolesanywhere``, IAM enforced): the forwarder's own
side is in-process moto (its table, stream and secret), the peer is a moto server process whose role
policy alone allows the writes into its inbox.

The secret's shapes are issue 12's contract (docs/operations.md); the role session is botocore's
refreshable credentials, renewed ``REFRESH_LEAD_SECONDS`` before it expires; a refused certificate
makes the forwarder read its secret again at once, as a rejected key does.
"""

from __future__ import annotations

import datetime as real_datetime
import json
import types
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.credentials
import pytest
from aws_lambda_powertools.utilities import parameters
from iam_rolesanywhere_session import IAMRolesAnywhereSession
from moto import mock_aws

from replication import peer_session
from replication.errors import PeerCredentialsError
from replication.peer_session import PeerSession
from replication.settings import ForwarderSettings
from replication.wire import decode
from replication_ops.local import tls
from replication_ops.local.aws import SideClients
from replication_ops.local.config import BUILD_DIR, SIDES
from replication_ops.local.partitions import LocalPartition
from tests.engine.events import stream_event_record
from tests.engine.harness import LOGICAL, NAMES, TABLE, TOMBSTONES, create_tables, served_table, tables_entry
from tests.engine.lambda_context import FakeLambdaContext
from tests.local.pki import CertificateAuthority, Issued, make_anchor, make_profile, make_role, trust_policy
from tests.table_map import put_table_map

PEER_REGION = "us-east-1"
LOCAL_REGION = "cn-north-1"
CN = "pair.forwarder.cn-north-1"  # "<name>.forwarder.<region of that forwarder>"
SECRET = "replication/peer-credentials"


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPartition]:
    started = LocalPartition(
        SIDES[PEER_REGION], tmp_path_factory.mktemp("peer") / "moto.log", enforce_iam=True
    )
    started.start()
    SideClients(started.endpoint_url, PEER_REGION).kinesis.create_stream(StreamName="inbox", ShardCount=1)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority("pair CA")


@pytest.fixture(scope="module")
def writer(peer: LocalPartition, ca: CertificateAuthority) -> dict[str, str]:
    """The peer's trust anchor, profile (900 s sessions) and peer-writer role: the secret's ARNs."""
    anchor = make_anchor(peer, PEER_REGION, ca)["trustAnchorArn"]
    role = make_role(peer, PEER_REGION, trust_policy(anchor, CN))
    return {
        "trust_anchor_arn": anchor,
        "profile_arn": make_profile(peer, PEER_REGION, role)["profileArn"],
        "role_arn": role,
    }


@pytest.fixture
def local_side(monkeypatch: pytest.MonkeyPatch, peer: LocalPartition) -> Iterator[None]:
    """The forwarder's own partition in process (moto), the peer's Roles Anywhere trusted by TLS."""
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tls.ca_path(BUILD_DIR / "tls")))
    parameters.clear_caches()
    with mock_aws():
        yield
    parameters.clear_caches()


def secret_of(issued: Issued, writer: dict[str, str]) -> str:
    return json.dumps(
        {
            "auth": "roles_anywhere",
            "certificate": issued.certificate_pem,
            "private_key": issued.key_pem,
            **writer,
        }
    )


def put_secret(value: str) -> None:
    secrets = boto3.client("secretsmanager", region_name=LOCAL_REGION)
    try:
        secrets.put_secret_value(SecretId=SECRET, SecretString=value)
    except secrets.exceptions.ResourceNotFoundException:
        secrets.create_secret(Name=SECRET, SecretString=value)


def environment(peer: LocalPartition, stream_arn: str) -> dict[str, str]:
    """The forwarder's environment; its table map put into this side's Parameter Store (in process)."""
    entry = tables_entry(served_table(LOCAL_REGION))
    ssm = boto3.client("ssm", region_name=LOCAL_REGION)
    return {
        "AWS_REGION": LOCAL_REGION,
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        **put_table_map(ssm, {LOGICAL: {**entry, "table_arn": stream_arn.partition("/stream/")[0]}}),
        "TOMBSTONE_TABLE_NAME": TOMBSTONES,
        "PEER_REGION": PEER_REGION,
        "PEER_STREAM_NAME": "inbox",
        "PEER_SECRET_ID": SECRET,
        "PEER_ENDPOINT_URL": peer.endpoint_url,
        "PEER_ROLESANYWHERE_ENDPOINT": peer.rolesanywhere_endpoint,
    }


def session_for(peer: LocalPartition) -> PeerSession:
    settings = ForwarderSettings.from_env(
        environment(peer, f"arn:aws-cn:dynamodb:{LOCAL_REGION}:123456789012:table/{TABLE}/stream/x")
    )
    return PeerSession(settings, boto3.client("secretsmanager", region_name=LOCAL_REGION))


def inbox(peer: LocalPartition) -> list[bytes]:
    kinesis = SideClients(peer.endpoint_url, PEER_REGION).kinesis
    shard = kinesis.list_shards(StreamName="inbox")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName="inbox", ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return [r["Data"] for r in kinesis.get_records(ShardIterator=iterator["ShardIterator"])["Records"]]


def put(session: PeerSession, refresh: bool = False) -> dict[str, Any]:
    return session.kinesis(refresh=refresh).put_records(
        StreamName="inbox", Records=[{"Data": b"probe", "PartitionKey": "k"}]
    )


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Moves botocore's clock for credential expiry (``botocore.credentials._local_now``) ahead."""
    offset = {"seconds": 0.0}

    class Later(real_datetime.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:  # type: ignore[override]
            return real_datetime.datetime.now(tz) + real_datetime.timedelta(seconds=offset["seconds"])

    shim = types.ModuleType("datetime")
    shim.__dict__.update(real_datetime.__dict__)
    shim.datetime = Later  # type: ignore[attr-defined]
    monkeypatch.setattr(botocore.credentials, "datetime", shim)
    return offset


# -- end to end ------------------------------------------------------------------------------------------


def test_the_forwarder_sends_a_stream_batch_into_the_peer_inbox_with_a_roles_anywhere_session(
    monkeypatch: pytest.MonkeyPatch,
    local_side: None,
    peer: LocalPartition,
    ca: CertificateAuthority,
    writer: dict[str, str],
) -> None:
    from tests.engine.test_handlers import load_app

    db = boto3.client("dynamodb", region_name=LOCAL_REGION)
    stream_arn = create_tables(db)
    put_secret(secret_of(ca.issue(CN), writer))
    before = len(inbox(peer))
    forwarder = load_app("forwarder", monkeypatch, environment(peer, stream_arn))
    for i in range(5):
        db.put_item(
            TableName=TABLE,
            Item={
                "pk": {"S": f"user#{i}"},
                "sk": {"S": "profile"},
                NAMES.timestamp: {"N": f"1764200000.{i:06d}"},
                NAMES.origin: {"S": LOCAL_REGION},
            },
        )
    streams = boto3.client("dynamodbstreams", region_name=LOCAL_REGION)
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    event = {"Records": [stream_event_record(r, stream_arn, LOCAL_REGION) for r in records]}

    assert forwarder.handler(event, FakeLambdaContext()) == {"batchItemFailures": []}
    sent = inbox(peer)[before:]
    assert len(sent) == 1 and len(decode(sent[0]).changes) == 5


def test_a_roles_anywhere_session_writes_only_where_the_peer_role_allows(
    local_side: None, peer: LocalPartition, ca: CertificateAuthority, writer: dict[str, str]
) -> None:
    SideClients(peer.endpoint_url, PEER_REGION).kinesis.create_stream(StreamName="elsewhere", ShardCount=1)
    put_secret(secret_of(ca.issue(CN), writer))
    client = session_for(peer).kinesis()
    with pytest.raises(client.exceptions.ClientError) as caught:
        client.put_records(StreamName="elsewhere", Records=[{"Data": b"x", "PartitionKey": "k"}])
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"


# -- refresh ------------------------------------------------------------------------------------------


def test_the_role_session_is_kept_while_far_from_expiry(
    local_side: None, peer: LocalPartition, ca: CertificateAuthority, writer: dict[str, str], clock: Any
) -> None:
    put_secret(secret_of(ca.issue(CN), writer))
    session = session_for(peer)
    put(session)
    first = session.access_key_id
    clock["seconds"] = 900 - peer_session.REFRESH_LEAD_SECONDS - 60  # the profile's sessions: 900 s
    assert put(session)["FailedRecordCount"] == 0
    assert session.access_key_id == first


def test_the_role_session_is_renewed_before_it_expires(
    local_side: None, peer: LocalPartition, ca: CertificateAuthority, writer: dict[str, str], clock: Any
) -> None:
    put_secret(secret_of(ca.issue(CN), writer))
    session = session_for(peer)
    put(session)
    first = session.access_key_id
    clock["seconds"] = 900 - peer_session.MANDATORY_REFRESH_LEAD_SECONDS + 10
    assert put(session)["FailedRecordCount"] == 0
    assert session.access_key_id not in (None, first)


# -- the secret -----------------------------------------------------------------------------------------


def test_a_refused_certificate_makes_the_forwarder_read_its_secret_again_at_once(
    local_side: None, peer: LocalPartition, ca: CertificateAuthority, writer: dict[str, str]
) -> None:
    """The cached secret holds a certificate the peer refuses (another CA); the operator has stored
    a good one meanwhile: the next call reads it at once, within SECRET_MAX_AGE_SECONDS."""
    put_secret(secret_of(CertificateAuthority("retired CA").issue(CN), writer))
    session = session_for(peer)
    with pytest.raises(PeerCredentialsError, match="HTTP 403"):
        session.kinesis()  # refused, re-read (still the refused one), refused again
    put_secret(secret_of(ca.issue(CN), writer))
    assert put(session)["FailedRecordCount"] == 0


def test_a_certificate_refused_after_the_secret_was_read_again_is_a_credentials_error(
    local_side: None, peer: LocalPartition, writer: dict[str, str]
) -> None:
    put_secret(secret_of(CertificateAuthority("another CA").issue(CN), writer))
    with pytest.raises(PeerCredentialsError) as caught:
        session_for(peer).kinesis()
    assert "BEGIN" not in str(caught.value)  # never key material


def test_a_secret_of_neither_shape_names_the_fields_of_both(local_side: None, peer: LocalPartition) -> None:
    put_secret(json.dumps({"auth": "roles_anywhere", "certificate": "-----BEGIN CERTIFICATE-----"}))
    with pytest.raises(PeerCredentialsError) as caught:
        session_for(peer).kinesis()
    message = str(caught.value)
    for field in ("aws_access_key_id", "aws_secret_access_key", "certificate", "private_key", "role_arn"):
        assert field in message
    assert "BEGIN" not in message


def peer_writer_key(peer: LocalPartition, user: str) -> dict[str, str]:
    """An IAM user's key in the peer that may put records into its inbox (access_key mode)."""
    iam = SideClients(peer.endpoint_url, PEER_REGION).iam
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user,
        PolicyName="inbox",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "kinesis:PutRecords",
                        "Resource": "arn:aws:kinesis:*:*:stream/inbox",
                    }
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


def test_access_key_mode_is_chosen_when_the_secret_has_no_auth_field(
    local_side: None, peer: LocalPartition
) -> None:
    key = peer_writer_key(peer, "peer-writer-user")
    put_secret(json.dumps(key))
    session = session_for(peer)
    assert put(session)["FailedRecordCount"] == 0
    assert session.access_key_id == key["aws_access_key_id"]


def test_a_secret_rotated_from_roles_anywhere_to_an_access_key_is_read_at_once(
    local_side: None, peer: LocalPartition, writer: dict[str, str]
) -> None:
    """A refused certificate in the cached secret; the operator has switched the secret to access_key
    mode meanwhile: no redeploy, no wait for SECRET_MAX_AGE_SECONDS."""
    put_secret(secret_of(CertificateAuthority("retired CA").issue(CN), writer))
    session = session_for(peer)
    with pytest.raises(PeerCredentialsError):
        session.kinesis()
    key = peer_writer_key(peer, "peer-writer-rotated")
    put_secret(json.dumps(key))
    assert put(session)["FailedRecordCount"] == 0
    assert session.access_key_id == key["aws_access_key_id"]


# -- settings and endpoints -------------------------------------------------------------------------------


def test_the_roles_anywhere_endpoint_is_read_from_the_forwarders_environment(
    local_side: None, peer: LocalPartition
) -> None:
    stream = f"arn:aws-cn:dynamodb:{LOCAL_REGION}:123456789012:table/{TABLE}/stream/x"
    settings = ForwarderSettings.from_env(environment(peer, stream))
    assert settings.peer_rolesanywhere_endpoint == peer.rolesanywhere_endpoint
    unset = {k: v for k, v in environment(peer, stream).items() if k != "PEER_ROLESANYWHERE_ENDPOINT"}
    assert ForwarderSettings.from_env(unset).peer_rolesanywhere_endpoint is None


@pytest.mark.parametrize(
    ("region", "endpoint"),
    [
        ("cn-north-1", "rolesanywhere.cn-north-1.amazonaws.com.cn"),
        ("cn-northwest-1", "rolesanywhere.cn-northwest-1.amazonaws.com.cn"),
        ("us-east-1", "rolesanywhere.us-east-1.amazonaws.com"),
    ],
)
def test_without_an_endpoint_the_library_calls_the_peer_partitions_public_one(
    ca: CertificateAuthority, region: str, endpoint: str
) -> None:
    """What the forwarder relies on when PEER_ROLESANYWHERE_ENDPOINT is unset: the partition's DNS
    suffix (amazonaws.com.cn in aws-cn; IAM Roles Anywhere endpoints and quotas, AWS General
    Reference)."""
    issued = ca.issue(CN)
    library = IAMRolesAnywhereSession(
        profile_arn="p",
        role_arn="r",
        trust_anchor_arn="t",
        certificate=issued.certificate_pem.encode(),
        private_key=issued.key_pem.encode(),
        region=region,
    )
    assert library.endpoint == endpoint
