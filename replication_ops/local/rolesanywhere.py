"""IAM Roles Anywhere, emulated in a local partition (moto 5.2.5 has no Roles Anywhere backend).

Mounted by ``moto_launcher`` in front of moto, in each partition's process, as two WSGI layers:

* ``RolesAnywhere.control_plane(app)``: the REST JSON API of botocore's ``rolesanywhere`` model for
  what Terraform's ``aws_rolesanywhere_trust_anchor`` and ``aws_rolesanywhere_profile`` and an
  operator need: Create/Get/Update/Delete/Enable/Disable/List of trust anchors and profiles, the CRL
  calls (ImportCrl, GetCrl, UpdateCrl, EnableCrl, DisableCrl, ListCrls, DeleteCrl) and
  TagResource/UntagResource/ListTagsForResource. Requests are routed by the model's request URIs
  (``iam_requests.rest_routes``); everything signed for another service goes on to moto. It sits
  inside ``IamEnforcement``, which authorizes these calls as ``rolesanywhere:<Operation>``.
* ``RolesAnywhere.sessions(app)``: ``POST /sessions`` (CreateSession), outermost, because its
  request is signed with a certificate's key, not an access key. It is verified as AWS documents it
  ("The IAM Roles Anywhere authentication process", "The IAM Roles Anywhere authentication signing
  process", "The IAM Roles Anywhere trust model", https://docs.aws.amazon.com/rolesanywhere/latest/userguide/):

  1. the ``Authorization`` header is ``AWS4-X509-RSA-SHA256`` or ``AWS4-X509-ECDSA-SHA256`` with
     ``Credential=<certificate serial, decimal>/<date>/<region>/rolesanywhere/aws4_request``; the
     certificate is ``X-Amz-X509`` (base64 DER), intermediates ``X-Amz-X509-Chain`` (comma-separated);
     ``X-Amz-Date`` within five minutes of now (SigV4's rule);
  2. the signature over SigV4's canonical request and string to sign (botocore's own canonicalizer)
     verifies with the certificate's public key (RSA PKCS#1 v1.5 or ECDSA, SHA-256);
  3. the trust anchor (this region's) exists and is enabled; the certificate chains, through the
     given intermediates, to a certificate of its bundle, every link's signature and validity dates
     checked, every issuer a CA, the leaf not one;
  4. no enabled CRL imported for that trust anchor, signed by a certificate's issuer, lists it;
  5. the profile exists, is enabled and lists the role; ``durationSeconds`` (default 3600) is
     900..43200 and the session lasts the lower of it and the profile's ``durationSeconds``;
  6. the role's trust policy allows the service principal ``rolesanywhere.amazonaws.com``
     ``sts:AssumeRole``, ``sts:TagSession`` and ``sts:SetSourceIdentity`` with the context Roles
     Anywhere sets: ``aws:SourceArn`` (the trust anchor), ``aws:SourceAccount``,
     ``aws:PrincipalTag/x509Subject/<RDN>``, ``aws:PrincipalTag/x509Issuer/<RDN>``,
     ``aws:PrincipalTag/x509SAN/DNS|URI`` (the default attribute mapping, first value of each), the
     same as ``aws:RequestTag/...``, and ``sts:SourceIdentity`` (the subject's CN); evaluated by the
     local IAM evaluator (``iam_policy.trust_allows``);

  then answers HTTP 201 with CreateSession's ``credentialSet``: credentials from the partition's own
  STS (moto's AssumeRole), so that ``IamEnforcement`` authorizes their calls by the role's policies.
  A refusal is ``AccessDeniedException`` (403), a malformed request ``ValidationException`` (400), an
  unknown profile or trust anchor ``ResourceNotFoundException`` (404): CreateSession's documented
  errors, in the REST JSON shape (``x-amzn-ErrorType`` and ``{"message"}``).

Subjects: every CreateSession whose signature verifies records its certificate under the subject
of the leaf's subject name (one per distinct name), with ``seenAt`` and ``failed`` (whether the
request was refused), as ListSubjects and GetSubject return them ("The subject stores auditing
information such as the status of the last authentication attempt, the certificate data used in the
attempt, and the last time the associated identity attempted authentication", API_GetSubject).
``serialNumber`` is the decimal serial of the credential scope (AWS does not document its format).

Notification settings: a trust anchor keeps the ``notificationSettings`` it is created with (or
PutNotificationSettings / ResetNotificationSettings later) and returns them with ``configuredBy``;
without a setting of its own an event has AWS's default, enabled, 45 days ("IAM Roles Anywhere
default notification settings", customize-notification-settings). A CreateSession that succeeds with
an end-entity certificate whose days until expiry are at most the END_ENTITY_CERTIFICATE_EXPIRY
threshold produces, once per certificate and day, the documented EventBridge event ("Intermediate or
end-entity certificate expiration event", monitoring-events: detail-type ``Roles Anywhere Certificate
Expiration State Change``, source ``aws.rolesanywhere``, detail ``certificate-serial-number`` in hex,
``days-to-expiry``, ``issuer``), put on the partition's default event bus (moto's EventBridge, whose
rules route it: the module's rule to its SNS topic, ``moto_fidelity`` 12).

Not emulated: ACM Private CA trust anchors (not available in the China regions either), CRL
distribution points, attribute-mapping changes, session policies and managed policies of a profile,
instance properties, CA certificate expiry events, the CloudWatch metric DaysToExpiry, AWS Health.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from io import BytesIO
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from werkzeug.datastructures import EnvironHeaders
from werkzeug.wsgi import get_input_stream

from replication_ops.local.iam_policy import UnsupportedPolicy, trust_allows
from replication_ops.local.iam_requests import rest_routes

SERVICE = "rolesanywhere"
SERVICE_PRINCIPAL = "rolesanywhere.amazonaws.com"  # in both partitions (the aws-cn user guide's examples)
SESSIONS_PATH = "/sessions"
ACCOUNT_ID = "123456789012"  # moto's default account: every local partition uses it
ALGORITHMS = {"AWS4-X509-RSA-SHA256": rsa.RSAPublicKey, "AWS4-X509-ECDSA-SHA256": ec.EllipticCurvePublicKey}
TRUST_ACTIONS = ("sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity")
MIN_DURATION_SECONDS, MAX_DURATION_SECONDS, DEFAULT_DURATION_SECONDS = 900, 43_200, 3600
PROFILE_UPDATES = (
    "name",
    "roleArns",
    "managedPolicyArns",
    "durationSeconds",
    "sessionPolicy",
    "acceptRoleSessionName",
)
NOTIFICATION_EVENTS = ("CA_CERTIFICATE_EXPIRY", "END_ENTITY_CERTIFICATE_EXPIRY")
DEFAULT_THRESHOLD_DAYS = 45  # "IAM Roles Anywhere default notification settings"
EXPIRY_DETAIL_TYPE = "Roles Anywhere Certificate Expiration State Change"
MAX_CLOCK_SKEW = timedelta(minutes=5)  # SigV4: "within five minutes of the AWS system time"
# Relative distinguished names Roles Anywhere maps into principal tags (x509Subject/CN, ...).
RDN_NAMES = {
    NameOID.COMMON_NAME: "CN",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COUNTRY_NAME: "C",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.LOCALITY_NAME: "L",
    NameOID.DOMAIN_COMPONENT: "DC",
}


class ServiceError(Exception):
    """One of the service's documented errors: code, HTTP status, message."""

    STATUS: ClassVar[dict[str, int]] = {
        "AccessDeniedException": 403,
        "ValidationException": 400,
        "ResourceNotFoundException": 404,
    }

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = self.STATUS[code]


