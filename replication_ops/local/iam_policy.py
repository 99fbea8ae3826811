"""IAM policy evaluation for the local partitions: identity-based policies of one account.

What AWS documents as its evaluation logic for a request within one account, without resource-based
policies, permissions boundaries, session policies or organization policies
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
an explicit ``Deny`` in any applicable statement denies; otherwise an ``Allow`` allows; otherwise the
request is implicitly denied. A statement applies when its ``Action``/``NotAction``, its
``Resource``/``NotResource`` and every one of its conditions match.

``Action`` and ``Resource`` matching (``*`` wildcards) is moto's own (``IAMPolicyStatement``, the
element matching moto uses in server mode; it reads ``*`` only, as a regular expression, so ``?``
and a ``+`` in a name are not matched as IAM would: the module's policies use neither). Conditions
are evaluated here: moto's statement check knows only ``StringEquals`` and treats an unmet condition
of an ``Allow`` statement as a deny.
The operators supported are those of the IAM reference
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html):
the String, Arn, IpAddress, Bool and Null families, each with ``...IfExists``. Any other operator
raises ``UnsupportedPolicy``: the caller denies the request and says why, never guesses.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Any

from moto.iam.access_control import IAMPolicyStatement


class UnsupportedPolicy(ValueError):
    """A policy uses an element or condition operator this evaluator does not know."""


class Effect(Enum):
    ALLOW = "allowed"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "no identity-based policy allows"


@dataclass(frozen=True)
class NamedPolicy:
    """One policy document of a principal: inline (``role/x:policy``) or managed, by a readable name."""

    name: str
    document: Mapping[str, Any]

    @classmethod
    def parse(cls, name: str, document: str | Mapping[str, Any]) -> NamedPolicy:
        return cls(name, parsed_document(document) if isinstance(document, str) else document)

    def statements(self) -> list[dict[str, Any]]:
        statements = self.document.get("Statement", [])
        return list(statements) if isinstance(statements, list) else [statements]


@lru_cache(maxsize=1024)
def parsed_document(document: str) -> Mapping[str, Any]:
    """A policy document's JSON, parsed once per distinct text: the enforcement reads every policy of
    the caller on every request, and the text is what IAM holds, so a changed policy is a new key
    and is read at once. Callers must not change the mapping (the evaluation only reads it)."""
    return json.loads(document)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Decision:
    effect: Effect
    policy: str | None = None  # the policy whose statement decided (allow or deny)
    statement: str | None = None  # its Sid, or "#<index>"

    @property
    def allowed(self) -> bool:
        return self.effect is Effect.ALLOW


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _wildcard(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """``*`` any run of characters, ``?`` one character (StringLike, ArnLike); nothing else is special."""
    escaped = pattern.replace("[", "[[]")
    if ignore_case:
        return fnmatch.fnmatchcase(value.lower(), escaped.lower())
    return fnmatch.fnmatchcase(value, escaped)


def _string_equals(policy: str, value: str) -> bool:
    return policy == value


def _string_equals_ignore_case(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


def _string_like(policy: str, value: str) -> bool:
    return _wildcard(policy, value)


def _arn_like(policy: str, value: str) -> bool:
    # ARN operators compare the six colon-separated parts one by one, wildcards within each part.
    policy_parts, value_parts = policy.split(":", 5), value.split(":", 5)
    return len(policy_parts) == len(value_parts) == 6 and all(
        _wildcard(p, v) for p, v in zip(policy_parts, value_parts, strict=True)
    )


def _ip_address(policy: str, value: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(policy, strict=False)
    except ValueError:
        return False


def _bool(policy: str, value: str) -> bool:
    return str(policy).lower() == str(value).lower()


# operator -> (match one policy value against one context value, negated)
_OPERATORS: dict[str, tuple[Any, bool]] = {
    "StringEquals": (_string_equals, False),
    "StringNotEquals": (_string_equals, True),
    "StringEqualsIgnoreCase": (_string_equals_ignore_case, False),
    "StringNotEqualsIgnoreCase": (_string_equals_ignore_case, True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
    "IpAddress": (_ip_address, False),
    "NotIpAddress": (_ip_address, True),
    "Bool": (_bool, False),
}


def _condition_holds(
    operator: str, key: str, policy_values: Any, context: Mapping[str, Sequence[str]]
) -> bool:
    present = key.lower() in context
    values = list(context.get(key.lower(), ()))
    if operator == "Null":
        # "true": the key must be absent; "false": present.
        return all(str(v).lower() == ("false" if present else "true") for v in _as_list(policy_values))
    base, if_exists = (
        (operator[: -len("IfExists")], True) if operator.endswith("IfExists") else (operator, False)
    )
    if base not in _OPERATORS:
        raise UnsupportedPolicy(f"condition operator {operator} is not supported by the local evaluator")
    match, negated = _OPERATORS[base]
    if not present:
        # A missing key: true with ...IfExists and for the negated operators, false otherwise.
        return if_exists or negated
    wanted = [str(v) for v in _as_list(policy_values)]
    matched = any(match(p, v) for p in wanted for v in values)
    return not matched if negated else matched


def conditions_hold(
    conditions: Mapping[str, Mapping[str, Any]] | None, context: Mapping[str, Sequence[str]]
) -> bool:
    """Every operator block and every key in it must hold (AND); a key's values are ORed."""
    for operator, block in (conditions or {}).items():
        if operator.startswith(("ForAnyValue:", "ForAllValues:")):
            raise UnsupportedPolicy(f"set operator {operator} is not supported by the local evaluator")
        for key, policy_values in block.items():
            if not _condition_holds(operator, key, policy_values, context):
                return False
    return True


