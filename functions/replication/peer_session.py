"""The Kinesis client for the peer partition, with credentials from Secrets Manager.

Credentials are cached (Powertools Parameters, ``SECRET_MAX_AGE_SECONDS``) and re-read at once when
the peer rejects them, so a key rotation needs no redeploy.
"""

from __future__ import annotations

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


def is_auth_error(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in AUTH_ERROR_CODES


class PeerSession:
    def __init__(self, settings: ForwarderSettings, secrets_client: Any = None) -> None:
        self._settings = settings
        self._secrets = parameters.SecretsProvider(boto3_client=secrets_client)
        self._client: Any = None
        self._key_id: str | None = None

    def kinesis(self, *, refresh: bool = False) -> Any:
        credentials = self._credentials(refresh)
        if self._client is None or credentials["aws_access_key_id"] != self._key_id:
            self._client = self._build_client(credentials)
            self._key_id = credentials["aws_access_key_id"]
        return self._client

    @property
    def access_key_id(self) -> str | None:
        return self._key_id

    def _credentials(self, refresh: bool) -> dict[str, str]:
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
        if not isinstance(value, dict) or not all(
            isinstance(value.get(name), str) and value.get(name)
            for name in ("aws_access_key_id", "aws_secret_access_key")
        ):
            raise PeerCredentialsError(
                f'secret {secret_id} must hold {{"aws_access_key_id": ..., "aws_secret_access_key": ...}}'
            )
        return value

    def _build_client(self, credentials: dict[str, str]) -> Any:
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
        session = boto3.session.Session(
            aws_access_key_id=credentials["aws_access_key_id"],
            aws_secret_access_key=credentials["aws_secret_access_key"],
            aws_session_token=credentials.get("aws_session_token") or None,
            region_name=settings.peer_region,
        )
        return session.client("kinesis", endpoint_url=settings.peer_endpoint_url, config=config)