def _denied(message: str) -> ServiceError:
    return ServiceError("AccessDeniedException", message)


def _now() -> datetime:
    return datetime.now(UTC)


def _timestamp(moment: datetime) -> str:
    """The model's ``iso8601`` timestamps."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class Kind:
    """One resource type of the API: its table in the store and its names in the model's shapes."""

    table: str
    key: str  # trustAnchor, profile, crl: the response member and the id's prefix
    arn_type: str  # the ARN's resource type
    list_key: str
    fields: tuple[str, ...]  # taken from a create request as given
    updates: tuple[str, ...]  # what an update may change

    @property
    def id(self) -> str:
        return f"{self.key}Id"

    @property
    def arn(self) -> str:
        return f"{self.key}Arn"

    def defaults(self, p: Mapping[str, Any]) -> dict[str, Any]:
        """What the service fills in that a create request may leave out."""
        if self.key == "profile":
            return {
                "roleArns": list(p.get("roleArns", [])),
                "managedPolicyArns": list(p.get("managedPolicyArns", [])),
                "durationSeconds": int(p.get("durationSeconds", DEFAULT_DURATION_SECONDS)),
                "requireInstanceProperties": bool(p.get("requireInstanceProperties", False)),
                "acceptRoleSessionName": bool(p.get("acceptRoleSessionName", False)),
                "attributeMappings": _DEFAULT_MAPPINGS,
                "createdBy": ACCOUNT_ID,
            }
        if self.key == "trustAnchor":
            return {"notificationSettings": notification_settings(p.get("notificationSettings", []))}
        return {}


