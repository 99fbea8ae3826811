"""IAM Roles Anywhere as emulated in a local partition (``rolesanywhere``), driven through the real
client library ``iam-rolesanywhere-session`` over the partition's TLS port, IAM enforced.

What AWS documents (IAM Roles Anywhere user guide: "The IAM Roles Anywhere authentication process",
"... authentication signing process", "... trust model", "IAM Roles Anywhere CreateSession API",
https://docs.aws.amazon.com/rolesanywhere/latest/userguide/): CreateSession answers HTTP 201 with a
``credentialSet``; it refuses with ``AccessDeniedException`` (HTTP 403) a request whose signature does
not verify with its certificate, a certificate without a valid chain to the trust anchor's CA
(another CA, expired), a revoked one (an enabled CRL of the trust anchor), a disabled trust anchor or
profile, a role the profile does not list and a role whose trust policy does not allow the
``rolesanywhere.amazonaws.com`` principal under the conditions it sets (``aws:SourceArn`` the trust
anchor, ``aws:PrincipalTag/x509Subject/CN``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.httpsession import URLLib3Session
from iam_rolesanywhere_session import (
    CredentialsRetrievalError,
    IAMRolesAnywhereSession,
    IAMRolesAnywhereSigner,
)

from replication_ops.local import tls
from replication_ops.local.aws import SideClients
from replication_ops.local.config import BUILD_DIR, SIDES
from replication_ops.local.partitions import LocalPartition
from tests.local.pki import (
    CertificateAuthority,
    Issued,
    make_anchor,
    make_profile,
    make_role,
    trust_policy,
)

REGION = "cn-north-1"  # the aws-cn partition: ARNs arn:aws-cn:..., the same service principal
ACCOUNT = "123456789012"
CN = "pair.forwarder.us-east-1"  # the contract's "<name>.forwarder.<region of that forwarder>"
CA_BUNDLE = str(tls.ca_path(BUILD_DIR / "tls"))


@pytest.fixture(scope="module")
def partition(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPartition]:
    started = LocalPartition(SIDES[REGION], tmp_path_factory.mktemp("ra") / "moto.log", enforce_iam=True)
    started.start()
    admin = SideClients(started.endpoint_url, REGION)
    for stream in ("inbox", "elsewhere"):
        admin.kinesis.create_stream(StreamName=stream, ShardCount=1)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority("pair CA")


@dataclass
class Setup:
    """One trust anchor, profile and peer-writer role in the partition (fresh names per test)."""

    partition: LocalPartition
    anchor: dict[str, Any]
    profile: dict[str, Any]
    role_arn: str

    @property
    def rolesanywhere(self) -> Any:
        return SideClients(self.partition.endpoint_url, REGION).rolesanywhere

    def session(self, issued: Issued, *, role_arn: str | None = None, chain: str | None = None) -> Any:
        """A boto3 session from the client library (CreateSession on first use of its credentials)."""
        return IAMRolesAnywhereSession(
            profile_arn=self.profile["profileArn"],
            role_arn=role_arn or self.role_arn,
            trust_anchor_arn=self.anchor["trustAnchorArn"],
            certificate=issued.certificate_pem.encode(),
            private_key=issued.key_pem.encode(),
            certificate_chain=chain.encode() if chain else None,
            region=REGION,
            endpoint=self.partition.rolesanywhere_endpoint,
            verify=CA_BUNDLE,
        ).get_session()

    def credentials(self, issued: Issued, **kwargs: Any) -> Any:
        return self.session(issued, **kwargs).get_credentials().get_frozen_credentials()


@pytest.fixture
def setup(partition: LocalPartition, ca: CertificateAuthority) -> Setup:
    anchor = make_anchor(partition, REGION, ca)
    role_arn = make_role(partition, REGION, trust_policy(anchor["trustAnchorArn"], CN))
    profile = make_profile(partition, REGION, role_arn)
    return Setup(partition, anchor, profile, role_arn)


def put(session: Any, partition: LocalPartition, stream: str) -> dict[str, Any]:
    kinesis = session.client("kinesis", endpoint_url=partition.endpoint_url, region_name=REGION)
    return kinesis.put_records(StreamName=stream, Records=[{"Data": b"x", "PartitionKey": "k"}])


def refused(setup: Setup, issued: Issued, **kwargs: Any) -> CredentialsRetrievalError:
    with pytest.raises(CredentialsRetrievalError) as caught:
        setup.credentials(issued, **kwargs)
    return caught.value


# -- granted -----------------------------------------------------------------------------------------


def test_a_certificate_of_the_trust_anchors_ca_gets_credentials_that_write_to_the_inbox(
    setup: Setup, ca: CertificateAuthority
) -> None:
    session = setup.session(ca.issue(CN))
    assert put(session, setup.partition, "inbox")["FailedRecordCount"] == 0


def test_the_roles_policy_decides_what_the_credentials_may_do(setup: Setup, ca: CertificateAuthority) -> None:
    session = setup.session(ca.issue(CN))
    with pytest.raises(ClientError) as caught:
        put(session, setup.partition, "elsewhere")
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    assert ":assumed-role/" in caught.value.response["Error"]["Message"]


def test_a_session_of_a_role_under_a_path_is_authorized_by_that_roles_policy(
    partition: LocalPartition, ca: CertificateAuthority
) -> None:
    """The module makes the peer-writer role under the path /replication/; its session's ARN is
    ``assumed-role/<name>/<session>`` without the path (the IAM user guide's "IAM identifiers", IAM
    ARNs, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html), and the
    enforcement finds the role's own policy by that name."""
    iam = SideClients(partition.endpoint_url, REGION).iam
    anchor = make_anchor(partition, REGION, ca)
    role = iam.create_role(
        RoleName="ddbrep-cn-peer-writer-path",
        Path="/replication/",
        AssumeRolePolicyDocument=json.dumps(trust_policy(anchor["trustAnchorArn"], CN)),
    )["Role"]
    statement = {
        "Effect": "Allow",
        "Action": "kinesis:PutRecords",
        "Resource": f"arn:aws-cn:kinesis:{REGION}:{ACCOUNT}:stream/inbox",
    }
    iam.put_role_policy(
        RoleName=role["RoleName"],
        PolicyName="write-inbox",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
    )
    assert role["Arn"].endswith(":role/replication/ddbrep-cn-peer-writer-path")
    setup = Setup(partition, anchor, make_profile(partition, REGION, role["Arn"]), role["Arn"])
    session = setup.session(ca.issue(CN))
    assert put(session, partition, "inbox")["FailedRecordCount"] == 0
    with pytest.raises(ClientError) as caught:
        put(session, partition, "elsewhere")
    assert ":assumed-role/ddbrep-cn-peer-writer-path/" in caught.value.response["Error"]["Message"]


