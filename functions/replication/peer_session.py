"""The Kinesis client for the peer partition, with credentials from Secrets Manager.

The secret says how the forwarder authenticates in the peer partition (docs/operations.md):

* access_key mode, ``{"aws_access_key_id": ..., "aws_secret_access_key": ...}``: an IAM user's key
  of the peer partition;
* roles_anywhere mode, ``{"auth": "roles_anywhere", "certificate", "private_key", "trust_anchor_arn",
  "profile_arn", "role_arn"}`` and optionally ``"certificate_chain"`` (PEM): temporary credentials
  for the peer's role from IAM Roles Anywhere's CreateSession in the peer partition, through the
  library ``iam-rolesanywhere-session`` (which signs the request with the certificate's key, as the
  Roles Anywhere user guide's "signing process" page describes). Its endpoint is
  ``PEER_ROLESANYWHERE_ENDPOINT`` when set, else the one botocore resolves for the peer's region
  (``rolesanywhere.cn-north-1.amazonaws.com.cn`` in aws-cn); TLS is verified against
  ``AWS_CA_BUNDLE`` when set (the SDKs' standard variable), else the system's trust store.

Secrets are cached (Powertools Parameters, ``SECRET_MAX_AGE_SECONDS``) and re-read at once when the
peer rejects the credentials or Roles Anywhere rejects the certificate, so a key or certificate
rotation, or a change of mode, needs no redeploy. Role sessions are botocore refreshable
credentials, renewed ``REFRESH_LEAD_SECONDS`` before they expire.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError
from botocore.config import Config
from botocore.exceptions import ClientError

from replication.errors import PeerCredentialsError
from replication.settings import ForwarderSettings

CONNECT_TIMEOUT_SECONDS = 3
READ_TIMEOUT_SECONDS = 5
# The longest one PutRecords call can take, botocore's own retry included.
LONGEST_CALL_SECONDS = 2 * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS)

AUTH_ERROR_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "AccessDeniedException",
        "IncompleteSignature",
    }
)
ACCESS_KEY_FIELDS = ("aws_access_key_id", "aws_secret_access_key")
ROLES_ANYWHERE = "roles_anywhere"
ROLES_ANYWHERE_FIELDS = ("certificate", "private_key", "trust_anchor_arn", "profile_arn", "role_arn")
# CreateSession's answers that mean "this certificate, trust anchor, profile or role will not do"
# (AccessDeniedException 403, ValidationException 400, ResourceNotFoundException 404), as opposed to
# the service being unavailable.
REFUSED_STATUSES = frozenset({400, 403, 404})
# The session asked for; the profile's durationSeconds (900..3600 s in this module) caps it.
SESSION_DURATION_SECONDS = 3600
# botocore refreshes a role session 15 minutes (advisory) or 10 minutes (mandatory) before it expires
# (botocore.credentials.RefreshableCredentials): as long as the shortest session Roles Anywhere vends
# (900 s), which would make every PutRecords a CreateSession. Renewed this long before expiry
# instead: far more than the longest call (LONGEST_CALL_SECONDS), far less than a session.
REFRESH_LEAD_SECONDS = 300
MANDATORY_REFRESH_LEAD_SECONDS = 120


def is_auth_error(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in AUTH_ERROR_CODES


def _library() -> Any:
    """``iam_rolesanywhere_session``, imported on first use: access_key mode never loads it, nor
    cryptography (a cold start's import time, and a compiled module)."""
    import iam_rolesanywhere_session

    return iam_rolesanywhere_session


def session_errors() -> tuple[type[Exception], ...]:
    """What a peer client's call raises when its role session could not be renewed (KinesisSender):
    the library's errors, once it is loaded."""
    library = sys.modules.get("iam_rolesanywhere_session")
    return (library.IAMRolesAnywhereError,) if library is not None else ()


def is_refused_session(error: Exception) -> bool:
    """A CreateSession refusal raised while botocore renewed a role session in the middle of a call."""
    return isinstance(error, session_errors()) and getattr(error, "status_code", None) in REFUSED_STATUSES


class CertificateRefused(PeerCredentialsError):
    """IAM Roles Anywhere refused CreateSession for the secret's certificate (HTTP 400, 403, 404)."""


@dataclass(frozen=True)
class PeerSecret:
    """The secret's value, validated: its mode and fields (never printed: it holds key material)."""

    mode: str
    fields: dict[str, str]

    @property
    def identity(self) -> str:
        """What tells one credential from the next without revealing it (a client is rebuilt when
        it changes): the access key id, or a digest of the certificate and the three ARNs."""
        if self.mode != ROLES_ANYWHERE:
            return self.fields["aws_access_key_id"]
        names = ("certificate", "certificate_chain", *ROLES_ANYWHERE_FIELDS[2:])
        return hashlib.sha256("\n".join(self.fields.get(n, "") for n in names).encode()).hexdigest()

    @classmethod
    def parse(cls, secret_id: str, value: Any) -> PeerSecret:
        """The secret's mode from its ``auth`` field (absent: access_key), its fields checked."""
        mode = value.get("auth", "access_key") if isinstance(value, dict) else None

        def strings(names: tuple[str, ...]) -> bool:
            return all(isinstance(value.get(n), str) and value[n] for n in names)

        if mode == ROLES_ANYWHERE and strings(ROLES_ANYWHERE_FIELDS):
            chain = value.get("certificate_chain")
            if chain is not None and not isinstance(chain, str):
                raise PeerCredentialsError(f"secret {secret_id}: certificate_chain must be PEM text")
            fields = {n: value[n] for n in ROLES_ANYWHERE_FIELDS}
            return cls(ROLES_ANYWHERE, {**fields, **({"certificate_chain": chain} if chain else {})})
        if mode == "access_key" and strings(ACCESS_KEY_FIELDS):
            names = (*ACCESS_KEY_FIELDS, "aws_session_token")
            return cls("access_key", {n: value[n] for n in names if value.get(n)})
        raise PeerCredentialsError(
            f'secret {secret_id} must hold {{"aws_access_key_id": ..., "aws_secret_access_key": ...}} or '
            '{"auth": "roles_anywhere", "certificate": ..., "private_key": ..., "trust_anchor_arn": ..., '
            '"profile_arn": ..., "role_arn": ...} (certificate_chain optional; docs/operations.md)'
        )


class PeerSession:
    def __init__(self, settings: ForwarderSettings, secrets_client: Any = None) -> None:
        self._settings = settings
        self._secrets = parameters.SecretsProvider(boto3_client=secrets_client)
        self._client: Any = None
        self._identity: str | None = None
        self._credentials: Any = None  # the client's botocore credentials

    @property
    def access_key_id(self) -> str | None:
        """The access key the peer client signs with now (a role session's is renewed first when
        it is within REFRESH_LEAD_SECONDS of expiry, as signing a call would), or None before the
        first ``kinesis()``."""
        return self._credentials.get_frozen_credentials().access_key if self._credentials else None

    def kinesis(self, *, refresh: bool = False) -> Any:
        """The peer's Kinesis client; ``refresh``: the peer rejected the credentials, so read the
        secret again and, in roles_anywhere mode, start a new role session.

        Raises PeerCredentialsError when the secret is missing or malformed, or when IAM Roles
        Anywhere refuses the secret's certificate even after reading it again.
        """
        secret = self._secret(refresh)
        if (
            self._client is None
            or secret.identity != self._identity
            or (refresh and secret.mode == ROLES_ANYWHERE)
        ):
            try:
                self._client = self._client_for(secret)
            except CertificateRefused:
                if refresh:
                    raise
                # The certificate may have been rotated since the secret was cached: read it again.
                secret = self._secret(refresh=True)
                self._client = self._client_for(secret)
            self._identity = secret.identity
        return self._client

    def _client_for(self, secret: PeerSecret) -> Any:
        if secret.mode == ROLES_ANYWHERE:
            return self._roles_anywhere_client(secret)
        return self._client_from(self._access_key_session(secret))

    def _secret(self, refresh: bool) -> PeerSecret:
        secret_id = self._settings.peer_secret_id
        try:
            value = self._secrets.get(
                secret_id,
                transform="json",
                max_age=self._settings.secret_max_age_seconds,
                force_fetch=refresh,
            )
        except TransformParameterError:
            raise PeerCredentialsError(f"secret {secret_id} does not hold JSON") from None
        except GetParameterError as error:
            raise PeerCredentialsError(
                f"cannot read secret {secret_id}: {error} (has it been filled with "
                "`ddb-replication credentials`?)"
            ) from None
        return PeerSecret.parse(secret_id, value)

    def _access_key_session(self, secret: PeerSecret) -> Any:
        return boto3.session.Session(
            aws_access_key_id=secret.fields["aws_access_key_id"],
            aws_secret_access_key=secret.fields["aws_secret_access_key"],
            aws_session_token=secret.fields.get("aws_session_token"),
            region_name=self._settings.peer_region,
        )

    def _roles_anywhere_client(self, secret: PeerSecret) -> Any:
        """A client on a role session from CreateSession, made now so that a refused certificate
        shows here (CertificateRefused) rather than in the middle of a PutRecords."""
        library = _library()
        try:
            session = self._roles_anywhere_session(library, secret)
            session.get_credentials().get_frozen_credentials()
        except library.CredentialsRetrievalError as error:
            if error.status_code in REFUSED_STATUSES:
                raise CertificateRefused(
                    f"IAM Roles Anywhere in {self._settings.peer_region} refused the certificate of secret "
                    f"{self._settings.peer_secret_id}: HTTP {error.status_code} {error.message}"
                ) from None
            raise
        except (library.IAMRolesAnywhereError, ValueError) as error:
            # An unreadable certificate or key: the library and cryptography say which.
            raise PeerCredentialsError(
                f"secret {self._settings.peer_secret_id}: unusable certificate or private key "
                f"({error.__class__.__name__})"
            ) from None
        return self._client_from(session)

    def _roles_anywhere_session(self, library: Any, secret: PeerSecret) -> Any:
        settings, fields = self._settings, secret.fields
        roles_anywhere = library.IAMRolesAnywhereSession(
            profile_arn=fields["profile_arn"],
            role_arn=fields["role_arn"],
            trust_anchor_arn=fields["trust_anchor_arn"],
            # bytes: the library reads a str as a file path
            certificate=fields["certificate"].encode(),
            private_key=fields["private_key"].encode(),
            certificate_chain=fields["certificate_chain"].encode() if "certificate_chain" in fields else None,
            session_duration=SESSION_DURATION_SECONDS,
            region=settings.peer_region,
            endpoint=settings.peer_rolesanywhere_endpoint,
            verify=os.environ.get("AWS_CA_BUNDLE") or True,
            proxies={"https": settings.peer_https_proxy} if settings.peer_https_proxy else None,
        )
        session = roles_anywhere.get_session()
        credentials = session.get_credentials()
        # botocore's own knobs (RefreshableCredentials(advisory_timeout=, mandatory_timeout=)), which
        # the library's DeferredRefreshableCredentials does not take as arguments.
        credentials._advisory_refresh_timeout = REFRESH_LEAD_SECONDS
        credentials._mandatory_refresh_timeout = MANDATORY_REFRESH_LEAD_SECONDS
        return session

    def _client_from(self, session: Any) -> Any:
        settings = self._settings
        config = Config(
            region_name=settings.peer_region,
            # The sender retries (record by record, within the invocation's deadline): one retry here
            # for a dropped connection, and short timeouts so a blackholed link fails fast.
            retries={"mode": "standard", "max_attempts": 2},
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
            tcp_keepalive=True,
            proxies={"https": settings.peer_https_proxy} if settings.peer_https_proxy else None,
        )
        self._credentials = session.get_credentials()
        return session.client("kinesis", endpoint_url=settings.peer_endpoint_url, config=config)
