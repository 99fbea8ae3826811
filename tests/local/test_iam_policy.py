"""The local IAM evaluator against AWS's documented policy evaluation logic (identity-based policies of
one account: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html)
and condition operators (reference_policies_elements_condition_operators.html)."""

from __future__ import annotations

import pytest

from replication_ops.local.iam_policy import Effect, NamedPolicy, UnsupportedPolicy, evaluate, trust_allows

TABLE = "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/user-profiles"
TOMBSTONES = "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/ddbrep-cn-tombstones"


def policy(*statements: dict) -> list[NamedPolicy]:
    return [NamedPolicy("role/test:inline", {"Version": "2012-10-17", "Statement": list(statements)})]


def allow(action: str | list[str], resource: str | list[str], **extra: object) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def test_an_allow_on_the_action_and_resource_allows() -> None:
    decision = evaluate(policy(allow("dynamodb:UpdateItem", TABLE)), "dynamodb:UpdateItem", TABLE, {})
    assert decision.effect is Effect.ALLOW and decision.policy == "role/test:inline"


def test_a_policy_lacking_the_action_denies() -> None:
    granted = policy(allow(["dynamodb:PutItem", "dynamodb:DeleteItem"], TABLE))
    assert evaluate(granted, "dynamodb:UpdateItem", TABLE, {}).effect is Effect.IMPLICIT_DENY


def test_a_policy_lacking_the_resource_denies() -> None:
    granted = policy(allow("dynamodb:DeleteItem", TABLE))
    assert evaluate(granted, "dynamodb:DeleteItem", TOMBSTONES, {}).effect is Effect.IMPLICIT_DENY


def test_a_wildcard_resource_matches_within_its_pattern_only() -> None:
    granted = policy(allow("dynamodb:GetRecords", f"{TABLE}/stream/*"))
    assert evaluate(granted, "dynamodb:GetRecords", f"{TABLE}/stream/2026-01-01T00:00:00.000", {}).allowed
    assert not evaluate(
        granted, "dynamodb:GetRecords", f"{TOMBSTONES}/stream/2026-01-01T00:00:00.000", {}
    ).allowed


def test_an_explicit_deny_wins_over_any_allow() -> None:
    granted = policy(
        allow("dynamodb:*", "*"),
        {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": TABLE, "Sid": "NoDeletes"},
    )
    decision = evaluate(granted, "dynamodb:DeleteItem", TABLE, {})
    assert decision.effect is Effect.EXPLICIT_DENY and decision.statement == "NoDeletes"
    assert evaluate(granted, "dynamodb:PutItem", TABLE, {}).allowed


def test_not_action_and_not_resource_match_everything_else() -> None:
    granted = policy({"Effect": "Allow", "NotAction": "iam:*", "NotResource": TOMBSTONES})
    assert evaluate(granted, "dynamodb:PutItem", TABLE, {}).allowed
    assert not evaluate(granted, "dynamodb:PutItem", TOMBSTONES, {}).allowed
    assert not evaluate(granted, "iam:CreateUser", TABLE, {}).allowed


SOURCE_IP = {"IpAddress": {"aws:SourceIp": ["203.0.113.10/32", "198.51.100.0/24"]}}


@pytest.mark.parametrize(
    ("address", "allowed"),
    [("203.0.113.10", True), ("198.51.100.77", True), ("203.0.113.11", False), ("127.0.0.1", False)],
)
def test_a_source_ip_condition_allows_only_its_cidrs(address: str, allowed: bool) -> None:
    granted = policy(allow("kinesis:PutRecords", "*", Condition=SOURCE_IP))
    decision = evaluate(granted, "kinesis:PutRecords", "*", {"aws:SourceIp": address})
    assert decision.allowed is allowed


def test_an_unmet_condition_on_one_allow_leaves_another_allow_standing() -> None:
    # A statement whose condition fails does not apply: it neither allows nor denies.
    granted = policy(allow("kinesis:PutRecords", "*", Condition=SOURCE_IP), allow("kinesis:PutRecords", "*"))
    assert evaluate(granted, "kinesis:PutRecords", "*", {"aws:SourceIp": "127.0.0.1"}).allowed


def test_a_condition_key_missing_from_the_request_fails_a_positive_operator() -> None:
    via = {"StringEquals": {"kms:ViaService": "kinesis.cn-north-1.amazonaws.com.cn"}}
    granted = policy(allow("kms:Decrypt", "*", Condition=via))
    assert not evaluate(granted, "kms:Decrypt", "*", {}).allowed
    assert evaluate(
        granted, "kms:Decrypt", "*", {"kms:ViaService": "kinesis.cn-north-1.amazonaws.com.cn"}
    ).allowed
    # The partition's DNS suffix is part of the value: the commercial endpoint is another service.
    assert not evaluate(
        granted, "kms:Decrypt", "*", {"kms:ViaService": "kinesis.cn-north-1.amazonaws.com"}
    ).allowed


def test_if_exists_and_negated_operators_hold_for_a_missing_key() -> None:
    granted = policy(
        allow("s3:GetObject", "*", Condition={"StringEqualsIfExists": {"aws:RequestedRegion": "cn-north-1"}}),
    )
    assert evaluate(granted, "s3:GetObject", "*", {}).allowed
    assert not evaluate(granted, "s3:GetObject", "*", {"aws:RequestedRegion": "us-east-1"}).allowed
    negated = policy(allow("s3:GetObject", "*", Condition={"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))
    assert evaluate(negated, "s3:GetObject", "*", {}).allowed
    assert not evaluate(negated, "s3:GetObject", "*", {"aws:SourceIp": "10.1.2.3"}).allowed


def test_condition_keys_are_case_insensitive() -> None:
    granted = policy(
        allow("kinesis:PutRecord", "*", Condition={"IpAddress": {"AWS:SourceIP": "127.0.0.1/32"}})
    )
    assert evaluate(granted, "kinesis:PutRecord", "*", {"aws:SourceIp": "127.0.0.1"}).allowed


def test_an_unknown_operator_is_refused_not_guessed() -> None:
    granted = policy(allow("kinesis:PutRecord", "*", Condition={"DateLessThan": {"aws:CurrentTime": "2030"}}))
    with pytest.raises(UnsupportedPolicy, match="DateLessThan"):
        evaluate(granted, "kinesis:PutRecord", "*", {})


LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def test_a_trust_policy_lets_only_the_named_service_assume_the_role() -> None:
    assert trust_allows(LAMBDA_TRUST, "lambda.amazonaws.com")
    assert not trust_allows(LAMBDA_TRUST, "ec2.amazonaws.com")


def test_a_policy_text_is_parsed_once_and_a_changed_text_is_read_at_once() -> None:
    import json

    from replication_ops.local.iam_policy import parsed_document

    granted = json.dumps({"Version": "2012-10-17", "Statement": [allow("dynamodb:PutItem", TABLE)]})
    first, again = NamedPolicy.parse("role/r:p", granted), NamedPolicy.parse("role/r:p", granted)
    assert first.document is again.document  # one parse for the same text
    assert evaluate([again], "dynamodb:PutItem", TABLE, {}).allowed
    changed = json.dumps({"Version": "2012-10-17", "Statement": [allow("dynamodb:GetItem", TABLE)]})
    assert not evaluate([NamedPolicy.parse("role/r:p", changed)], "dynamodb:PutItem", TABLE, {}).allowed
    assert evaluate([NamedPolicy.parse("role/r:p", granted)], "dynamodb:PutItem", TABLE, {}).allowed
    assert parsed_document.cache_info().maxsize  # bounded
