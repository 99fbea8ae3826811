"""Policies and code held against each other, from what the enforcing partitions recorded in a run.

Three checks on the calls ``iam_enforcement`` counted, for the principals Terraform made (each
side's forwarder and replicator roles and its peer-writer user):

- ``denials``: every call a policy denied (principal, action, resource): the code calls something its
  policy lacks, which AWS would refuse as well;
- ``unused_grants``: every granted (statement, action, resource) that no allowed call of that kind of
  principal used on either side, unless the module says next to the statement why it is not
  exercised here: a comment ``Not exercised locally: <action>, <action>. <why>`` above its ``Sid``;
- ``replay``: the recorded calls evaluated again against policies with one action taken away, which
  shows that the denial check would catch that policy (the mutation check).

The run's record is written to ``iam.json`` beside the report (``collect``): calls per side and the
policies of each Terraform-made principal, read through IAM as Terraform left them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replication_ops.local.config import REPO_ROOT
from replication_ops.local.iam_enforcement import request_context
from replication_ops.local.iam_policy import Effect, NamedPolicy, evaluate, statement_applies

MODULE_DIR = REPO_ROOT / "modules" / "replication_endpoint"
KINDS = ("forwarder", "replicator", "peer-writer")
POLICY_DENIALS = frozenset({Effect.EXPLICIT_DENY.value, Effect.IMPLICIT_DENY.value})
ACTION = r"[a-z0-9-]+:[A-Za-z0-9]+"
JUSTIFICATION = re.compile(
    rf"Not exercised locally:\s*(?P<actions>{ACTION}(?:\s*,\s*{ACTION})*)\.\s*(?P<why>\S.*)"
)


@dataclass(frozen=True)
class Call:
    """One distinct decision of the run, with how often it was made."""

    principal: str
    action: str
    resource: str
    decision: str
    region: str = ""
    source_ip: str = ""
    via_service: str = ""
    policy: str = ""
    statement: str = ""
    count: int = 1

    @classmethod
    def parse(cls, entry: Mapping[str, Any]) -> Call:
        return cls(**{name: entry[name] for name in cls.__dataclass_fields__ if name in entry})

    @property
    def allowed(self) -> bool:
        return self.decision == Effect.ALLOW.value

    def describe(self) -> str:
        via = f" via {self.via_service}" if self.via_service else ""
        return f"{self.principal} {self.action} on {self.resource}{via} ({self.decision}, {self.count}x)"


def principal_kind(principal_arn: str) -> str | None:
    """``forwarder``, ``replicator`` or ``peer-writer`` for the principals the module names
    (``<name>-forwarder`` roles and their sessions, the ``<name>-peer-writer`` user), else None."""
    resource = principal_arn.split(":", 5)[-1]
    if resource.startswith("assumed-role/"):
        name = resource.split("/")[1]
    elif resource.startswith(("role/", "user/")):
        name = resource.rsplit("/", 1)[-1]
    else:
        return None
    return next((kind for kind in KINDS if name.endswith(f"-{kind}")), None)


def denials(calls: Iterable[Call]) -> list[Call]:
    """Calls an identity-based policy denied (authentication failures are not policy denials)."""
    return [call for call in calls if call.decision in POLICY_DENIALS]


# -- grants ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """One action on one resource pattern of one Allow statement."""

    kind: str
    statement: str
    action: str
    position: int  # the resource's index in the statement (the same on both sides)
    resource: str
    document: Mapping[str, Any]  # the statement itself (its conditions decide with the rest)

    def covers(self, call: Call, role_arns: Iterable[str] = ()) -> bool:
        """Whether this grant allows ``call`` (``role_arns``: the role ARNs, with their paths, a session's
        ``aws:PrincipalArn`` is taken from)."""
        single = {**self.document, "Action": self.action, "Resource": self.resource}
        single.pop("NotAction", None)
        single.pop("NotResource", None)
        context = {k.lower(): [v] for k, v in _context(call, role_arns).items()}
        return call.action == self.action and statement_applies(single, call.action, call.resource, context)

    def describe(self) -> str:
        return f"{self.kind} {self.statement}: {self.action} on {self.resource}"


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def grants(kind: str, policies: Iterable[NamedPolicy]) -> list[Grant]:
    found = []
    for policy in policies:
        for index, statement in enumerate(policy.statements()):
            if statement.get("Effect") != "Allow" or "Action" not in statement:
                continue
            sid = str(statement.get("Sid") or f"#{index}")
            for action in _as_list(statement["Action"]):
                for position, resource in enumerate(_as_list(statement.get("Resource", "*"))):
                    found.append(Grant(kind, sid, action, position, resource, statement))
    return found


def justifications(module_dir: Path = MODULE_DIR) -> dict[str, dict[str, str]]:
    """Sid -> {action: why} from the ``Not exercised locally:`` comments above each statement's Sid."""
    found: dict[str, dict[str, str]] = {}
    for path in sorted(module_dir.glob("*.tf")):
        pending: dict[str, str] = {}
        comment: list[str] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if stripped.startswith("#"):
                comment.append(stripped.lstrip("#").strip())
                continue
            if comment:
                match = JUSTIFICATION.search(" ".join(comment))
                if match:
                    actions = [a.strip() for a in match.group("actions").split(",")]
                    pending = {action: match.group("why") for action in actions}
                comment = []
            sid = re.match(r'Sid\s*=\s*"([^"]+)"', stripped)
            if sid:
                if pending:
                    found.setdefault(sid.group(1), {}).update(pending)
                pending = {}
    return found


