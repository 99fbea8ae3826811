"""What IAM authorizes for one AWS API request: the operation, then each (action, resource ARN) pair.

AWS authorizes a request as the actions and resources its service documents for the operation
(Service Authorization Reference, https://docs.aws.amazon.com/service-authorization/latest/reference/):
usually one action named after the operation on the resource the request names. The exceptions this
project meets are spelled out here:

- DynamoDB ``TransactWriteItems`` is authorized per item, as ``PutItem``, ``UpdateItem``,
  ``DeleteItem`` or ``ConditionCheckItem`` on that item's table, and ``TransactGetItems`` as ``GetItem``
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html);
  ``BatchGetItem`` and ``BatchWriteItem`` on every table they name; DynamoDB Streams calls are
  ``dynamodb:`` actions on the stream ARN (a ``GetRecords`` on the iterator's stream);
- Kinesis ``GetRecords`` is authorized on the stream its iterator reads;
- Lambda ``Invoke`` is ``lambda:InvokeFunction``;
- Systems Manager ``GetParametersByPath`` is authorized against the path in the request, not the
  parameters it returns; the other parameter operations against the parameters they name
  (https://docs.aws.amazon.com/systems-manager/latest/userguide/ps-retrieval-authorization.html), both
  as ``arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME`` (the name's leading ``/`` written once);
- ``sts:GetCallerIdentity`` needs no permission
  (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).

A service that encrypts with a customer managed key calls KMS with the caller's permissions, the
request's ``kms:ViaService`` being that service's endpoint: Kinesis ``GenerateDataKey`` for a put and
``Decrypt`` for a read (https://docs.aws.amazon.com/streams/latest/dev/permissions-user-key-KMS.html),
Secrets Manager ``Decrypt`` for ``GetSecretValue`` and ``GenerateDataKey`` for a new value
(https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html), SQS
``GenerateDataKey`` and ``Decrypt`` for a send and ``Decrypt`` for a receive
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html).
These are returned as further pairs with ``via_service`` set. DynamoDB's own use of a table's
customer managed key is not modelled (moto encrypts nothing).

Resources the request names indirectly (a secret by name, a queue by URL, a stream iterator) are
resolved in the moto backends of the partition, so this module runs inside the moto server process.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import botocore.session

ANY = "*"

# Credential-scope service (the SigV4 signing name) -> IAM action prefix, where they differ.
IAM_PREFIX = {"monitoring": "cloudwatch", "execute-api": "execute-api"}
# Signing name -> botocore model name, where they differ (DynamoDB Streams is told by its target).
MODEL_NAME = {"monitoring": "cloudwatch", "email": "ses"}

TRANSACT_WRITE_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


@dataclass(frozen=True)
class Authorization:
    """One action on one resource that IAM must allow for the request to proceed."""

    action: str
    resource: str
    via_service: str | None = None  # set for KMS calls a service makes with the caller's permissions


@dataclass
class ApiRequest:
    """One signed request as the moto server received it."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    service: str  # SigV4 signing name from the credential scope
    region: str
    account_id: str
    partition: str
    dns_suffix: str
    params: dict[str, Any] = field(default_factory=dict)
    operation: str = ""
    model: str = ""

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account_id if account else ''}:{resource}"
        )

    def via(self, service: str) -> str:
        """``kms:ViaService`` of a service in this region (``kinesis.cn-north-1.amazonaws.com.cn``)."""
        return f"{service}.{self.region}.{self.dns_suffix}"