def test_an_rsa_certificate_signs_with_aws4_x509_rsa_sha256(setup: Setup, ca: CertificateAuthority) -> None:
    assert setup.credentials(ca.issue(CN, key_type="rsa")).access_key.startswith("ASIA")


def test_an_intermediate_ca_in_the_chain_header_links_the_certificate_to_the_anchor(
    setup: Setup, ca: CertificateAuthority
) -> None:
    intermediate = CertificateAuthority("pair intermediate", parent=ca)
    assert setup.credentials(intermediate.issue(CN), chain=intermediate.pem).access_key.startswith("ASIA")


def test_the_session_lasts_the_profiles_duration_when_it_is_shorter_than_the_one_asked(
    setup: Setup, ca: CertificateAuthority
) -> None:
    # The library asks for 3600 s; the profile allows 900 s.
    credentials = setup.session(ca.issue(CN)).get_credentials()
    credentials.get_frozen_credentials()
    remaining = credentials._expiry_time - datetime.now(UTC)  # botocore keeps the expiry here
    assert timedelta(seconds=800) < remaining <= timedelta(seconds=900)


# -- refused: the certificate --------------------------------------------------------------------------


def test_a_certificate_from_another_ca_is_refused(setup: Setup) -> None:
    assert refused(setup, CertificateAuthority("another CA").issue(CN)).status_code == 403


def test_an_intermediate_not_sent_in_the_chain_header_leaves_no_path_to_the_anchor(
    setup: Setup, ca: CertificateAuthority
) -> None:
    intermediate = CertificateAuthority("pair intermediate", parent=ca)
    assert refused(setup, intermediate.issue(CN)).status_code == 403