def unused_grants(
    calls: Iterable[Call],
    policies: Mapping[str, list[NamedPolicy]],
    justified: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Grant]:
    """Grants of the Terraform-made principals that no allowed call of their kind used (on either
    side) and that no ``Not exercised locally`` comment justifies."""
    justified = justifications() if justified is None else justified
    allowed: dict[str, list[Call]] = {}
    for call in calls:
        kind = principal_kind(call.principal)
        if kind and call.allowed:
            allowed.setdefault(kind, []).append(call)
    used: set[tuple[str, str, str, int]] = set()
    candidates: dict[tuple[str, str, str, int], Grant] = {}
    for principal, documents in policies.items():
        kind = principal_kind(principal)
        if kind is None:
            continue
        mine = [c for c in allowed.get(kind, []) if _same_principal(c.principal, principal)]
        for grant in grants(kind, documents):
            key = (kind, grant.statement, grant.action, grant.position)
            candidates.setdefault(key, grant)
            if any(grant.covers(call, (principal,)) for call in mine):
                used.add(key)
    return [
        grant
        for key, grant in sorted(candidates.items())
        if key not in used and grant.action not in justified.get(grant.statement, {})
    ]


def _same_principal(call_principal: str, principal: str) -> bool:
    """A role session's calls belong to its role (whatever the role's path: a session's ARN names the
    role without it); a user's to the user."""
    from replication_ops.local.iam_enforcement import principal_arn_key

    return principal_arn_key(call_principal, (principal,)) == principal


def _context(call: Call, role_arns: Iterable[str] = ()) -> dict[str, str]:
    return request_context(call.principal, call.region, call.source_ip, call.via_service or None, role_arns)


# -- the mutation check ---------------------------------------------------------------------------


def without_action(policies: Iterable[NamedPolicy], action: str) -> list[NamedPolicy]:
    """The same policies with ``action`` taken out of every statement (a statement left without
    actions is dropped)."""
    changed = []
    for policy in policies:
        statements = []
        for statement in policy.statements():
            actions = [a for a in _as_list(statement.get("Action", [])) if a != action]
            if "Action" in statement and not actions:
                continue
            statements.append({**statement, **({"Action": actions} if "Action" in statement else {})})
        changed.append(NamedPolicy(policy.name, {**policy.document, "Statement": statements}))
    return changed