class Backends:
    """Look-ups in the partition's moto backends (only called with the server's request lock held)."""

    def secret_arn(self, request: ApiRequest, secret_id: str) -> str:
        from moto.secretsmanager.models import secretsmanager_backends

        store = secretsmanager_backends[request.account_id][request.region].secrets
        for secret in dict.values(store):
            if secret_id in (secret.arn, secret.name) or secret.arn.startswith(secret_id + "-"):
                return str(secret.arn)
        return (
            secret_id
            if secret_id.startswith("arn:")
            else request.arn("secretsmanager", f"secret:{secret_id}")
        )

    def secret_key(self, request: ApiRequest, secret_arn: str) -> str | None:
        from moto.secretsmanager.models import secretsmanager_backends

        for secret in dict.values(secretsmanager_backends[request.account_id][request.region].secrets):
            if secret.arn == secret_arn:
                return self.key_arn(request, getattr(secret, "kms_key_id", None))
        return None

    def stream_key(self, request: ApiRequest, stream_arn: str) -> str | None:
        from moto.kinesis.models import kinesis_backends

        name = stream_arn.rsplit("/", 1)[-1]
        stream = kinesis_backends[request.account_id][request.region].streams.get(name)
        if stream is None or stream.encryption_type != "KMS":
            return None
        return self.key_arn(request, stream.key_id)

    def queue_key(self, request: ApiRequest, queue_name: str) -> str | None:
        from moto.sqs.models import sqs_backends

        queue = sqs_backends[request.account_id][request.region].queues.get(queue_name)
        return self.key_arn(request, getattr(queue, "kms_master_key_id", None)) if queue else None

    def key_arn(self, request: ApiRequest, key_id: str | None) -> str | None:
        if not key_id:
            return None
        from moto.kms.models import kms_backends

        backend = kms_backends[request.account_id][request.region]
        try:
            return str(backend.describe_key(key_id).arn)
        except Exception:
            return key_id if key_id.startswith("arn:") else request.arn("kms", f"key/{key_id}")

    def user_arn(self, request: ApiRequest, user_name: str) -> str:
        from moto.iam.models import iam_backends

        user = iam_backends[request.account_id][request.partition].users.get(user_name)
        return str(user.arn) if user else request.arn("iam", f"user/{user_name}", region=False)

    def user_of_key(self, request: ApiRequest, access_key_id: str) -> str:
        from moto.iam.models import iam_backends

        user = iam_backends[request.account_id][request.partition].get_user_from_access_key_id(access_key_id)
        return str(user.arn) if user else ANY

    def role_arn(self, request: ApiRequest, role_name: str) -> str:
        from moto.iam.models import iam_backends

        role = iam_backends[request.account_id][request.partition].roles
        for candidate in role.values():
            if candidate.name == role_name:
                return str(candidate.arn)
        return request.arn("iam", f"role/{role_name}", region=False)


# -- the operation --------------------------------------------------------------------------------


@cache
def _service_model(name: str) -> Any:
    return botocore.session.get_session().get_service_model(name)


@cache
def rest_routes(model_name: str) -> list[tuple[str, re.Pattern[str], str]]:
    """(HTTP method, path pattern, operation) of a REST service model, most specific first."""
    model = _service_model(model_name)
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        uri = http["requestUri"].split("?", 1)[0]
        pattern = re.sub(r"\\\{([A-Za-z0-9_]+)(?:\\\+)?\\\}", r"(?P<\1>[^/]+)", re.escape(uri))
        routes.append((http["method"], re.compile(f"^{pattern}/?$"), name))
    routes.sort(key=lambda route: -len(route[1].pattern))
    return routes


def model_name(request: ApiRequest) -> str:
    target = request.headers.get("X-Amz-Target", "")
    if request.service == "dynamodb" and target.startswith("DynamoDBStreams_"):
        return "dynamodbstreams"
    return MODEL_NAME.get(request.service, request.service)


def protocol(request: ApiRequest) -> str:
    try:
        return str(_service_model(request.model or model_name(request)).protocol)
    except Exception:
        return "json" if request.headers.get("X-Amz-Target") else "query"


def parse_operation(request: ApiRequest) -> None:
    """Fill ``operation``, ``params`` and ``model`` from the request's protocol."""
    request.model = model_name(request)
    target = request.headers.get("X-Amz-Target")
    content_type = request.headers.get("Content-Type", "")
    if target:
        request.operation = target.rsplit(".", 1)[-1]
        try:
            request.params = json.loads(request.body or b"{}")
        except ValueError:
            request.params = {}
        return
    match = re.match(r"^/service/[^/]+/operation/([A-Za-z0-9]+)$", request.path)
    if match:  # Smithy RPC v2 CBOR (CloudWatch): the body is not decoded here
        request.operation = match.group(1)
        return
    form = parse_qs(request.query)
    if request.body and "x-www-form-urlencoded" in content_type:
        form.update(parse_qs(request.body.decode("utf-8", "replace")))
    if "Action" in form:
        request.operation = form["Action"][0]
        request.params = {key: values[0] for key, values in form.items()}
        return
    try:
        routes = rest_routes(request.model)
    except Exception:
        routes = []
    for method, pattern, name in routes:
        found = pattern.match(request.path)
        if found and method == request.method:
            request.operation = name
            request.params = {key: unquote(value) for key, value in found.groupdict().items()}
            if request.body and "json" in content_type:
                try:
                    body = json.loads(request.body)
                    if isinstance(body, dict):
                        request.params = {**body, **request.params}
                except ValueError:
                    pass
            return
    request.operation = f"{request.method} {request.path}"