def test_an_expired_certificate_is_refused(setup: Setup, ca: CertificateAuthority) -> None:
    now = datetime.now(UTC)
    expired = ca.issue(CN, not_before=now - timedelta(days=2), not_after=now - timedelta(minutes=1))
    assert refused(setup, expired).status_code == 403


def test_a_certificate_not_yet_valid_is_refused(setup: Setup, ca: CertificateAuthority) -> None:
    now = datetime.now(UTC)
    early = ca.issue(CN, not_before=now + timedelta(hours=1), not_after=now + timedelta(days=1))
    assert refused(setup, early).status_code == 403


def test_a_certificate_revoked_by_an_enabled_crl_of_the_trust_anchor_is_refused(
    setup: Setup, ca: CertificateAuthority
) -> None:
    issued = ca.issue(CN)
    setup.rolesanywhere.import_crl(
        name="pair",
        crlData=ca.crl(issued.certificate).encode(),
        trustAnchorArn=setup.anchor["trustAnchorArn"],
        enabled=True,
    )
    assert refused(setup, issued).status_code == 403


def test_a_disabled_crl_revokes_nothing(setup: Setup, ca: CertificateAuthority) -> None:
    issued = ca.issue(CN)
    crl = setup.rolesanywhere.import_crl(
        name="pair",
        crlData=ca.crl(issued.certificate).encode(),
        trustAnchorArn=setup.anchor["trustAnchorArn"],
        enabled=True,
    )["crl"]
    setup.rolesanywhere.disable_crl(crlId=crl["crlId"])
    assert setup.credentials(issued).access_key.startswith("ASIA")


def test_a_tampered_request_fails_its_signature(setup: Setup, ca: CertificateAuthority) -> None:
    """Signed by the library's own signer, then one byte of the body changed: 403
    AccessDeniedException in the REST JSON error shape."""
    issued = ca.issue(CN)
    body = {
        "durationSeconds": 900,
        "profileArn": setup.profile["profileArn"],
        "roleArn": setup.role_arn,
        "trustAnchorArn": setup.anchor["trustAnchorArn"],
    }
    url = f"https://{setup.partition.rolesanywhere_endpoint}/sessions"
    request = AWSRequest(method="POST", url=url, data=json.dumps(body))
    IAMRolesAnywhereSigner(issued.certificate_pem.encode(), issued.key_pem.encode(), region=REGION).add_auth(
        request
    )
    request.data = json.dumps({**body, "durationSeconds": 901})
    answer = URLLib3Session(verify=CA_BUNDLE).send(request.prepare())
    assert (answer.status_code, answer.headers["x-amzn-ErrorType"]) == (403, "AccessDeniedException")


def test_the_untampered_request_of_the_same_signer_is_accepted(
    setup: Setup, ca: CertificateAuthority
) -> None:
    """The control of the test above: the same request, unchanged, gets 201 and a credential set."""
    issued = ca.issue(CN)
    url = f"https://{setup.partition.rolesanywhere_endpoint}/sessions"
    body = {
        "profileArn": setup.profile["profileArn"],
        "roleArn": setup.role_arn,
        "trustAnchorArn": setup.anchor["trustAnchorArn"],
    }
    request = AWSRequest(method="POST", url=url, data=json.dumps(body))
    IAMRolesAnywhereSigner(issued.certificate_pem.encode(), issued.key_pem.encode(), region=REGION).add_auth(
        request
    )
    answer = URLLib3Session(verify=CA_BUNDLE).send(request.prepare())
    document = json.loads(answer.content)
    assert answer.status_code == 201
    assert document["credentialSet"][0]["roleArn"] == setup.role_arn
    assert document["credentialSet"][0]["sourceIdentity"] == CN
    assert document["subjectArn"].startswith(f"arn:aws-cn:rolesanywhere:{REGION}:{ACCOUNT}:subject/")


# -- refused: the trust anchor, the profile, the role ----------------------------------------------------


def test_a_role_trusting_another_common_name_is_refused(
    partition: LocalPartition, setup: Setup, ca: CertificateAuthority
) -> None:
    trust = trust_policy(setup.anchor["trustAnchorArn"], "pair.forwarder.elsewhere")
    other = make_role(partition, REGION, trust)
    setup.rolesanywhere.update_profile(profileId=setup.profile["profileId"], roleArns=[setup.role_arn, other])
    assert refused(setup, ca.issue(CN), role_arn=other).status_code == 403