KINDS = {
    "TrustAnchor": Kind(
        "trust_anchors", "trustAnchor", "trust-anchor", "trustAnchors", ("name", "source"), ("name", "source")
    ),
    "Profile": Kind("profiles", "profile", "profile", "profiles", ("name", "sessionPolicy"), PROFILE_UPDATES),
    "Crl": Kind("crls", "crl", "crl", "crls", ("name", "crlData", "trustAnchorArn"), ("name", "crlData")),
}
VERBS = ("Create", "Import", "Get", "Update", "Enable", "Disable", "Delete", "List")
# What Terraform's aws_rolesanywhere_trust_anchor/_profile (hashicorp/aws 5.100.0) and the operator's
# CRL handling call (tests/local/test_rolesanywhere_terraform.py records Terraform's calls).
EMULATED = frozenset(
    {
        *(f"{verb}{kind}" for kind in ("TrustAnchor", "Profile") for verb in ("Create", "Get", "Update")),
        *(
            f"{verb}{kind}"
            for kind in ("TrustAnchor", "Profile", "Crl")
            for verb in ("Enable", "Disable", "Delete")
        ),
        *("ImportCrl", "GetCrl", "UpdateCrl", "ListTrustAnchors", "ListProfiles", "ListCrls"),
        *("TagResource", "UntagResource", "ListTagsForResource"),
        *("ListSubjects", "GetSubject", "PutNotificationSettings", "ResetNotificationSettings"),
    }
)


def notification_settings(given: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A trust anchor's NotificationSettingDetail list: the given settings (configuredBy the account),
    and AWS's default (enabled, 45 days, configuredBy rolesanywhere.amazonaws.com) for an event
    without one. A threshold is 1..360 days and required when enabled (API_NotificationSetting)."""
    details = []
    for setting in given:
        event, threshold = setting.get("event"), setting.get("threshold")
        if event not in NOTIFICATION_EVENTS or "enabled" not in setting:
            raise ServiceError("ValidationException", "a notification setting needs an event and enabled")
        if threshold is None and setting["enabled"]:
            raise ServiceError("ValidationException", "an enabled notification setting needs a threshold")
        if threshold is not None and not 1 <= int(threshold) <= 360:
            raise ServiceError("ValidationException", "threshold must be 1 to 360 days")
        details.append(
            {
                "event": event,
                "enabled": bool(setting["enabled"]),
                "threshold": None if threshold is None else int(threshold),
                "channel": setting.get("channel", "ALL"),
                "configuredBy": ACCOUNT_ID,
            }
        )
    configured = {d["event"] for d in details}
    details.extend(
        {
            "event": event,
            "enabled": True,
            "threshold": DEFAULT_THRESHOLD_DAYS,
            "channel": "ALL",
            "configuredBy": SERVICE_PRINCIPAL,
        }
        for event in NOTIFICATION_EVENTS
        if event not in configured
    )
    return details


def end_entity_threshold(anchor: Mapping[str, Any]) -> int | None:
    """The trust anchor's END_ENTITY_CERTIFICATE_EXPIRY threshold in days, None when disabled."""
    for setting in anchor.get("notificationSettings") or notification_settings([]):
        if setting["event"] == "END_ENTITY_CERTIFICATE_EXPIRY":
            return int(setting["threshold"]) if setting["enabled"] else None
    return DEFAULT_THRESHOLD_DAYS


@dataclass
class Store:
    """One region's Roles Anywhere resources (per kind's table, by id); tags by ARN."""

    resources: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {kind.table: {} for kind in KINDS.values()}
    )
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    subjects: dict[str, dict[str, Any]] = field(default_factory=dict)  # by subjectId
    notified: set[tuple[int, str]] = field(default_factory=set)  # (serial, day) of expiry events sent


def _validate(kind: Kind, p: Mapping[str, Any], store: Store, *, creating: bool) -> None:
    """What the emulation refuses: another trust anchor source than a PEM bundle, a profile duration
    outside 900..43200 s, CRL data that is no CRL, a CRL for an unknown trust anchor."""
    if kind.key == "trustAnchor" and (creating or "source" in p):
        if (p.get("source") or {}).get("sourceType") != "CERTIFICATE_BUNDLE":
            raise ServiceError("ValidationException", "only CERTIFICATE_BUNDLE trust anchors are emulated")
        _bundle(p["source"])
    if kind.key == "profile" and "durationSeconds" in p:
        _check_duration(int(p["durationSeconds"]), "durationSeconds")
    if kind.key == "crl" and (creating or "crlData" in p):
        _crl(p["crlData"])
    if kind.key == "crl" and creating:
        anchors = store.resources["trust_anchors"].values()
        if not any(a["trustAnchorArn"] == p["trustAnchorArn"] for a in anchors):
            raise ServiceError(
                "ResourceNotFoundException", f"trust anchor {p['trustAnchorArn']} does not exist"
            )