# -- the resources --------------------------------------------------------------------------------


def _table_arn(request: ApiRequest, name: str) -> str:
    return name if name.startswith("arn:") else request.arn("dynamodb", f"table/{name}")


def _dynamodb(request: ApiRequest, backends: Backends) -> list[Authorization]:
    op, params = request.operation, request.params
    if op == "TransactWriteItems":
        return [
            Authorization(f"dynamodb:{TRANSACT_WRITE_ACTIONS[kind]}", _table_arn(request, body["TableName"]))
            for entry in params.get("TransactItems", [])
            for kind, body in entry.items()
            if kind in TRANSACT_WRITE_ACTIONS
        ]
    if op == "TransactGetItems":
        return [
            Authorization("dynamodb:GetItem", _table_arn(request, entry["Get"]["TableName"]))
            for entry in params.get("TransactItems", [])
            if "Get" in entry
        ]
    if op in ("BatchGetItem", "BatchWriteItem"):
        return [
            Authorization(f"dynamodb:{op}", _table_arn(request, t)) for t in params.get("RequestItems", {})
        ]
    if "TableName" in params:
        return [Authorization(f"dynamodb:{op}", _table_arn(request, params["TableName"]))]
    if "ResourceArn" in params:
        return [Authorization(f"dynamodb:{op}", params["ResourceArn"])]
    return [Authorization(f"dynamodb:{op}", ANY)]


def _dynamodb_streams(request: ApiRequest, backends: Backends) -> list[Authorization]:
    op, params = request.operation, request.params
    if op == "GetRecords":
        # The iterator names its stream: "<stream ARN>|1|<id>".
        return [Authorization("dynamodb:GetRecords", str(params.get("ShardIterator", "")).split("|", 1)[0])]
    if "StreamArn" in params:
        return [Authorization(f"dynamodb:{op}", params["StreamArn"])]
    return [Authorization(f"dynamodb:{op}", ANY)]


def _kinesis_stream_arn(request: ApiRequest, params: Mapping[str, Any]) -> str | None:
    if params.get("StreamARN"):
        return str(params["StreamARN"])
    if params.get("StreamName"):
        return request.arn("kinesis", f"stream/{params['StreamName']}")
    return None


def kinesis_iterator_stream(iterator: str) -> str | None:
    """The stream name in one of moto's Kinesis iterators (base64 of ``name:shard:sequence``), if set."""
    try:
        name = base64.decodebytes(iterator.encode()).decode("utf-8").split(":", 1)[0]
    except (binascii.Error, UnicodeDecodeError):
        return None
    return name if name and name != "None" else None


def _kinesis(request: ApiRequest, backends: Backends, iterators: Mapping[str, str]) -> list[Authorization]:
    op, params = request.operation, request.params
    stream = _kinesis_stream_arn(request, params)
    if op == "GetRecords":
        iterator = str(params.get("ShardIterator", ""))
        name = kinesis_iterator_stream(iterator)
        stream = iterators.get(iterator) or (request.arn("kinesis", f"stream/{name}") if name else None)
    if op in ("SubscribeToShard", "DescribeStreamConsumer", "DeregisterStreamConsumer") and params.get(
        "ConsumerARN"
    ):
        stream = str(params["ConsumerARN"])
    authorizations = [Authorization(f"kinesis:{op}", stream or ANY)]
    if stream and op in ("PutRecord", "PutRecords", "GetRecords"):
        key = backends.stream_key(request, stream)
        if key:
            action = "kms:Decrypt" if op == "GetRecords" else "kms:GenerateDataKey"
            authorizations.append(Authorization(action, key, request.via("kinesis")))
    return authorizations


def _sqs(request: ApiRequest, backends: Backends) -> list[Authorization]:
    op, params = request.operation, request.params
    name = account = None
    if params.get("QueueUrl"):
        parts = urlparse(str(params["QueueUrl"])).path.strip("/").split("/")
        account, name = (parts[0], parts[-1]) if len(parts) >= 2 else (None, parts[-1])
    elif params.get("QueueName"):
        name, account = str(params["QueueName"]), params.get("QueueOwnerAWSAccountId")
    if name is None:
        return [Authorization(f"sqs:{op}", ANY)]
    arn = f"arn:{request.partition}:sqs:{request.region}:{account or request.account_id}:{name}"
    authorizations = [Authorization(f"sqs:{op}", arn)]
    implied = {
        "SendMessage": ("kms:GenerateDataKey", "kms:Decrypt"),
        "SendMessageBatch": ("kms:GenerateDataKey", "kms:Decrypt"),
        "ReceiveMessage": ("kms:Decrypt",),
    }.get(op, ())
    key = backends.queue_key(request, name) if implied else None
    if key:
        authorizations += [Authorization(action, key, request.via("sqs")) for action in implied]
    return authorizations