def test_a_role_trusting_another_trust_anchor_is_refused(
    partition: LocalPartition, setup: Setup, ca: CertificateAuthority
) -> None:
    other_anchor = make_anchor(partition, REGION, ca)  # the same CA: only aws:SourceArn differs
    other = make_role(partition, REGION, trust_policy(other_anchor["trustAnchorArn"], CN))
    setup.rolesanywhere.update_profile(profileId=setup.profile["profileId"], roleArns=[setup.role_arn, other])
    assert refused(setup, ca.issue(CN), role_arn=other).status_code == 403


def test_a_role_not_in_the_profile_is_refused(
    partition: LocalPartition, setup: Setup, ca: CertificateAuthority
) -> None:
    other = make_role(partition, REGION, trust_policy(setup.anchor["trustAnchorArn"], CN))
    assert refused(setup, ca.issue(CN), role_arn=other).status_code == 403


def test_a_disabled_profile_is_refused(setup: Setup, ca: CertificateAuthority) -> None:
    setup.rolesanywhere.disable_profile(profileId=setup.profile["profileId"])
    assert refused(setup, ca.issue(CN)).status_code == 403


def test_a_disabled_trust_anchor_is_refused(setup: Setup, ca: CertificateAuthority) -> None:
    setup.rolesanywhere.disable_trust_anchor(trustAnchorId=setup.anchor["trustAnchorId"])
    assert refused(setup, ca.issue(CN)).status_code == 403


# -- the control plane ----------------------------------------------------------------------------------


def test_trust_anchors_are_read_updated_enabled_tagged_and_deleted(
    partition: LocalPartition, ca: CertificateAuthority
) -> None:
    client = SideClients(partition.endpoint_url, REGION).rolesanywhere
    anchor = client.create_trust_anchor(
        name="one",
        source={"sourceType": "CERTIFICATE_BUNDLE", "sourceData": {"x509CertificateData": ca.pem}},
        tags=[{"key": "team", "value": "replication"}],
    )["trustAnchor"]
    anchor_id, arn = anchor["trustAnchorId"], anchor["trustAnchorArn"]
    assert arn == f"arn:aws-cn:rolesanywhere:{REGION}:{ACCOUNT}:trust-anchor/{anchor_id}"
    assert anchor["enabled"] is False  # "enabled" is optional and off unless asked
    client.update_trust_anchor(trustAnchorId=anchor_id, name="renamed")
    client.enable_trust_anchor(trustAnchorId=anchor_id)
    client.tag_resource(resourceArn=arn, tags=[{"key": "side", "value": "cn"}])
    client.untag_resource(resourceArn=arn, tagKeys=["team"])
    read = client.get_trust_anchor(trustAnchorId=anchor_id)["trustAnchor"]
    assert (read["name"], read["enabled"]) == ("renamed", True)
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "side", "value": "cn"}]
    client.delete_trust_anchor(trustAnchorId=anchor_id)
    with pytest.raises(ClientError) as caught:
        client.get_trust_anchor(trustAnchorId=anchor_id)
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_a_profile_duration_outside_900_to_43200_seconds_is_a_validation_error(
    partition: LocalPartition,
) -> None:
    # boto3 would refuse 899 itself: the service's own answer is what is tested.
    client = SideClients(partition.endpoint_url, REGION, Config(parameter_validation=False)).rolesanywhere
    with pytest.raises(ClientError) as caught:
        client.create_profile(name="short", roleArns=[], durationSeconds=899)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_crls_are_imported_listed_updated_and_deleted(setup: Setup, ca: CertificateAuthority) -> None:
    client = setup.rolesanywhere
    crl = client.import_crl(
        name="pair", crlData=ca.crl().encode(), trustAnchorArn=setup.anchor["trustAnchorArn"]
    )["crl"]
    assert crl["enabled"] is False
    client.update_crl(crlId=crl["crlId"], name="renamed", crlData=ca.crl(ca.issue(CN).certificate).encode())
    client.enable_crl(crlId=crl["crlId"])
    listed = {c["crlId"]: c for c in client.list_crls()["crls"]}
    assert (listed[crl["crlId"]]["name"], listed[crl["crlId"]]["enabled"]) == ("renamed", True)
    assert listed[crl["crlId"]]["crlData"].startswith(b"-----BEGIN X509 CRL-----")  # a blob, as imported
    client.delete_crl(crlId=crl["crlId"])
    assert crl["crlId"] not in {c["crlId"] for c in client.list_crls()["crls"]}