def _partition(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws"


def _answer(start_response: Callable[..., Any], status: int, document: Any, code: str = "") -> list[bytes]:
    body = json.dumps(document).encode()
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("x-amzn-RequestId", str(uuid.uuid4())),
    ]
    if code:
        headers.append(("x-amzn-ErrorType", code))
    reasons = {200: "OK", 201: "Created", 400: "Bad Request", 403: "Forbidden", 404: "Not Found"}
    start_response(f"{status} {reasons.get(status, 'Error')}", headers)
    return [body]


def _scope(authorization: str) -> list[str]:
    return authorization.partition("Credential=")[2].partition(",")[0].strip().split("/")


class RolesAnywhere:
    """The emulated service of one partition process: its resources (per region) and both layers."""

    def __init__(self) -> None:
        self.stores: dict[str, Store] = {}
        self._lock = threading.Lock()

    # -- WSGI layers ----------------------------------------------------------------------------

    def control_plane(self, app: Callable[..., Any]) -> Callable[..., Iterable[bytes]]:
        """Requests signed for ``rolesanywhere`` are served here; all others go on to ``app``."""

        def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            scope = _scope(str(environ.get("HTTP_AUTHORIZATION", "")))
            if len(scope) != 5 or scope[3] != SERVICE:
                return app(environ, start_response)
            body = get_input_stream(environ).read()
            try:
                status, document = self.call(
                    scope[2],
                    str(environ.get("REQUEST_METHOD", "GET")),
                    unquote(str(environ.get("PATH_INFO", ""))),
                    str(environ.get("QUERY_STRING", "")),
                    body,
                )
            except ServiceError as error:
                return _answer(start_response, error.status, {"message": str(error)}, error.code)
            return _answer(start_response, status, document)

        return application

    def sessions(self, app: Callable[..., Any]) -> Callable[..., Iterable[bytes]]:
        """``POST /sessions`` signed with a certificate is CreateSession; all else goes on to ``app``."""

        def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            authorization = str(environ.get("HTTP_AUTHORIZATION", ""))
            if environ.get("PATH_INFO") != SESSIONS_PATH or not authorization.startswith("AWS4-X509-"):
                return app(environ, start_response)
            body = get_input_stream(environ).read()
            environ["wsgi.input"] = BytesIO(body)
            raw_uri = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or SESSIONS_PATH)
            try:
                document = self.create_session(
                    EnvironHeaders(environ), str(environ.get("REQUEST_METHOD")), raw_uri, body
                )
            except ServiceError as error:
                return _answer(start_response, error.status, {"message": str(error)}, error.code)
            return _answer(start_response, 201, document)

        return application

    # -- the control plane ----------------------------------------------------------------------

    def call(self, region: str, method: str, path: str, query: str, body: bytes) -> tuple[int, Any]:
        """One control-plane request: (HTTP status, response document)."""
        route = next(
            (
                (operation, found)
                for verb, pattern, operation in rest_routes(SERVICE)
                if verb == method and (found := pattern.match(path))
            ),
            None,
        )
        if route is None:
            raise ServiceError("ValidationException", f"no Roles Anywhere operation is {method} {path}")
        operation, found = route
        try:
            params: dict[str, Any] = json.loads(body) if body else {}
        except ValueError:
            raise ServiceError("ValidationException", "the request body is not JSON") from None
        params.update({k: v[0] for k, v in parse_qs(query).items()})
        params.update(found.groupdict())
        if operation not in EMULATED:
            raise ServiceError("ValidationException", f"{operation} is not emulated locally")
        with self._lock:
            return self._operation(operation, self.stores.setdefault(region, Store()), region, params)

    @staticmethod
    def _arn(region: str, kind: str, resource_id: str) -> str:
        return f"arn:{_partition(region)}:{SERVICE}:{region}:{ACCOUNT_ID}:{kind}/{resource_id}"

    def _operation(self, operation: str, store: Store, region: str, p: dict[str, Any]) -> tuple[int, Any]:
        """Create/Import, Get, Update, Enable, Disable, Delete and List of the three kinds, and tags."""
        if operation in ("TagResource", "UntagResource", "ListTagsForResource"):
            return self._tags(operation, store, p)
        if operation in ("ListSubjects", "GetSubject"):
            return self._subjects(operation, store, p)
        if operation in ("PutNotificationSettings", "ResetNotificationSettings"):
            return self._notifications(operation, store, p)
        verb, name = next((v, operation[len(v) :]) for v in VERBS if operation.startswith(v))
        kind = KINDS[name.removesuffix("s") if verb == "List" else name]
        table = store.resources[kind.table]
        if verb == "List":
            return 200, {kind.list_key: list(table.values())}
        if verb in ("Create", "Import"):
            _validate(kind, p, store, creating=True)
            resource_id, now = str(uuid.uuid4()), _timestamp(_now())
            resource = {
                kind.id: resource_id,
                kind.arn: self._arn(region, kind.arn_type, resource_id),
                **{k: p[k] for k in kind.fields if k in p},
                **kind.defaults(p),
                "enabled": bool(p.get("enabled", False)),
                "createdAt": now,
                "updatedAt": now,
            }
            table[resource_id] = resource
            store.tags.setdefault(resource[kind.arn], {}).update(
                {t["key"]: t["value"] for t in p.get("tags", [])}
            )
            return 201, {kind.key: resource}
        resource = table.get(p[kind.id])
        if resource is None:
            raise ServiceError("ResourceNotFoundException", f"{kind.key} {p[kind.id]} does not exist")
        if verb == "Delete":
            del table[p[kind.id]]
            store.tags.pop(resource[kind.arn], None)
        elif verb == "Get":
            pass
        else:
            if verb == "Update":
                _validate(kind, p, store, creating=False)
            changes = (
                {k: p[k] for k in kind.updates if k in p}
                if verb == "Update"
                else {"enabled": verb == "Enable"}
            )
            resource.update(changes, updatedAt=_timestamp(_now()))
        return 200, {kind.key: resource}

    @staticmethod
    def _tags(operation: str, store: Store, p: dict[str, Any]) -> tuple[int, Any]:
        arn = p["resourceArn"]
        known = {r[k.arn] for k in KINDS.values() for r in store.resources[k.table].values()}
        if arn not in known:
            raise ServiceError("ResourceNotFoundException", f"resource {arn} does not exist")
        tags = store.tags.setdefault(arn, {})
        if operation == "TagResource":
            tags.update({t["key"]: t["value"] for t in p.get("tags", [])})
            return 201, {}
        if operation == "UntagResource":
            for key in p.get("tagKeys", []):
                tags.pop(key, None)
            return 200, {}
        return 200, {"tags": [{"key": k, "value": v} for k, v in tags.items()]}

    @staticmethod
    def _subjects(operation: str, store: Store, p: dict[str, Any]) -> tuple[int, Any]:
        if operation == "ListSubjects":
            summaries = [{k: v for k, v in s.items() if k != "credentials"} for s in store.subjects.values()]
            return 200, {"subjects": summaries}
        subject = store.subjects.get(p["subjectId"])
        if subject is None:
            raise ServiceError("ResourceNotFoundException", f"subject {p['subjectId']} does not exist")
        return 200, {"subject": {**subject, "credentials": [dict(c) for c in subject["credentials"]]}}

    @staticmethod
    def _notifications(operation: str, store: Store, p: dict[str, Any]) -> tuple[int, Any]:
        """PutNotificationSettings replaces the given events' settings; ResetNotificationSettings
        puts the given events back to AWS's default."""
        anchor = store.resources["trust_anchors"].get(p["trustAnchorId"])
        if anchor is None:
            raise ServiceError(
                "ResourceNotFoundException", f"trust anchor {p['trustAnchorId']} does not exist"
            )
        own = [s for s in anchor["notificationSettings"] if s["configuredBy"] != SERVICE_PRINCIPAL]
        if operation == "PutNotificationSettings":
            given = list(p.get("notificationSettings", []))
            events = {s.get("event") for s in given}
            own = [s for s in own if s["event"] not in events] + given
        else:
            events = {k.get("event") for k in p.get("notificationSettingKeys", [])}
            own = [s for s in own if s["event"] not in events]
        anchor["notificationSettings"] = notification_settings(
            [
                {k: s[k] for k in ("event", "enabled", "threshold", "channel") if s.get(k) is not None}
                for s in own
            ]
        )
        anchor["updatedAt"] = _timestamp(_now())
        return 200, {"trustAnchor": anchor}

    def _record(self, region: str, leaf: x509.Certificate, *, failed: bool) -> None:
        """The subject's record of this CreateSession (the module docstring, Subjects)."""
        name = leaf.subject.rfc4514_string()
        subject_id = str(uuid.uuid5(uuid.NAMESPACE_OID, name))
        moment = _timestamp(_now())
        pem = leaf.public_bytes(serialization.Encoding.PEM).decode("ascii")
        with self._lock:
            store = self.stores.setdefault(region, Store())
            subject = store.subjects.setdefault(
                subject_id,
                {
                    "subjectId": subject_id,
                    "subjectArn": self._arn(region, "subject", subject_id),
                    "x509Subject": name,
                    "enabled": True,
                    "createdAt": moment,
                    "credentials": [],
                },
            )
            subject.update(lastSeenAt=moment, updatedAt=moment)
            credential = next((c for c in subject["credentials"] if c["x509CertificateData"] == pem), None)
            if credential is None:
                credential = {
                    "serialNumber": str(leaf.serial_number),
                    "issuer": leaf.issuer.rfc4514_string(),
                    "x509CertificateData": pem,
                    "enabled": True,
                }
                subject["credentials"].append(credential)
            credential.update(seenAt=moment, failed=failed)

    def _notify_expiry(self, region: str, anchor: Mapping[str, Any], leaf: x509.Certificate) -> None:
        """The end-entity certificate expiration event, once per certificate and day, when its days
        until expiry are at most the trust anchor's threshold (the module docstring)."""
        threshold = end_entity_threshold(anchor)
        now = _now()
        days = (leaf.not_valid_after_utc - now) // timedelta(days=1)
        if threshold is None or days > threshold:
            return
        with self._lock:
            store = self.stores.setdefault(region, Store())
            sent = (leaf.serial_number, now.strftime("%Y-%m-%d"))
            if sent in store.notified:
                return
            store.notified.add(sent)
        detail = {
            "certificate-serial-number": format(leaf.serial_number, "X"),
            "days-to-expiry": days,
            "issuer": leaf.issuer.rfc4514_string(),
        }
        from moto.events.models import events_backends

        events_backends[ACCOUNT_ID][region].put_events(
            [{"Source": f"aws.{SERVICE}", "DetailType": EXPIRY_DETAIL_TYPE, "Detail": json.dumps(detail)}]
        )

    # -- CreateSession --------------------------------------------------------------------------

    def create_session(self, headers: Mapping[str, str], method: str, raw_uri: str, body: bytes) -> Any:
        """Verify a CreateSession request (the module docstring's steps) and vend the role's session;
        a request whose signature verifies is recorded in its subject, refused or not."""
        region, leaf, chain = _authenticate(headers, method, raw_uri, body)
        try:
            anchor, session = self._session(region, leaf, chain, body)
        except ServiceError:
            self._record(region, leaf, failed=True)
            raise
        self._record(region, leaf, failed=False)
        self._notify_expiry(region, anchor, leaf)
        return session

    def _session(
        self, region: str, leaf: x509.Certificate, chain: list[x509.Certificate], body: bytes
    ) -> tuple[dict[str, Any], Any]:
        """Steps 3 to 6 and the session: (the trust anchor, CreateSession's answer)."""
        try:
            params = json.loads(body)
            profile_arn, role_arn = params["profileArn"], params["roleArn"]
            anchor_arn = params["trustAnchorArn"]
            duration = int(params.get("durationSeconds", DEFAULT_DURATION_SECONDS))
        except (ValueError, KeyError, TypeError):
            raise ServiceError(
                "ValidationException", "profileArn, roleArn and trustAnchorArn are required"
            ) from None
        _check_duration(duration, "durationSeconds")
        with self._lock:
            store = self.stores.setdefault(region, Store())
            anchors = [
                a for a in store.resources["trust_anchors"].values() if a["trustAnchorArn"] == anchor_arn
            ]
            profiles = [p for p in store.resources["profiles"].values() if p["profileArn"] == profile_arn]
            if not anchors or not profiles:
                raise ServiceError(
                    "ResourceNotFoundException", "the trust anchor or the profile does not exist"
                )
            anchor, profile = dict(anchors[0]), dict(profiles[0])
            crls = [
                c["crlData"]
                for c in store.resources["crls"].values()
                if c["trustAnchorArn"] == anchor_arn and c["enabled"]
            ]
        if not anchor["enabled"]:
            raise _denied(f"trust anchor {anchor_arn} is disabled")
        path = _chain_to_anchor(leaf, chain, _bundle(anchor["source"]), _now())
        for certificate, issuer in itertools.pairwise(path):
            if _revoked(certificate, issuer, crls):
                raise _denied(f"certificate {certificate.serial_number} is revoked")
        if not profile["enabled"]:
            raise _denied(f"profile {profile_arn} is disabled")
        if role_arn not in profile["roleArns"]:
            raise _denied(f"role {role_arn} is not in profile {profile_arn}")
        context = session_context(leaf, anchor_arn)
        _check_trust(role_arn, region, context)
        return anchor, _assume(
            role_arn, region, leaf, context, min(duration, int(profile["durationSeconds"]))
        )