def _secretsmanager(request: ApiRequest, backends: Backends) -> list[Authorization]:
    op, params = request.operation, request.params
    secret_id = params.get("SecretId") or params.get("Name")
    if not secret_id:
        return [Authorization(f"secretsmanager:{op}", ANY)]
    arn = backends.secret_arn(request, str(secret_id))
    authorizations = [Authorization(f"secretsmanager:{op}", arn)]
    implied = {"GetSecretValue": "kms:Decrypt", "PutSecretValue": "kms:GenerateDataKey"}.get(op)
    key = backends.secret_key(request, arn) if implied else None
    if implied and key:
        authorizations.append(Authorization(implied, key, request.via("secretsmanager")))
    return authorizations


def _ssm(request: ApiRequest, backends: Backends) -> list[Authorization]:
    op, params = request.operation, request.params
    if op == "GetParametersByPath" and params.get("Path"):
        names = [str(params["Path"])]
    elif params.get("Names"):  # GetParameters, DeleteParameters: each parameter named
        names = [str(name) for name in params["Names"]]
    elif params.get("Name"):
        names = [str(params["Name"])]
    elif params.get("ResourceType") == "Parameter" and params.get("ResourceId"):  # its tags (unconfirmed)
        names = [str(params["ResourceId"])]
    else:
        return [Authorization(f"ssm:{op}", ANY)]
    arns = [request.arn("ssm", f"parameter/{name.removeprefix('/')}") for name in names]
    return [Authorization(f"ssm:{op}", arn) for arn in arns]


def _kms(request: ApiRequest, backends: Backends) -> list[Authorization]:
    key_id = request.params.get("KeyId") or request.params.get("TargetKeyId")
    return [Authorization(f"kms:{request.operation}", backends.key_arn(request, key_id) or ANY)]


def _iam(request: ApiRequest, backends: Backends) -> list[Authorization]:
    op, params = request.operation, request.params
    if op == "GetAccessKeyLastUsed" and params.get("AccessKeyId"):
        resource = backends.user_of_key(request, str(params["AccessKeyId"]))
    elif params.get("UserName"):
        resource = backends.user_arn(request, str(params["UserName"]))
    elif params.get("RoleName"):
        resource = backends.role_arn(request, str(params["RoleName"]))
    elif params.get("PolicyArn"):
        resource = str(params["PolicyArn"])
    else:
        resource = ANY
    return [Authorization(f"iam:{op}", resource)]


def _sts(request: ApiRequest, backends: Backends) -> list[Authorization]:
    if request.operation == "GetCallerIdentity":
        return []
    return [Authorization(f"sts:{request.operation}", str(request.params.get("RoleArn") or ANY))]


def _lambda(request: ApiRequest, backends: Backends) -> list[Authorization]:
    op = {"Invoke": "InvokeFunction", "InvokeAsync": "InvokeFunction"}.get(
        request.operation, request.operation
    )
    name = request.params.get("FunctionName")
    if not name:
        return [Authorization(f"lambda:{op}", ANY)]
    name = str(name)
    if not name.startswith("arn:"):
        name = name.rsplit(":function:", 1)[-1].split(":", 1)[0]
        name = request.arn("lambda", f"function:{name}")
    return [Authorization(f"lambda:{op}", name)]


Mapper = Callable[[ApiRequest, Backends], list[Authorization]]
MAPPERS: dict[str, Mapper] = {
    "dynamodb": _dynamodb,
    "dynamodbstreams": _dynamodb_streams,
    "sqs": _sqs,
    "secretsmanager": _secretsmanager,
    "ssm": _ssm,
    "kms": _kms,
    "iam": _iam,
    "sts": _sts,
    "lambda": _lambda,
}


def authorizations(
    request: ApiRequest, backends: Backends, kinesis_iterators: Mapping[str, str] | None = None
) -> list[Authorization]:
    """Every (action, resource) IAM must allow for this request; empty when it needs no permission."""
    if not request.operation:
        parse_operation(request)
    if request.model == "kinesis":
        return _kinesis(request, backends, kinesis_iterators or {})
    mapper = MAPPERS.get(request.model)
    if mapper is not None:
        return mapper(request, backends)
    prefix = IAM_PREFIX.get(request.service, request.service)
    return [Authorization(f"{prefix}:{request.operation}", ANY)]