def replay(calls: Iterable[Call], policies: Mapping[str, list[NamedPolicy]]) -> list[Call]:
    """The recorded calls of the Terraform-made principals decided again with ``policies``: those
    that would now be denied, as the denial check lists them."""
    denied = []
    for call in calls:
        principal = next((p for p in policies if _same_principal(call.principal, p)), None)
        if principal is None or not call.allowed:
            continue
        decision = evaluate(policies[principal], call.action, call.resource, _context(call, (principal,)))
        if not decision.allowed:
            denied.append(
                Call(
                    call.principal,
                    call.action,
                    call.resource,
                    decision.effect.value,
                    call.region,
                    call.source_ip,
                    call.via_service,
                    count=call.count,
                )
            )
    return denied


# -- the run's record -----------------------------------------------------------------------------


def module_principals(iam: Any) -> list[str]:
    """ARNs of the roles and users the module made in one partition (through its IAM API)."""
    arns = [
        role["Arn"]
        for page in iam.get_paginator("list_roles").paginate()
        for role in page["Roles"]
        if principal_kind(role["Arn"])
    ]
    arns += [
        user["Arn"]
        for page in iam.get_paginator("list_users").paginate()
        for user in page["Users"]
        if principal_kind(user["Arn"])
    ]
    return arns


def read_policies(iam: Any, principal_arn: str) -> list[NamedPolicy]:
    """A role's or user's identity-based policies through IAM (inline, attached, and its groups')."""
    name = principal_arn.rsplit("/", 1)[-1]
    found: list[NamedPolicy] = []

    def attached(documents: Iterable[dict[str, Any]]) -> None:
        for entry in documents:
            policy = iam.get_policy(PolicyArn=entry["PolicyArn"])["Policy"]
            version = iam.get_policy_version(
                PolicyArn=entry["PolicyArn"], VersionId=policy["DefaultVersionId"]
            )
            found.append(NamedPolicy.parse(entry["PolicyArn"], version["PolicyVersion"]["Document"]))

    if ":role/" in principal_arn:
        for policy_name in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            document = iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
            found.append(NamedPolicy.parse(f"role/{name}:{policy_name}", document))
        attached(iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"])
        return found
    for policy_name in iam.list_user_policies(UserName=name)["PolicyNames"]:
        document = iam.get_user_policy(UserName=name, PolicyName=policy_name)["PolicyDocument"]
        found.append(NamedPolicy.parse(f"user/{name}:{policy_name}", document))
    attached(iam.list_attached_user_policies(UserName=name)["AttachedPolicies"])
    for group in iam.list_groups_for_user(UserName=name)["Groups"]:
        group_name = group["GroupName"]
        for policy_name in iam.list_group_policies(GroupName=group_name)["PolicyNames"]:
            document = iam.get_group_policy(GroupName=group_name, PolicyName=policy_name)["PolicyDocument"]
            found.append(NamedPolicy.parse(f"group/{group_name}:{policy_name}", document))
        attached(iam.list_attached_group_policies(GroupName=group_name)["AttachedPolicies"])
    return found


@dataclass
class IamRecord:
    """What one run's enforcing partitions decided, and the policies they decided with."""

    calls: list[Call]
    policies: dict[str, list[NamedPolicy]]

    def denials(self) -> list[Call]:
        return denials(self.calls)

    def unused_grants(self) -> list[Grant]:
        return unused_grants(self.calls, self.policies)

    def summary(self) -> dict[str, Any]:
        by_principal: dict[str, int] = {}
        for call in self.calls:
            by_principal[call.principal] = by_principal.get(call.principal, 0) + call.count
        return {
            "calls": sum(call.count for call in self.calls),
            "distinct": len(self.calls),
            "denied": [call.describe() for call in self.denials()],
            "unused_grants": [grant.describe() for grant in self.unused_grants()],
            "calls_by_principal": dict(sorted(by_principal.items())),
        }

    def write(self, path: Path) -> None:
        document = {
            "calls": [call.__dict__ for call in self.calls],
            "policies": {
                principal: [{"name": p.name, "document": p.document} for p in documents]
                for principal, documents in self.policies.items()
            },
        }
        path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> IamRecord:
        document = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            [Call.parse(entry) for entry in document["calls"]],
            {
                principal: [NamedPolicy(p["name"], p["document"]) for p in documents]
                for principal, documents in document["policies"].items()
            },
        )