def _authenticate(
    headers: Mapping[str, str], method: str, raw_uri: str, body: bytes
) -> tuple[str, x509.Certificate, list[x509.Certificate]]:
    """Steps 1 and 2: (region of the credential scope, signing certificate, intermediates)."""
    authorization = headers.get("Authorization", "")
    algorithm = authorization.split(" ", 1)[0]
    scope = _scope(authorization)
    signed = authorization.partition("SignedHeaders=")[2].partition(",")[0].strip().split(";")
    signature = authorization.partition("Signature=")[2].partition(",")[0].strip()
    if algorithm not in ALGORITHMS or len(scope) != 5 or scope[3:] != [SERVICE, "aws4_request"]:
        raise ServiceError("ValidationException", "the Authorization header is not an X.509 signature")
    if not {"host", "x-amz-date", "x-amz-x509"} <= set(signed):
        raise ServiceError("ValidationException", "Host, X-Amz-Date and X-Amz-X509 must be signed")
    leaf = _certificates(headers.get("X-Amz-X509", ""), "X-Amz-X509")[0]
    chain = (
        _certificates(headers.get("X-Amz-X509-Chain", ""), "X-Amz-X509-Chain")
        if headers.get("X-Amz-X509-Chain")
        else []
    )
    serial, date, region = scope[0], scope[1], scope[2]
    if serial != str(leaf.serial_number):
        raise _denied("the credential's serial number is not the certificate's")
    amz_date = headers.get("X-Amz-Date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise ServiceError("ValidationException", "X-Amz-Date is not YYYYMMDD'T'HHMMSS'Z'") from None
    if date != amz_date[:8] or abs(_now() - signed_at) > MAX_CLOCK_SKEW:
        raise _denied("the request's date is not within five minutes of now")
    request = AWSRequest(
        method=method,
        url=f"https://{headers.get('Host', '')}{raw_uri}",
        data=body,
        headers={name: value for name, value in headers.items() if name.lower() in signed},
    )
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials("x", "x"), SERVICE, region)
    string_to_sign = "\n".join(
        [
            algorithm,
            amz_date,
            "/".join(scope[1:]),
            hashlib.sha256(signer.canonical_request(request).encode()).hexdigest(),
        ]
    )
    _verify_signature(leaf, algorithm, signature, string_to_sign.encode())
    return region, leaf, chain


