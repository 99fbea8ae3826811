"""boto3 clients aimed at one local partition."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from replication_ops.local.config import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY

DEFAULT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 6},
    connect_timeout=5,
    read_timeout=60,
    max_pool_connections=64,
)


def client(
    service: str,
    *,
    endpoint_url: str,
    region: str,
    access_key_id: str = LOCAL_ACCESS_KEY_ID,
    secret_access_key: str = LOCAL_SECRET_ACCESS_KEY,
    config: Config | None = None,
) -> Any:
    session = boto3.session.Session(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        region_name=region,
    )
    return session.client(service, endpoint_url=endpoint_url, config=config or DEFAULT_CONFIG)


class SideClients:
    """Lazily created clients for one side (boto3 clients are thread-safe once created)."""

    def __init__(self, endpoint_url: str, region: str, config: Config | None = None) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._config = config
        self._clients: dict[str, Any] = {}

    def __getattr__(self, service: str) -> Any:
        if service.startswith("_"):
            raise AttributeError(service)
        if service not in self._clients:
            self._clients[service] = client(
                service, endpoint_url=self.endpoint_url, region=self.region, config=self._config
            )
        return self._clients[service]
