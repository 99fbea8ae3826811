"""boto3 clients aimed at one local partition."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from replication_ops.local.config import (
    LAMBDA_SERVICE_ACCESS_KEY_ID,
    LAMBDA_SERVICE_SECRET_ACCESS_KEY,
    LOCAL_ACCESS_KEY_ID,
    LOCAL_SECRET_ACCESS_KEY,
)

DEFAULT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 6},
    connect_timeout=5,
    read_timeout=60,
    max_pool_connections=64,
)


@dataclass(frozen=True)
class AwsCredentials:
    """An access key, with the session token of temporary (role) credentials."""

    access_key_id: str = LOCAL_ACCESS_KEY_ID
    secret_access_key: str = LOCAL_SECRET_ACCESS_KEY
    session_token: str | None = None

    def environment(self) -> dict[str, str]:
        """The variables the SDKs read (Lambda sets these three for the execution role)."""
        variables = {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}
        if self.session_token:
            variables["AWS_SESSION_TOKEN"] = self.session_token
        return variables


ADMINISTRATOR = AwsCredentials()
LAMBDA_SERVICE = AwsCredentials(LAMBDA_SERVICE_ACCESS_KEY_ID, LAMBDA_SERVICE_SECRET_ACCESS_KEY)


def client(
    service: str,
    *,
    endpoint_url: str,
    region: str,
    access_key_id: str = LOCAL_ACCESS_KEY_ID,
    secret_access_key: str = LOCAL_SECRET_ACCESS_KEY,
    session_token: str | None = None,
    config: Config | None = None,
) -> Any:
    session = boto3.session.Session(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        aws_session_token=session_token,
        region_name=region,
    )
    return session.client(service, endpoint_url=endpoint_url, config=config or DEFAULT_CONFIG)


def assume_execution_role(endpoint_url: str, region: str, role_arn: str, session_name: str) -> AwsCredentials:
    """Credentials of a function's execution role, assumed as the Lambda service does (its trust
    policy must name lambda.amazonaws.com where IAM is enforced)."""
    sts = client(
        "sts",
        endpoint_url=endpoint_url,
        region=region,
        access_key_id=LAMBDA_SERVICE.access_key_id,
        secret_access_key=LAMBDA_SERVICE.secret_access_key,
    )
    answer = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name[:64], DurationSeconds=3600)
    credentials = answer["Credentials"]
    return AwsCredentials(
        credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
    )


class SideClients:
    """Lazily created clients for one side and one principal (boto3 clients are thread-safe once
    created); the local administrator unless ``credentials`` says otherwise."""

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        config: Config | None = None,
        credentials: AwsCredentials = ADMINISTRATOR,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.credentials = credentials
        self._config = config
        self._clients: dict[str, Any] = {}

    def __getattr__(self, service: str) -> Any:
        if service.startswith("_"):
            raise AttributeError(service)
        if service not in self._clients:
            self._clients[service] = client(
                service,
                endpoint_url=self.endpoint_url,
                region=self.region,
                access_key_id=self.credentials.access_key_id,
                secret_access_key=self.credentials.secret_access_key,
                session_token=self.credentials.session_token,
                config=self._config,
            )
        return self._clients[service]
