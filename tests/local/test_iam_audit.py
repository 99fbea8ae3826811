"""The checks that keep policies and code in step (``iam_audit``), on recorded calls of the shape the
enforcing partitions write, and on the module's own justification comments."""

from __future__ import annotations

import re

from replication_ops.local.iam_audit import (
    MODULE_DIR,
    Call,
    denials,
    justifications,
    principal_kind,
    replay,
    unused_grants,
    without_action,
)
from replication_ops.local.iam_policy import NamedPolicy

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ddbrep-us-replicator"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/ddbrep-us-replicator/ddbrep-us-replicator"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/user-profiles"
TOMBSTONES = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/ddbrep-us-tombstones"
POLICIES = {
    ROLE: [
        NamedPolicy(
            "role/ddbrep-us-replicator:replicator",
            {
                "Statement": [
                    {
                        "Sid": "ApplyChanges",
                        "Effect": "Allow",
                        "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                        "Resource": TABLE,
                    },
                    {
                        "Sid": "RecordTombstones",
                        "Effect": "Allow",
                        "Action": ["dynamodb:PutItem", "dynamodb:ConditionCheckItem"],
                        "Resource": TOMBSTONES,
                    },
                ]
            },
        )
    ]
}


def call(action: str, resource: str, decision: str = "allowed", principal: str = SESSION) -> Call:
    return Call(principal, action, resource, decision, "us-east-1", "127.0.0.1", count=3)


RUN = [
    call("dynamodb:PutItem", TABLE),
    call("dynamodb:UpdateItem", TABLE),
    call("dynamodb:DeleteItem", TABLE),
    call("dynamodb:PutItem", TOMBSTONES),
    call("dynamodb:ConditionCheckItem", TOMBSTONES),
]


def test_the_module_principals_are_told_apart_by_their_names() -> None:
    assert principal_kind(SESSION) == "replicator"
    assert (
        principal_kind(f"arn:aws-cn:iam::{ACCOUNT}:user/replication/ddbrep-cn-peer-writer") == "peer-writer"
    )
    assert principal_kind(f"arn:aws:sts::{ACCOUNT}:assumed-role/ddbrep-us-forwarder/s") == "forwarder"
    assert principal_kind(f"arn:aws:iam::{ACCOUNT}:user/local/local-operator") is None


def test_denials_are_the_calls_a_policy_refused() -> None:
    refused = call("dynamodb:GetItem", TABLE, "no identity-based policy allows")
    unknown_key = call("dynamodb:GetItem", TABLE, "UnrecognizedClientException")
    assert denials([*RUN, refused, unknown_key]) == [refused]


def test_every_grant_used_leaves_nothing_unused() -> None:
    assert unused_grants(RUN, POLICIES, justified={}) == []


def test_a_grant_no_call_used_is_reported_with_its_statement_and_resource() -> None:
    run = [c for c in RUN if c.action != "dynamodb:DeleteItem"]
    [unused] = unused_grants(run, POLICIES, justified={})
    assert unused.describe() == f"replicator ApplyChanges: dynamodb:DeleteItem on {TABLE}"


def test_a_grant_used_on_another_resource_is_still_unused() -> None:
    run = [*RUN, call("dynamodb:ConditionCheckItem", TABLE, "no identity-based policy allows")]
    run = [c for c in run if c.resource != TOMBSTONES or c.action != "dynamodb:ConditionCheckItem"]
    assert [g.describe() for g in unused_grants(run, POLICIES, justified={})] == [
        f"replicator RecordTombstones: dynamodb:ConditionCheckItem on {TOMBSTONES}"
    ]


def test_a_justified_grant_may_stay_unused() -> None:
    run = [c for c in RUN if c.action != "dynamodb:DeleteItem"]
    assert unused_grants(run, POLICIES, justified={"ApplyChanges": {"dynamodb:DeleteItem": "a race"}}) == []


def test_removing_any_used_action_makes_the_denial_check_fail() -> None:
    """The mutation check: each action taken out of the policy turns recorded calls into denials."""
    for removed in (
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
    ):
        mutated = {ROLE: without_action(POLICIES[ROLE], removed)}
        newly_denied = denials(replay(RUN, mutated))
        assert newly_denied, removed
        assert {c.action for c in newly_denied} == {removed}
        assert all(
            c.principal == SESSION and c.decision == "no identity-based policy allows" for c in newly_denied
        )