def _element_matches(statement: IAMPolicyStatement, positive: str, negative: str, value: str) -> bool:
    if positive in statement._statement:
        return statement._check_element_matches(positive, value)
    if negative in statement._statement:
        return not statement._check_element_matches(negative, value)
    raise UnsupportedPolicy(f"a statement has neither {positive} nor {negative}")


def statement_applies(
    statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, Sequence[str]]
) -> bool:
    """Action, resource and conditions of one identity-policy statement all match the request."""
    if "Principal" in statement or "NotPrincipal" in statement:
        raise UnsupportedPolicy("an identity-based policy statement cannot name a principal")
    matcher = IAMPolicyStatement(dict(statement))
    return (
        _element_matches(matcher, "Action", "NotAction", action)
        and _element_matches(matcher, "Resource", "NotResource", resource)
        and conditions_hold(statement.get("Condition"), context)
    )


def normalize_context(context: Mapping[str, str | Sequence[str]]) -> dict[str, list[str]]:
    """Condition keys are case-insensitive; every value a list."""
    return {key.lower(): [value] if isinstance(value, str) else list(value) for key, value in context.items()}


def evaluate(
    policies: Iterable[NamedPolicy], action: str, resource: str, context: Mapping[str, str | Sequence[str]]
) -> Decision:
    """The decision for one action on one resource (explicit deny, then allow, else implicit deny)."""
    keys = normalize_context(context)
    allowed: Decision | None = None
    for policy in policies:
        for index, statement in enumerate(policy.statements()):
            if not statement_applies(statement, action, resource, keys):
                continue
            label = str(statement.get("Sid") or f"#{index}")
            effect = statement.get("Effect")
            if effect == "Deny":
                return Decision(Effect.EXPLICIT_DENY, policy.name, label)
            if effect == "Allow" and allowed is None:
                allowed = Decision(Effect.ALLOW, policy.name, label)
            elif effect not in ("Allow", "Deny"):
                raise UnsupportedPolicy(f"statement {label} of {policy.name} has Effect {effect!r}")
    return allowed or Decision(Effect.IMPLICIT_DENY)


def trust_allows(
    trust_policy: Mapping[str, Any],
    service: str,
    action: str = "sts:AssumeRole",
    context: Mapping[str, str | Sequence[str]] | None = None,
) -> bool:
    """Whether a role's trust policy lets an AWS service principal (``lambda.amazonaws.com``) perform
    ``action`` on it, its conditions evaluated against ``context`` (the keys the service sets, for
    example Roles Anywhere's ``aws:SourceArn`` and ``aws:PrincipalTag/x509Subject/CN``).

    Only the ``Service`` principal form is considered: the local environment assumes roles on behalf
    of AWS services only. An explicit deny for the service wins.
    """
    keys = normalize_context(context or {})
    policy = NamedPolicy("trust", trust_policy)
    allowed = False
    for statement in policy.statements():
        principals = statement.get("Principal", {})
        services = _as_list(principals.get("Service", [])) if isinstance(principals, dict) else []
        names_service = principals == "*" or service in services
        actions = _as_list(statement.get("Action", []))
        if not names_service or not any(_wildcard(a, action, ignore_case=True) for a in actions):
            continue
        if not conditions_hold(statement.get("Condition"), keys):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed
