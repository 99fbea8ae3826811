"""IAM enforced in a local partition: every request is authenticated and authorized as AWS would.

A WSGI layer in front of the moto server (``moto_launcher --enforce-iam``). For each request it

1. identifies the caller by the access key in its SigV4 ``Authorization`` header: an IAM user's key
   (moto's IAM backend: what Terraform and the operations CLI created), a role session's key (moto's
   STS backend: ``sts:AssumeRole`` into the role Terraform created) or the Lambda service's own key
   (which may only assume roles whose trust policy names ``lambda.amazonaws.com``); an unknown or
   deactivated key is refused (``UnrecognizedClientException`` / ``InvalidClientTokenId``), a
   signature that the key's secret did not make too (``InvalidSignatureException`` /
   ``SignatureDoesNotMatch``), as AWS does;
2. maps the request to the (action, resource ARN) pairs IAM authorizes (``iam_requests``), including
   the KMS calls a service makes with the caller's permissions (``kms:ViaService`` set);
3. evaluates each pair against the principal's identity-based policies as moto's IAM backend holds
   them (``iam_policy``), with the request's context keys (``aws:SourceIp`` is the connection's
   address, ``aws:PrincipalArn``, ``aws:PrincipalAccount``, ``aws:RequestedRegion``);
4. answers a denial as the service would (JSON protocols: ``AccessDeniedException``, or Kinesis's
   ``KMSAccessDeniedException`` for its key; query protocols: ``AccessDenied``; REST: HTTP 403) with
   AWS's message ``User: <arn> is not authorized to perform: <action> on resource: <arn> because no
   identity-based policy allows the <action> action`` (or ``with an explicit deny in an
   identity-based policy``; https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html),
   and passes an allowed request to moto unchanged.

Every decision is counted in a ledger, (principal, action, resource, context, decision) -> calls,
served unsigned at ``GET /_local/iam/calls`` (loopback only) and read by the environment's checks;
each new denial is also logged. Not enforced: resource-based policies (key, queue and secret
policies), session expiry, SCPs and permissions boundaries (the module uses none).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from io import BytesIO
from typing import Any
from xml.sax.saxutils import escape

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.datastructures import EnvironHeaders
from werkzeug.wsgi import get_input_stream

from replication_ops.local.config import (
    LAMBDA_SERVICE_ACCESS_KEY_ID,
    LAMBDA_SERVICE_SECRET_ACCESS_KEY,
    LOCAL_ACCESS_KEY_ID,
    LOCAL_SECRET_ACCESS_KEY,
)
from replication_ops.local.iam_policy import (
    Decision,
    Effect,
    NamedPolicy,
    UnsupportedPolicy,
    evaluate,
    trust_allows,
)
from replication_ops.local.iam_requests import (
    ANY,
    ApiRequest,
    Authorization,
    Backends,
    authorizations,
    protocol,
)

log = logging.getLogger(__name__)

CALLS_PATH = "/_local/iam/calls"
ADMINISTRATOR = "local-administrator"
LAMBDA_SERVICE = "lambda.amazonaws.com"
ACCOUNT_ID = "123456789012"  # moto's default account: every local partition uses it
PARTITIONS = {"aws": "amazonaws.com", "aws-cn": "amazonaws.com.cn"}
HOME_REGION = {"aws": "us-east-1", "aws-cn": "cn-north-1"}  # where IAM users of the partition are made
MAX_ITERATORS = 20_000


def partition_of(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws"


@dataclass(frozen=True)
class Principal:
    """Who signed a request."""

    arn: str
    kind: str  # "user", "assumed-role" or "service"
    name: str  # user name, role name or service principal
    secret_access_key: str
    session_token: str | None = None

    @property
    def policy_arn(self) -> str:
        """``aws:PrincipalArn``: a role session's role ARN, else the principal's own."""
        return self.arn


@dataclass(frozen=True)
class CallRecord:
    """One distinct authorization decision (the ledger's key)."""

    principal: str
    action: str
    resource: str
    decision: str  # "allowed", "explicit deny", "no identity-based policy allows", or an error code
    region: str = ""
    source_ip: str = ""
    via_service: str = ""
    policy: str = ""
    statement: str = ""


class AccessLedger:
    """Counts of every decision, by distinct record."""

    def __init__(self) -> None:
        self._counts: Counter[CallRecord] = Counter()
        self._lock = threading.Lock()

    def add(self, record: CallRecord) -> bool:
        """Count one call; True when this record is new."""
        with self._lock:
            new = record not in self._counts
            self._counts[record] += 1
            return new

    def document(self) -> dict[str, Any]:
        with self._lock:
            return {"calls": [dict(asdict(record), count=count) for record, count in self._counts.items()]}


# -- identities -----------------------------------------------------------------------------------


def bootstrap_identities() -> None:
    """The local administrator (what Terraform, the load generator and the runner's bookkeeping use:
    ``LOCAL_ACCESS_KEY_ID``) as an IAM user with an ``Allow *`` policy, in every partition."""
    from moto.iam.models import iam_backends

    for partition in PARTITIONS:
        backend = iam_backends[ACCOUNT_ID][partition]
        if ADMINISTRATOR in backend.users:
            continue
        backend.create_user(
            region_name=HOME_REGION[partition], user_name=ADMINISTRATOR, path="/local/", tags=[]
        )
        key = backend.create_access_key(ADMINISTRATOR)
        key.access_key_id = LOCAL_ACCESS_KEY_ID
        key.secret_access_key = LOCAL_SECRET_ACCESS_KEY
        backend.put_user_policy(
            ADMINISTRATOR,
            "administrator",
            json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            ),
        )