def test_the_unchanged_policies_deny_nothing_recorded() -> None:
    assert replay(RUN, POLICIES) == []


def test_every_justification_in_the_module_names_a_granted_action_of_its_statement() -> None:
    """A ``Not exercised locally`` comment must sit above a statement that grants what it names."""
    text = "\n".join(path.read_text() for path in sorted(MODULE_DIR.glob("*.tf")))
    found = justifications()
    assert {"WriteLogs", "ReadInbox", "UseTableKey"} <= set(found)
    for sid, actions in found.items():
        statement = re.search(rf'Sid\s*=\s*"{sid}"(.*?)\}}', text, re.DOTALL)
        assert statement, sid
        block = statement.group(1)
        for action, why in actions.items():
            assert action in block, f"{sid} does not grant {action}"
            assert len(why) > 10, f"{sid} {action}: say why"


def test_the_replicators_old_grants_are_not_justified() -> None:
    """Issue 10's unused grants must be gone or explained, not silently kept."""
    found = justifications()
    assert "dynamodb:GetItem" not in found.get("ApplyChanges", {})
    assert "dynamodb:GetItem" not in found.get("RecordTombstones", {})
    assert "kinesis:DescribeStreamSummary" not in found.get("WriteInbox", {})
    # GetItem is granted once: to the replicator's residency merge, which the demo exercises (it
    # reads this side's excluded attributes of the tables that have some, docs/residency.md).
    text = (MODULE_DIR / "iam.tf").read_text()
    assert len(re.findall(r'"dynamodb:GetItem"', text)) == 1
    assert re.search(
        r'Sid\s*=\s*"ReadKeptAttributes"\s*Effect\s*=\s*"Allow"\s*Action\s*=\s*"dynamodb:GetItem"', text
    )


# The peer-writer role of roles_anywhere mode lives under a path (modules/replication_endpoint,
# path = "/replication/"); a session's ARN names the role without it.
PATHED_ROLE = f"arn:aws-cn:iam::{ACCOUNT}:role/replication/ddbrep-cn-peer-writer"
PATHED_SESSION = f"arn:aws-cn:sts::{ACCOUNT}:assumed-role/ddbrep-cn-peer-writer/forwarder-session"
INBOX = f"arn:aws-cn:kinesis:cn-north-1:{ACCOUNT}:stream/ddbrep-cn-inbox"
PATHED_POLICIES = {
    PATHED_ROLE: [
        NamedPolicy(
            "role/ddbrep-cn-peer-writer:write-inbox",
            {
                "Statement": [
                    {
                        "Sid": "WriteInbox",
                        "Effect": "Allow",
                        "Action": "kinesis:PutRecords",
                        "Resource": INBOX,
                    }
                ]
            },
        )
    ]
}


def test_a_session_of_a_role_with_a_path_uses_that_roles_grants() -> None:
    put = Call(PATHED_SESSION, "kinesis:PutRecords", INBOX, "allowed", "cn-north-1", "127.0.0.1", count=1)
    assert unused_grants([put], PATHED_POLICIES, justified={}) == []


def test_the_mutation_replay_decides_a_pathed_roles_session_again() -> None:
    put = Call(PATHED_SESSION, "kinesis:PutRecords", INBOX, "allowed", "cn-north-1", "127.0.0.1", count=1)
    mutated = {PATHED_ROLE: without_action(PATHED_POLICIES[PATHED_ROLE], "kinesis:PutRecords")}
    assert [c.action for c in denials(replay([put], mutated))] == ["kinesis:PutRecords"]


def test_principal_arn_of_a_role_session_is_its_roles_arn_with_the_path() -> None:
    """IAM User Guide, "AWS global condition context keys", aws:PrincipalArn: "For IAM roles, the
    request context returns the ARN of the role" (the role's ARN includes its path)."""
    from replication_ops.local.iam_enforcement import principal_arn_key

    other = f"arn:aws-cn:iam::{ACCOUNT}:role/replication/ddbrep-cn-replicator"
    assert principal_arn_key(PATHED_SESSION, [other, PATHED_ROLE]) == PATHED_ROLE
    assert principal_arn_key(SESSION, []) == ROLE  # no known role: no path to give
    assert principal_arn_key(PATHED_ROLE, []) == PATHED_ROLE  # not a session: its own ARN