_DEFAULT_MAPPINGS = [
    {"certificateField": "x509Subject", "mappingRules": [{"specifier": "*"}]},
    {"certificateField": "x509Issuer", "mappingRules": [{"specifier": "*"}]},
    {
        "certificateField": "x509SAN",
        "mappingRules": [{"specifier": "DNS"}, {"specifier": "URI"}, {"specifier": "Name/*"}],
    },
]


def _check_duration(seconds: int, name: str) -> None:
    if not MIN_DURATION_SECONDS <= seconds <= MAX_DURATION_SECONDS:
        raise ServiceError(
            "ValidationException", f"{name} must be {MIN_DURATION_SECONDS} to {MAX_DURATION_SECONDS}"
        )


def _bundle(source: Mapping[str, Any]) -> list[x509.Certificate]:
    data = str((source.get("sourceData") or {}).get("x509CertificateData", ""))
    try:
        return x509.load_pem_x509_certificates(data.encode())
    except ValueError:
        raise ServiceError("ValidationException", "x509CertificateData holds no PEM certificate") from None


def _crl(data: str) -> x509.CertificateRevocationList:
    """``crlData`` is a blob: base64 of the CRL (PEM or DER) as the API carries it."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raw = data.encode()
    try:
        if raw.lstrip().startswith(b"-----"):
            return x509.load_pem_x509_crl(raw)
        return x509.load_der_x509_crl(raw)
    except ValueError:
        raise ServiceError("ValidationException", "crlData holds no certificate revocation list") from None


def _certificates(header: str, name: str) -> list[x509.Certificate]:
    try:
        return [x509.load_der_x509_certificate(base64.b64decode(part.strip())) for part in header.split(",")]
    except (binascii.Error, ValueError):
        raise ServiceError("ValidationException", f"{name} is not base64 DER certificates") from None


def _verify_signature(leaf: x509.Certificate, algorithm: str, signature: str, message: bytes) -> None:
    key = leaf.public_key()
    if not isinstance(key, ALGORITHMS[algorithm]):
        raise _denied(f"{algorithm} does not match the certificate's key")
    try:
        raw = bytes.fromhex(signature)
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
        else:
            assert isinstance(key, ec.EllipticCurvePublicKey)
            key.verify(raw, message, ec.ECDSA(hashes.SHA256()))
    except (ValueError, InvalidSignature):
        raise _denied("the request signature does not verify with the certificate's key") from None


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return _is_ca(issuer)


def _chain_to_anchor(
    leaf: x509.Certificate, chain: list[x509.Certificate], anchors: list[x509.Certificate], now: datetime
) -> list[x509.Certificate]:
    """The path leaf -> intermediates -> a certificate of the trust anchor's bundle, every link's
    signature, CA flag and validity dates checked; AccessDeniedException when there is none."""
    if _is_ca(leaf):
        raise _denied("the signing certificate is a CA certificate, not an end-entity one")
    path, pool = [leaf], list(chain)
    while True:
        current = path[-1]
        if not current.not_valid_before_utc <= now <= current.not_valid_after_utc:
            raise _denied(f"certificate {current.serial_number} is not valid at this time")
        anchor = next((a for a in anchors if _issued_by(current, a)), None)
        if anchor is not None:
            if not anchor.not_valid_before_utc <= now <= anchor.not_valid_after_utc:
                raise _denied("the trust anchor's certificate is not valid at this time")
            return [*path, anchor]
        issuer = next((c for c in pool if _issued_by(current, c)), None)
        if issuer is None:
            raise _denied("the certificate does not chain to the trust anchor")
        pool.remove(issuer)
        path.append(issuer)


def _revoked(certificate: x509.Certificate, issuer: x509.Certificate, crls: list[str]) -> bool:
    for data in crls:
        crl = _crl(data)
        if crl.issuer != issuer.subject or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
            continue
        if crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None:
            return True
    return False


def _name_tags(name: x509.Name, field_name: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for attribute in name:
        short = RDN_NAMES.get(attribute.oid)
        if short and short not in tags:
            tags[f"{field_name}/{short}"] = str(attribute.value)
    return tags


def session_context(leaf: x509.Certificate, anchor_arn: str) -> dict[str, str]:
    """The condition keys Roles Anywhere sets when it assumes the role (the trust model page)."""
    tags = {**_name_tags(leaf.subject, "x509Subject"), **_name_tags(leaf.issuer, "x509Issuer")}
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        for kind, label in ((x509.DNSName, "DNS"), (x509.UniformResourceIdentifier, "URI")):
            values = names.get_values_for_type(kind)
            if values:
                tags[f"x509SAN/{label}"] = str(values[0])
    except x509.ExtensionNotFound:
        pass
    context = {"aws:SourceArn": anchor_arn, "aws:SourceAccount": anchor_arn.split(":")[4]}
    for key, value in tags.items():
        context[f"aws:PrincipalTag/{key}"] = value
        context[f"aws:RequestTag/{key}"] = value
    if "x509Subject/CN" in tags:
        context["sts:SourceIdentity"] = tags["x509Subject/CN"]
    return context


def _check_trust(role_arn: str, region: str, context: Mapping[str, str]) -> None:
    from moto.iam.models import iam_backends

    backend = iam_backends[ACCOUNT_ID][_partition(region)]
    role = next((r for r in backend.roles.values() if r.arn == role_arn), None)
    if role is None:
        raise _denied(f"role {role_arn} does not exist")
    trust = role.assume_role_policy_document
    document = json.loads(trust) if isinstance(trust, str) else trust
    try:
        allowed = all(trust_allows(document, SERVICE_PRINCIPAL, action, context) for action in TRUST_ACTIONS)
    except UnsupportedPolicy as error:
        raise _denied(f"the trust policy of {role_arn} cannot be evaluated locally: {error}") from None
    if not allowed:
        raise _denied(
            f"the trust policy of {role_arn} does not allow {SERVICE_PRINCIPAL} "
            f"{', '.join(TRUST_ACTIONS)} for this certificate and trust anchor"
        )


def _assume(
    role_arn: str, region: str, leaf: x509.Certificate, context: Mapping[str, str], seconds: int
) -> dict[str, Any]:
    """The partition's STS (moto) vends the session; the role session name is the serial (hex)."""
    from moto.sts.models import sts_backends

    session = sts_backends[ACCOUNT_ID][_partition(region)].assume_role(
        region_name=region,
        role_session_name=format(leaf.serial_number, "x"),
        role_arn=role_arn,
        policy="",
        duration=seconds,
        external_id="",
    )
    expiration = session.expiration
    if expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=UTC)
    return {
        "credentialSet": [
            {
                "assumedRoleUser": {"arn": session.arn, "assumedRoleId": session.user_id},
                "credentials": {
                    "accessKeyId": session.access_key_id,
                    "secretAccessKey": session.secret_access_key,
                    "sessionToken": session.session_token,
                    "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
                "packedPolicySize": 0,
                "roleArn": role_arn,
                "sourceIdentity": context.get("sts:SourceIdentity", ""),
            }
        ],
        "subjectArn": RolesAnywhere._arn(
            region, "subject", str(uuid.uuid5(uuid.NAMESPACE_OID, leaf.subject.rfc4514_string()))
        ),
    }