def identify(access_key_id: str, region: str) -> Principal | None:
    """The principal an access key belongs to in this partition, or None (unknown or inactive)."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    partition = partition_of(region)
    if access_key_id == LAMBDA_SERVICE_ACCESS_KEY_ID:
        return Principal(LAMBDA_SERVICE, "service", LAMBDA_SERVICE, LAMBDA_SERVICE_SECRET_ACCESS_KEY)
    if access_key_id.startswith("ASIA"):
        for session in reversed(sts_backends[ACCOUNT_ID][partition].assumed_roles):
            if session.access_key_id == access_key_id:
                role_name = session.role_arn.split("/")[-1]
                return Principal(
                    session.arn, "assumed-role", role_name, session.secret_access_key, session.session_token
                )
        return None
    backend = iam_backends[ACCOUNT_ID][partition]
    for user in backend.users.values():
        for key in user.access_keys:
            if key.access_key_id == access_key_id:
                if key.status != "Active":
                    return None
                return Principal(str(user.arn), "user", user.name, key.secret_access_key)
    return None


def _managed_document(policy: Any) -> str:
    version = next(v for v in policy.versions if v.is_default)
    return str(version.document)


def policies_of(principal: Principal, region: str) -> list[NamedPolicy]:
    """Identity-based policies: a user's inline, attached and its groups' policies; a role's inline
    and attached ones."""
    from moto.iam.models import iam_backends

    backend = iam_backends[ACCOUNT_ID][partition_of(region)]
    found: list[NamedPolicy] = []

    def add(owner: str, inline: dict[str, Any], managed: Iterable[Any]) -> None:
        for name, document in inline.items():
            found.append(NamedPolicy.parse(f"{owner}:{name}", document))
        for policy in managed:
            found.append(NamedPolicy.parse(str(policy.arn), _managed_document(policy)))

    if principal.kind == "user":
        user = backend.users.get(principal.name)
        if user is None:
            return []
        add(f"user/{user.name}", user.policies, user.managed_policies.values())
        for group in backend.get_groups_for_user(user.name):
            add(f"group/{group.name}", group.policies, group.managed_policies.values())
    elif principal.kind == "assumed-role":
        role = next((r for r in backend.roles.values() if r.name == principal.name), None)
        if role is not None:
            add(f"role/{role.name}", role.policies, role.managed_policies.values())
    return found


def _role_arns(principal: Principal, region: str) -> list[str]:
    """The partition's role ARNs (paths included), for a role session's ``aws:PrincipalArn``."""
    if principal.kind != "assumed-role":
        return []
    from moto.iam.models import iam_backends

    return [role.arn for role in iam_backends[ACCOUNT_ID][partition_of(region)].roles.values()]


def principal_arn_key(principal_arn: str, role_arns: Iterable[str] = ()) -> str:
    """``aws:PrincipalArn``: for a role session, its role's ARN with the role's path ("For IAM roles,
    the request context returns the ARN of the role", IAM User Guide, "AWS global condition context
    keys"), else the principal's own ARN. A session's ARN (``arn:aws:sts::111:assumed-role/R/session``)
    names the role without its path (``arn:aws:iam::111:role/replication/R``), so the path comes from
    ``role_arns``, the account's role ARNs; a role not among them is given none."""
    parts = principal_arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        name = parts[5].split("/")[1]
        prefix = f"arn:{parts[1]}:iam::{parts[4]}:role/"
        for arn in role_arns:
            if arn.startswith(prefix) and arn.rsplit("/", 1)[1] == name:
                return arn
        return prefix + name
    return principal_arn


def request_context(
    principal_arn: str, region: str, source_ip: str, via_service: str | None, role_arns: Iterable[str] = ()
) -> dict[str, str]:
    """The condition keys of one authorization: the caller's own call carries ``aws:SourceIp`` (the
    connection's address); a KMS call a service makes on the caller's behalf carries
    ``kms:ViaService`` and ``kms:CallerAccount`` instead."""
    context = {
        "aws:PrincipalArn": principal_arn_key(principal_arn, role_arns),
        "aws:PrincipalAccount": ACCOUNT_ID,
        "aws:RequestedRegion": region,
    }
    if via_service:
        context.update({"kms:ViaService": via_service, "kms:CallerAccount": ACCOUNT_ID})
    else:
        context["aws:SourceIp"] = source_ip
    return context


# -- signatures -----------------------------------------------------------------------------------


def _between(text: str, start: str, end: str) -> str:
    return text.partition(start)[2].partition(end)[0]


def signature_valid(  # noqa: PLR0917 - the parts of one request
    principal: Principal, headers: EnvironHeaders, method: str, raw_uri: str, body: bytes, scope: list[str]
) -> bool:
    """Recompute the SigV4 signature with the principal's secret (botocore's signer)."""
    authorization = headers.get("Authorization", "")
    signed = _between(authorization, "SignedHeaders=", ",").split(";")
    request = AWSRequest(
        method=method,
        url=f"http://{headers.get('Host', 'localhost')}{raw_uri}",
        data=body,
        headers={name: value for name, value in headers.items() if name.lower() in signed},
    )
    request.context["timestamp"] = headers.get("X-Amz-Date", "")
    auth = SigV4Auth(
        Credentials(scope[0], principal.secret_access_key, principal.session_token), scope[3], scope[2]
    )
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    return expected == _between(authorization, "Signature=", ",").strip()


# -- answers --------------------------------------------------------------------------------------

JSON_ERRORS = {  # code -> HTTP status, for JSON protocols (and REST ones, which use 403 for access)
    "AccessDeniedException": 400,
    "KMSAccessDeniedException": 400,
    "UnrecognizedClientException": 400,
    "InvalidSignatureException": 400,
    "IncompleteSignatureException": 400,
    "MissingAuthenticationTokenException": 400,
}
QUERY_CODES = {
    "AccessDeniedException": "AccessDenied",
    "KMSAccessDeniedException": "AccessDenied",
    "UnrecognizedClientException": "InvalidClientTokenId",
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "IncompleteSignatureException": "IncompleteSignature",
    "MissingAuthenticationTokenException": "MissingAuthenticationToken",
}


def error_response(
    request: ApiRequest | None, code: str, message: str
) -> tuple[int, list[tuple[str, str]], bytes]:
    """An error in the service's own protocol (status, headers, body)."""
    request_id = str(uuid.uuid4())
    kind = protocol(request) if request is not None else "json"
    if kind in ("query", "ec2"):
        query_code = QUERY_CODES.get(code, code)
        if kind == "ec2":
            if query_code == "AccessDenied":
                query_code = "UnauthorizedOperation"
            body = (
                f"<Response><Errors><Error><Code>{query_code}</Code><Message>{escape(message)}</Message>"
                f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
            )
        else:
            body = (
                f"<ErrorResponse><Error><Type>Sender</Type><Code>{query_code}</Code>"
                f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            )
        return 403, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], body.encode()
    headers = [("x-amzn-RequestId", request_id)]
    if kind.startswith("rest"):
        headers += [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
        return 403, headers, json.dumps({"Type": "User", "message": message}).encode()
    model_name = request.model if request is not None else ""
    type_name = code
    if model_name == "dynamodb":
        type_name = f"com.amazonaws.dynamodb.v20120810#{code}"
    if model_name == "sqs":
        # SQS's JSON protocol is query-compatible: clients read the query code from this header.
        headers.append(("x-amzn-query-error", f"{QUERY_CODES.get(code, code)};Sender"))
    headers.append(("Content-Type", "application/x-amz-json-1.0"))
    return JSON_ERRORS.get(code, 400), headers, json.dumps({"__type": type_name, "message": message}).encode()


def denial_message(principal: str, authorization: Authorization, decision: Decision) -> str:
    why = (
        "with an explicit deny in an identity-based policy"
        if decision.effect is Effect.EXPLICIT_DENY
        else f"because no identity-based policy allows the {authorization.action} action"
    )
    return (
        f"User: {principal} is not authorized to perform: {authorization.action} on resource: "
        f"{authorization.resource} {why}"
    )


# -- the WSGI layer -------------------------------------------------------------------------------


class IamEnforcement:
    """WSGI middleware: authenticate, authorize, record; then moto (``app``) for allowed requests.

    Must run with the server's request lock held (inside ``moto_launcher.serialized``): it reads
    moto's backends.
    """

    def __init__(self, app: Callable[..., Any], ledger: AccessLedger | None = None) -> None:
        self.app = app
        self.ledger = ledger or AccessLedger()
        self.backends = Backends()
        self.kinesis_iterators: dict[str, str] = {}  # moto iterator -> stream ARN (moto omits it)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == CALLS_PATH:
            return self._answer(
                start_response,
                200,
                [("Content-Type", "application/json")],
                json.dumps(self.ledger.document()).encode(),
            )
        if path.startswith("/moto-api"):
            return self.app(environ, start_response)
        body = get_input_stream(environ).read()
        environ["wsgi.input"] = BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        headers = EnvironHeaders(environ)
        source_ip = str(environ.get("REMOTE_ADDR", ""))
        authorization = headers.get("Authorization", "")
        scope = _between(authorization, "Credential=", ",").split("/")
        if not authorization.startswith("AWS4-HMAC-SHA256") or len(scope) != 5:
            return self._refuse(
                start_response,
                None,
                "anonymous",
                source_ip,
                "MissingAuthenticationTokenException",
                "Request is missing Authentication Token",
            )
        access_key_id, _, region, service, _ = scope
        raw_uri = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or path)
        request = ApiRequest(
            method=environ.get("REQUEST_METHOD", "GET"),
            path=raw_uri.split("?", 1)[0],
            query=str(environ.get("QUERY_STRING", "")),
            headers=headers,
            body=body,
            service=service,
            region=region,
            account_id=ACCOUNT_ID,
            partition=partition_of(region),
            dns_suffix=PARTITIONS[partition_of(region)],
        )
        principal = identify(access_key_id, region)
        if principal is None or (
            principal.session_token and headers.get("X-Amz-Security-Token") != principal.session_token
        ):
            return self._refuse(
                start_response,
                request,
                f"key {access_key_id}",
                source_ip,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        if not signature_valid(principal, headers, request.method, raw_uri, body, scope):
            return self._refuse(
                start_response,
                request,
                principal.arn,
                source_ip,
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method.",
            )
        try:
            needed = authorizations(request, self.backends, self.kinesis_iterators)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            log.warning(
                "cannot map %s %s to IAM actions (%s): treated as %s:*",
                service,
                request.operation,
                error,
                service,
            )
            needed = [Authorization(f"{service}:{request.operation or '*'}", ANY)]
        for item in needed:
            decision = self._decide(principal, item, request, source_ip)
            record = CallRecord(
                principal.arn,
                item.action,
                item.resource,
                decision.effect.value,
                request.region,
                source_ip,
                item.via_service or "",
                decision.policy or "",
                decision.statement or "",
            )
            if self.ledger.add(record) and not decision.allowed:
                log.warning(
                    "IAM denied: %s %s on %s (%s)",
                    principal.arn,
                    item.action,
                    item.resource,
                    decision.effect.value,
                )
            if not decision.allowed:
                code = "AccessDeniedException"
                if item.via_service and request.model == "kinesis":
                    code = "KMSAccessDeniedException"
                return self._error(
                    start_response, request, code, denial_message(principal.arn, item, decision)
                )
        if request.model == "kinesis" and request.operation in ("GetShardIterator", "GetRecords"):
            return self._remember_iterators(environ, start_response, request, needed)
        return self.app(environ, start_response)

    # -- decisions ------------------------------------------------------------------------------

    def _decide(
        self, principal: Principal, item: Authorization, request: ApiRequest, source_ip: str
    ) -> Decision:
        if principal.kind == "service":
            return self._service_decision(principal, item, request)
        context = request_context(
            principal.arn, request.region, source_ip, item.via_service, _role_arns(principal, request.region)
        )
        try:
            return evaluate(policies_of(principal, request.region), item.action, item.resource, context)
        except UnsupportedPolicy as error:
            log.error("IAM: %s: %s (denied)", principal.arn, error)
            return Decision(Effect.IMPLICIT_DENY, statement=str(error))

    def _service_decision(self, principal: Principal, item: Authorization, request: ApiRequest) -> Decision:
        """The Lambda service may assume a role whose trust policy names it, and do nothing else here."""
        from moto.iam.models import iam_backends

        if item.action != "sts:AssumeRole":
            return Decision(Effect.IMPLICIT_DENY)
        backend = iam_backends[ACCOUNT_ID][request.partition]
        role = next((r for r in backend.roles.values() if r.arn == item.resource), None)
        if role is None:
            return Decision(Effect.IMPLICIT_DENY, statement="no such role")
        trust = role.assume_role_policy_document
        document = json.loads(trust) if isinstance(trust, str) else trust
        if trust_allows(document, principal.name):
            return Decision(Effect.ALLOW, f"role/{role.name}:trust")
        return Decision(Effect.IMPLICIT_DENY, statement="trust policy")

    # -- answers --------------------------------------------------------------------------------

    def _refuse(  # noqa: PLR0917
        self,
        start_response: Callable[..., Any],
        request: ApiRequest | None,
        who: str,
        source_ip: str,
        code: str,
        message: str,
    ) -> Iterable[bytes]:
        action = f"{request.service}:{request.operation}" if request and request.operation else "*"
        region = request.region if request else ""
        if self.ledger.add(CallRecord(who, action, "", code, region, source_ip)):
            log.warning("IAM refused %s: %s", who, code)
        return self._error(start_response, request, code, message)

    def _error(
        self, start_response: Callable[..., Any], request: ApiRequest | None, code: str, message: str
    ) -> Iterable[bytes]:
        status, headers, body = error_response(request, code, message)
        return self._answer(start_response, status, headers, body)

    @staticmethod
    def _answer(
        start_response: Callable[..., Any], status: int, headers: list[tuple[str, str]], body: bytes
    ) -> Iterable[bytes]:
        reason = {200: "OK", 400: "Bad Request", 403: "Forbidden"}.get(status, "Error")
        start_response(f"{status} {reason}", [*headers, ("Content-Length", str(len(body)))])
        return [body]

    def _remember_iterators(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        request: ApiRequest,
        needed: list[Authorization],
    ) -> Iterable[bytes]:
        """moto's Kinesis iterators omit the stream when it was named by ARN: note each iterator's
        stream from the response, so that a GetRecords is authorized on the stream it reads."""
        stream = needed[0].resource if needed else ANY
        chunks = list(self.app(environ, start_response))
        if stream != ANY:
            try:
                answer = json.loads(b"".join(chunks) or b"{}")
            except ValueError:
                answer = {}
            for name in ("ShardIterator", "NextShardIterator"):
                if isinstance(answer.get(name), str):
                    self.kinesis_iterators[answer[name]] = stream
            while len(self.kinesis_iterators) > MAX_ITERATORS:
                self.kinesis_iterators.pop(next(iter(self.kinesis_iterators)))
        return chunks