def test_a_crl_for_an_unknown_trust_anchor_is_not_found(
    partition: LocalPartition, ca: CertificateAuthority
) -> None:
    client = SideClients(partition.endpoint_url, REGION).rolesanywhere
    with pytest.raises(ClientError) as caught:
        client.import_crl(
            name="x",
            crlData=ca.crl().encode(),
            trustAnchorArn=f"arn:aws-cn:rolesanywhere:{REGION}:{ACCOUNT}:trust-anchor/none",
        )
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_control_plane_calls_are_authorized_by_iam(
    partition: LocalPartition, ca: CertificateAuthority
) -> None:
    """A caller whose policies do not allow ``rolesanywhere:CreateTrustAnchor`` is refused (403)."""
    iam = SideClients(partition.endpoint_url, REGION).iam
    iam.create_user(UserName="no-rolesanywhere")
    key = iam.create_access_key(UserName="no-rolesanywhere")["AccessKey"]
    client = boto3.client(
        "rolesanywhere",
        endpoint_url=partition.endpoint_url,
        region_name=REGION,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
    with pytest.raises(ClientError) as caught:
        client.list_trust_anchors()
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


# -- subjects, notification settings and the expiry event ------------------------------------------

PATTERN = (
    Path(__file__).resolve().parents[2]
    / "modules"
    / "replication_endpoint"
    / "certificate_expiry_pattern.json"
)


def test_a_session_is_recorded_in_its_subject_with_the_certificate_presented(
    setup: Setup, ca: CertificateAuthority
) -> None:
    """GetSubject: "the certificate data used in the attempt, and the last time the associated
    identity attempted authentication"."""
    issued = ca.issue(CN)
    setup.credentials(issued)
    client = setup.rolesanywhere
    (summary,) = [s for s in client.list_subjects()["subjects"] if f"CN={CN}" in s["x509Subject"].split(",")]
    subject = client.get_subject(subjectId=summary["subjectId"])["subject"]
    (credential,) = [c for c in subject["credentials"] if c["x509CertificateData"] == issued.certificate_pem]
    assert credential["failed"] is False and credential["seenAt"] <= subject["lastSeenAt"]


def test_a_refused_session_is_recorded_as_failed(setup: Setup) -> None:
    stranger = CertificateAuthority("another CA").issue(CN)
    refused(setup, stranger)
    client = setup.rolesanywhere
    credentials = [
        c
        for s in client.list_subjects()["subjects"]
        for c in client.get_subject(subjectId=s["subjectId"])["subject"]["credentials"]
        if c["x509CertificateData"] == stranger.certificate_pem
    ]
    assert [c["failed"] for c in credentials] == [True]


def test_a_trust_anchor_without_settings_has_awss_default_of_45_days(setup: Setup) -> None:
    """ "IAM Roles Anywhere default notification settings": both events, enabled, 45 days."""
    anchor = setup.rolesanywhere.get_trust_anchor(trustAnchorId=setup.anchor["trustAnchorId"])["trustAnchor"]
    assert {
        (s["event"], s["enabled"], s["threshold"], s["configuredBy"]) for s in anchor["notificationSettings"]
    } == {
        ("CA_CERTIFICATE_EXPIRY", True, 45, "rolesanywhere.amazonaws.com"),
        ("END_ENTITY_CERTIFICATE_EXPIRY", True, 45, "rolesanywhere.amazonaws.com"),
    }


def test_put_notification_settings_replaces_an_events_default(setup: Setup) -> None:
    client = setup.rolesanywhere
    client.put_notification_settings(
        trustAnchorId=setup.anchor["trustAnchorId"],
        notificationSettings=[{"event": "END_ENTITY_CERTIFICATE_EXPIRY", "enabled": True, "threshold": 7}],
    )
    anchor = client.get_trust_anchor(trustAnchorId=setup.anchor["trustAnchorId"])["trustAnchor"]
    assert {(s["event"], s["threshold"], s["configuredBy"]) for s in anchor["notificationSettings"]} == {
        ("CA_CERTIFICATE_EXPIRY", 45, "rolesanywhere.amazonaws.com"),
        ("END_ENTITY_CERTIFICATE_EXPIRY", 7, ACCOUNT),
    }


def test_a_threshold_above_360_days_is_refused(setup: Setup) -> None:
    with pytest.raises(ClientError) as caught:
        setup.rolesanywhere.put_notification_settings(
            trustAnchorId=setup.anchor["trustAnchorId"],
            notificationSettings=[{"event": "CA_CERTIFICATE_EXPIRY", "enabled": True, "threshold": 361}],
        )
    assert caught.value.response["Error"]["Code"] == "ValidationException"


@pytest.fixture
def alarm_queue(setup: Setup) -> Iterator[str]:
    """An SQS queue subscribed to an SNS topic that the module's expiry rule (its documented pattern,
    certificate_expiry_pattern.json) targets, in the partition's default event bus; the trust anchor
    notifies 7 days before an end-entity certificate expires (the module's default)."""
    clients = SideClients(setup.partition.endpoint_url, REGION)
    name = f"expiry-{setup.anchor['trustAnchorId'][:8]}"
    topic = clients.sns.create_topic(Name=name)["TopicArn"]
    queue = clients.sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = clients.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    clients.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["QueueArn"])
    clients.events.put_rule(Name=name, EventPattern=PATTERN.read_text())
    clients.events.put_targets(Rule=name, Targets=[{"Id": "alarm-topic-0", "Arn": topic}])
    clients.rolesanywhere.put_notification_settings(
        trustAnchorId=setup.anchor["trustAnchorId"],
        notificationSettings=[{"event": "END_ENTITY_CERTIFICATE_EXPIRY", "enabled": True, "threshold": 7}],
    )
    try:
        yield queue
    finally:
        clients.events.remove_targets(Rule=name, Ids=["alarm-topic-0"])
        clients.events.delete_rule(Name=name)


def _alarms(setup: Setup, queue: str) -> list[dict[str, Any]]:
    sqs = SideClients(setup.partition.endpoint_url, REGION).sqs
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
        "Messages", []
    )
    return [json.loads(json.loads(m["Body"])["Message"]) for m in messages]


def test_a_certificate_within_the_threshold_reaches_the_alarm_topic_as_the_documented_event(
    setup: Setup, ca: CertificateAuthority, alarm_queue: str
) -> None:
    """monitoring-events, "Intermediate or end-entity certificate expiration event": sent when the
    certificate "satisfies notification evaluation criteria and used in createSession API"."""
    issued = ca.issue(CN, not_after=datetime.now(UTC) + timedelta(days=3, hours=1))
    setup.credentials(issued)
    (event,) = _alarms(setup, alarm_queue)
    assert event["source"] == "aws.rolesanywhere"
    assert event["detail-type"] == "Roles Anywhere Certificate Expiration State Change"
    assert event["region"] == REGION and event["account"] == ACCOUNT
    assert event["detail"] == {
        "certificate-serial-number": format(issued.certificate.serial_number, "X"),
        "days-to-expiry": 3,
        "issuer": issued.certificate.issuer.rfc4514_string(),
    }


def test_a_certificate_outside_the_threshold_raises_no_alarm(
    setup: Setup, ca: CertificateAuthority, alarm_queue: str
) -> None:
    setup.credentials(ca.issue(CN, not_after=datetime.now(UTC) + timedelta(days=8, hours=1)))
    assert _alarms(setup, alarm_queue) == []


def test_the_documented_example_event_matches_the_modules_pattern() -> None:
    """The end-entity example of monitoring-events, verbatim, against the rule's pattern (moto's
    EventBridge matcher)."""
    from moto.events.models import EventPattern

    example = {
        "version": "0",
        "id": "9c95e8e4-96a4-ef3f-b739-b6aa5b193afb",
        "detail-type": "Roles Anywhere Certificate Expiration State Change",
        "source": "aws.rolesanywhere",
        "account": "123456789012",
        "time": "2022-06-10T06:51:08Z",
        "region": "us-west-1",
        "detail": {
            "certificate-serial-number": "00936EACBE07F201DF",
            "days-to-expiry": 3,
            "issuer": "L=Seattle,CN=CA Root v1,ST=Washington,C=US",
        },
    }
    assert EventPattern.load(PATTERN.read_text()).matches_event(example)
